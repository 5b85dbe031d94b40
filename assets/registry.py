"""Registration: snapshot a registered version without deserialising anything."""

import shutil

import dagster as dg
import yaml

from checks.detectors.registry import LINEAGE_TAG
from pipelines.partitions import model_versions
from pipelines.resources import HomeResource, RegistryResource, registry_for_partition
from pipelines.storage import VersionSnapshot, cache_artifacts, save_version


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
    )
    save_version(home.cache_dir, snapshot)
    return snapshot


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
        }
    )
