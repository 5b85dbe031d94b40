"""Registration: snapshot a registered version without deserialising anything."""

import shutil

import dagster as dg
import yaml

from checks.detectors.registry import LINEAGE_TAG
from pipelines.lineage import Lineage, resolve_run_lineage
from pipelines.partitions import model_versions
from pipelines.resources import HomeResource, RegistryResource, registry_for_partition
from pipelines.storage import VersionSnapshot, cache_artifacts, load_dataset, save_version

LINEAGE_SOURCE_TAG = "mlgate.lineage"


def read_mlmodel_facts(text: str) -> tuple[bool, bool]:
    """(has signature, has input example) from an MLmodel file, via a safe YAML load."""
    try:
        mlmodel = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return False, False
    if not isinstance(mlmodel, dict):
        return False, False
    return bool(mlmodel.get("signature")), bool(mlmodel.get("saved_input_example_info"))


def snapshot_version(
    registry: RegistryResource, home: HomeResource, name: str, version: str
) -> VersionSnapshot:
    """Copy the version's files into the content-addressed cache and record its metadata."""
    client = registry.client()
    mv = client.get_model_version(name, version)
    model_tags = dict(client.get_registered_model(name).tags or {})
    scratch = registry.scratch_dir()
    try:
        downloaded = registry.download_version(name, version, scratch)
        digest, manifest, cached = cache_artifacts(home.cache_dir, downloaded)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    mlmodel = cached / "MLmodel"
    has_signature, has_example = (
        read_mlmodel_facts(mlmodel.read_text()) if mlmodel.is_file() else (False, False)
    )
    tags = dict(mv.tags or {})
    lineage = resolve_lineage(registry, home, mv.run_id, tags, cached)
    if lineage.dataset is not None and tags.get(LINEAGE_TAG) != lineage.dataset.digest:
        # recorded like mlgate's own lineage, so the gate, deployment and rollbacks all read it
        tags |= {LINEAGE_TAG: lineage.dataset.digest, LINEAGE_SOURCE_TAG: lineage.source[:500]}
        registry.set_version_tags(name, version, {k: tags[k] for k in (LINEAGE_TAG, LINEAGE_SOURCE_TAG)})
    snapshot = VersionSnapshot(
        registry_uri=registry.registry_uri,
        name=name,
        version=str(version),
        source=mv.source,
        run_id=mv.run_id,
        artifact_digest=digest,
        manifest=manifest,
        artifact_dir=str(cached),
        tags=tags,
        model_tags=model_tags,
        has_signature=has_signature,
        has_input_example=has_example,
        dataset_digest=tags.get(LINEAGE_TAG),
        lineage_note=lineage.note,
    )
    save_version(home.cache_dir, snapshot)
    return snapshot


def resolve_lineage(
    registry: RegistryResource, home: HomeResource, run_id: str | None, tags: dict[str, str], artifact_dir
) -> Lineage:
    """The version's training snapshot: by mlgate's digest tag when stored here, else from its run."""
    digest = tags.get(LINEAGE_TAG)
    stored = load_dataset(home.datasets_dir, digest) if digest else None
    if stored is not None:
        return Lineage(stored, source=tags.get(LINEAGE_SOURCE_TAG, "tag"))
    lineage = resolve_run_lineage(
        registry.client(),
        run_id=run_id,
        version_tags=tags,
        artifact_dir=artifact_dir,
        datasets_dir=home.datasets_dir,
        tracking_uri=registry.tracking_uri,
    )
    if digest and lineage.dataset is not None and lineage.dataset.digest != digest:
        note = f"the run's data {lineage.dataset.digest[:12]} is not the tagged training data {digest[:12]}"
        return Lineage(None, note=note)
    return lineage


@dg.asset(group_name="scan", partitions_def=model_versions, kinds={"mlflow"})
def model_version(
    context: dg.AssetExecutionContext, registry: RegistryResource, home: HomeResource
) -> dg.MaterializeResult:
    """Metadata and artifact files of one registered version, cached by artifact-tree digest."""
    registry, name, version = registry_for_partition(registry, home, context.partition_key)
    snapshot = snapshot_version(registry, home, name, version)
    return dg.MaterializeResult(
        metadata={
            "model": name,
            "version": version,
            "artifact_digest": snapshot.artifact_digest,
            "files": len(snapshot.manifest),
            "dataset_digest": snapshot.dataset_digest or "(none)",
            "source": snapshot.source,
            "lineage": lineage_summary(snapshot),
        }
    )


def lineage_summary(snapshot: VersionSnapshot) -> str:
    """How the training data was resolved, or why it was not, for the asset's metadata."""
    if snapshot.dataset_digest:
        return snapshot.tags.get(LINEAGE_SOURCE_TAG, "tag")
    return snapshot.lineage_note or "none logged"
