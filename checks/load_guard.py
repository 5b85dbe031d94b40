"""The load guard: the one function through which anything in mlgate loads a model.

It refuses a version whose artifact-safety check has not passed for the exact artifact digest, or
whose cached files no longer match that digest. It then loads the skops file from the verified
bytes with mlgate's exact trust list (checks.detectors.artifact), never the artifact's own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from checks.detectors.artifact import untrusted_skops_types
from checks.findings import FAILED, PASSED, WARNED
from checks.store import FindingsStore
from pipelines.storage import VersionSnapshot, manifest_digest, tree_manifest


class UntrustedModelError(RuntimeError):
    """The guard refused to load a model; the message says which version and why."""


def _refuse(snapshot: VersionSnapshot, why: str) -> UntrustedModelError:
    return UntrustedModelError(f"refusing to load {snapshot.name} v{snapshot.version}: {why}")


def assert_artifact_passed(store: FindingsStore, snapshot: VersionSnapshot) -> None:
    """Raise unless a stored artifact-safety result passed for this exact artifact digest."""
    scan = store.latest_scan(
        "model_version",
        registry_uri=snapshot.registry_uri,
        model_name=snapshot.name,
        version=snapshot.version,
        artifact_digest=snapshot.artifact_digest,
    )
    result = store.checks_of(scan["id"]).get("artifact_safety") if scan else None
    if result is None:
        raise _refuse(snapshot, "its artifact has not been scanned")
    if result.status not in (PASSED, WARNED):
        state = "failed" if result.status == FAILED else f"ended with status {result.status}"
        raise _refuse(snapshot, f"its artifact-safety check {state}")


def load_verified_model(store: FindingsStore, snapshot: VersionSnapshot) -> Any:
    """Load the version's scikit-learn model from the verified cache copy, or raise."""
    assert_artifact_passed(store, snapshot)
    root = Path(snapshot.artifact_dir)
    current = tree_manifest(root) if root.is_dir() else {}
    if manifest_digest(current) != snapshot.artifact_digest:
        changed = sorted(set(current.items()) ^ set(snapshot.manifest.items()))
        raise _refuse(
            snapshot,
            "cached artifact files no longer match the scanned digest "
            f"(changed: {', '.join(sorted({p for p, _ in changed})) or 'all'})",
        )
    sklearn = yaml.safe_load((root / "MLmodel").read_text())["flavors"]["sklearn"]
    if sklearn.get("serialization_format") != "skops":
        raise _refuse(snapshot, "only the skops format is loaded")
    model_file = sklearn["pickled_model"]
    data = (root / model_file).read_bytes()
    if hashlib.sha256(data).hexdigest() != snapshot.manifest.get(model_file):
        raise _refuse(snapshot, f"{model_file} changed while it was being read")
    import skops.io

    foreign = untrusted_skops_types(data)
    if foreign:
        raise _refuse(snapshot, f"model refers to types outside the trust list: {', '.join(foreign)}")
    return skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
