"""The `model_versions` dynamic partitions: one key per registered version, `<name>/<version>`."""

from __future__ import annotations

import dagster as dg

model_versions = dg.DynamicPartitionsDefinition(name="model_versions")


def partition_key(name: str, version: str | int) -> str:
    return f"{name}/{version}"


def parse_partition_key(key: str) -> tuple[str, str]:
    """Split `<name>/<version>`; raises ValueError naming the key when it is malformed."""
    name, sep, version = key.rpartition("/")
    if not sep or not name or not version.isdigit():
        raise ValueError(f"partition key {key!r} is not of the form <model name>/<version number>")
    return name, version
