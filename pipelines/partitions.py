"""The `model_versions` dynamic partitions: one key per registered version.

`<name>/<version>` for the configured registry; `<registry id>:<name>/<version>` for any other
registry (the id is a short hash of its URI, remembered under MLGATE_HOME), so the same name and
version in two registries never collide.
"""

from __future__ import annotations

import re

import dagster as dg

model_versions = dg.DynamicPartitionsDefinition(name="model_versions")

# Who scans a freshly trained version: a retrain run tagged IN_PROCESS_SCAN_TAG (the CLI's) scans
# its own version next, so the registry sensor leaves versions whose RETRAIN_RUN_TAG names such a
# run alone for a while instead of requesting a second scan.
RETRAIN_RUN_TAG = "mlgate.retrain_run_id"
IN_PROCESS_SCAN_TAG = "mlgate/scan"
_PREFIX = re.compile(r"^([0-9a-f]{8}):(.+)$")


def partition_key(name: str, version: str | int, registry_prefix: str | None = None) -> str:
    key = f"{name}/{version}"
    return f"{registry_prefix}:{key}" if registry_prefix else key


def split_partition_key(key: str) -> tuple[str | None, str, str]:
    """(registry id or None, model name, version); ValueError naming the key when malformed."""
    match = _PREFIX.match(key)
    prefix, rest = (match.group(1), match.group(2)) if match else (None, key)
    name, sep, version = rest.rpartition("/")
    if not sep or not name or not version.isdigit():
        raise ValueError(f"partition key {key!r} is not of the form [<registry id>:]<model name>/<version>")
    return prefix, name, version


def parse_partition_key(key: str) -> tuple[str, str]:
    """(model name, version) of a key, whichever registry it belongs to."""
    _, name, version = split_partition_key(key)
    return name, version
