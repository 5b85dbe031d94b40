"""The load guard: the one function through which anything in mlgate loads a model.

It refuses a version whose artifact-safety check has not passed for the exact artifact digest, or
whose files no longer match that digest. It then loads the model file from the verified bytes,
trusting exactly the names the static scanner allows (checks.detectors.artifact), never the
artifact's own trust list: skops with that trust list, pickle and cloudpickle through an
unpickler whose `find_class` refuses every other name. What the gate passed is what loads.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

import yaml

from checks.detectors.artifact import trusted_global, trusted_name
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


def load_verified_model(
    store: FindingsStore, snapshot: VersionSnapshot, allow: frozenset[str] = frozenset()
) -> Any:
    """Load the version's scikit-learn model from its verified copy, or raise UntrustedModelError.

    `allow` is the policy's extra trust (checks.artifact_safety.allow), the same the scan used.
    """
    assert_artifact_passed(store, snapshot)
    root = Path(snapshot.artifact_dir)
    current = tree_manifest(root) if root.is_dir() else {}
    if manifest_digest(current) != snapshot.artifact_digest:
        changed = sorted(set(current.items()) ^ set(snapshot.manifest.items()))
        raise _refuse(
            snapshot,
            "artifact files no longer match the scanned digest "
            f"(changed: {', '.join(sorted({p for p, _ in changed})) or 'all'})",
        )
    try:
        sklearn = yaml.safe_load((root / "MLmodel").read_text())["flavors"]["sklearn"]
        model_file, fmt = sklearn["pickled_model"], sklearn.get("serialization_format", "cloudpickle")
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise _refuse(snapshot, f"no scikit-learn model in its MLmodel ({type(exc).__name__})") from None
    data = (root / model_file).read_bytes()
    if hashlib.sha256(data).hexdigest() != snapshot.manifest.get(model_file):
        raise _refuse(snapshot, f"{model_file} changed while it was being read")
    if fmt == "skops":
        return _load_skops(snapshot, data, allow)
    if fmt in ("pickle", "cloudpickle"):
        return _load_pickle(snapshot, data, allow)
    raise _refuse(snapshot, f"serialization format {fmt!r} is not loaded")


def _load_skops(snapshot: VersionSnapshot, data: bytes, allow: frozenset[str]) -> Any:
    import skops.io

    wanted = skops.io.get_untrusted_types(data=data)
    foreign = [t for t in wanted if not trusted_name(t, allow)]
    if foreign:
        raise _refuse(snapshot, f"model refers to types outside the trust list: {', '.join(foreign)}")
    return skops.io.loads(data, trusted=wanted)


class _AllowlistUnpickler(pickle.Unpickler):
    """Resolves only names the static scanner allows; anything else stops the load."""

    allow: frozenset[str] = frozenset()

    def find_class(self, module: str, name: str) -> Any:
        if not trusted_global(module, name, self.allow):
            raise pickle.UnpicklingError(f"{module}.{name} is not on the trust list")
        return super().find_class(module, name)


def _load_pickle(snapshot: VersionSnapshot, data: bytes, allow: frozenset[str]) -> Any:
    unpickler = _AllowlistUnpickler(io.BytesIO(data))
    unpickler.allow = allow
    try:
        return unpickler.load()
    except pickle.UnpicklingError as exc:
        raise _refuse(snapshot, str(exc)) from None
