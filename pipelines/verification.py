"""Verify a registered version for a consumer: fetch its files once, check that exact copy.

`mlgate verify` and `mlgate.load_model` share this: the copy's artifact-tree digest must have a
complete, passing scan under the current policy (the deployment step's question). The loader then
loads that same copy, so files swapped in the registry after the check are never what is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from checks.detectors.registry import LINEAGE_TAG
from checks.policy import Policy
from checks.store import FindingsStore
from checks.verdict import ScanVerdict, version_verdict
from pipelines.resources import RegistryResource
from pipelines.storage import VersionSnapshot, manifest_digest, tree_manifest


class RegistryUnreachable(RuntimeError):
    """The version's files could not be fetched (registry down, files missing)."""


@dataclass
class Verification:
    snapshot: VersionSnapshot  # describes the local copy that was checked
    verdict: ScanVerdict
    why_not: str = ""  # why the copy may not be used, when it may not

    @property
    def passed(self) -> bool:
        return self.verdict.deployable


def fetch_and_verify(
    registry: RegistryResource,
    store: FindingsStore,
    policy: Policy,
    name: str,
    version: str,
    destination: Path,
) -> Verification:
    """Copy the version's files into `destination` and verify that copy against the stored scans."""
    try:
        mv = registry.client().get_model_version(name, version)
        copy = registry.download_version(name, version, destination)
    except Exception as exc:  # noqa: BLE001 - MLflow raises many types for "not reachable"
        first_line = (str(exc).splitlines() or [""])[0][:300]
        raise RegistryUnreachable(
            f"{name} v{version}: files not fetched from {registry.registry_uri} "
            f"({type(exc).__name__}: {first_line})"
        ) from None
    manifest = tree_manifest(copy)
    tags = dict(mv.tags or {})
    snapshot = VersionSnapshot(
        registry_uri=registry.registry_uri,
        name=name,
        version=str(version),
        source=mv.source,
        run_id=mv.run_id,
        artifact_digest=manifest_digest(manifest),
        manifest=manifest,
        artifact_dir=str(copy),
        tags=tags,
        dataset_digest=tags.get(LINEAGE_TAG),
    )
    verdict = version_verdict(
        store,
        policy,
        registry_uri=registry.registry_uri,
        name=name,
        version=str(version),
        artifact_digest=snapshot.artifact_digest,
        dataset_digest=snapshot.dataset_digest,
    )
    blocking = [f"{f.severity.label}: {f.title}" for f in verdict.findings if policy.blocks(f, name)]
    why_not = (
        "" if verdict.deployable else "; ".join(verdict.reasons + blocking[:5]) or "its scan did not pass"
    )
    return Verification(snapshot, verdict, why_not)
