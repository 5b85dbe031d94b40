"""Dagster resources: the MLflow registry, the findings store, the policy and mlgate's home folder."""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from checks.policy import Policy, load_policy
from checks.store import FindingsStore
from pipelines.settings import Settings, load_settings

EXPERIMENT = "mlgate"


@functools.lru_cache(maxsize=8)
def _store(url: str) -> FindingsStore:
    return FindingsStore(url)


class StoreResource(dg.ConfigurableResource):
    """The durable findings store (SQLite under MLGATE_HOME by default; any SQLAlchemy URL)."""

    url: str

    def open(self) -> FindingsStore:
        return _store(self.url)


class PolicyResource(dg.ConfigurableResource):
    """The gate policy file (empty path: the embedded default), with the waivers granted through
    the store (`mlgate findings waive`) merged in when a store URL is given."""

    path: str = ""
    store_url: str = ""

    def load(self) -> Policy:
        policy = load_policy(self.path or None)
        return policy.with_waivers(_store(self.store_url).stored_waivers()) if self.store_url else policy


class HomeResource(dg.ConfigurableResource):
    """mlgate's state folder: training snapshots, the artifact cache and reports."""

    path: str

    @property
    def datasets_dir(self) -> Path:
        return Path(self.path) / "datasets"

    @property
    def cache_dir(self) -> Path:
        return Path(self.path) / "cache"

    @property
    def reports_dir(self) -> Path:
        return Path(self.path) / "reports"

    @property
    def advisories_dir(self) -> Path:
        return Path(self.path) / "advisories"

    @property
    def artifact_root(self) -> Path:
        return Path(self.path) / "mlartifacts"


class RegistryResource(dg.ConfigurableResource):
    """A thin wrapper around MlflowClient for the tracking server and model registry."""

    tracking_uri: str
    registry_uri: str

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    def experiment_id(self, artifact_root: Path) -> str:
        """mlgate's experiment, created with an artifact root under MLGATE_HOME if missing."""
        client = self.client()
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is not None:
            return experiment.experiment_id
        artifact_root.mkdir(parents=True, exist_ok=True)
        try:
            return client.create_experiment(EXPERIMENT, artifact_location=artifact_root.as_uri())
        except Exception:  # noqa: BLE001 - a concurrent retrain created it first
            return client.get_experiment_by_name(EXPERIMENT).experiment_id

    def download_version(self, name: str, version: str, destination: Path) -> Path:
        """Copy a version's artifact files to `destination` (files only; nothing is loaded)."""
        from mlflow.artifacts import download_artifacts

        uri = self.client().get_model_version_download_uri(name, version)
        destination.mkdir(parents=True, exist_ok=True)
        return Path(
            download_artifacts(artifact_uri=uri, dst_path=str(destination), tracking_uri=self.tracking_uri)
        )

    def artifact_digest(self, name: str, version: str) -> str:
        """The artifact-tree digest of the version's files as the registry serves them now."""
        from pipelines.storage import manifest_digest, tree_manifest

        scratch = self.scratch_dir()
        try:
            return manifest_digest(tree_manifest(self.download_version(name, version, scratch)))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def alias_holder(self, name: str, alias: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client().get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        client = self.client()
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, str(value))

    def log_reports(self, files: list[Path], artifact_root: Path, name: str, version: str) -> str:
        """Log scan reports as artifacts of a finished run in mlgate's experiment; its run id."""
        client = self.client()
        run = client.create_run(
            self.experiment_id(artifact_root),
            run_name=f"mlgate scan {name} v{version}",
            tags={"mlgate.kind": "scan_report", "mlgate.model": name, "mlgate.version": str(version)},
        )
        for path in files:
            if path.is_file():
                client.log_artifact(run.info.run_id, str(path), "reports")
        client.set_terminated(run.info.run_id)
        return run.info.run_id

    def scratch_dir(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="mlgate-download-"))


def registry_pages(search: Any, page_size: int = 200, **kwargs: Any) -> Iterator[Any]:
    """Every item of a paged MLflow search (search_registered_models, search_model_versions)."""
    token = None
    while True:
        page = search(max_results=page_size, page_token=token, **kwargs)
        yield from page
        token = page.token
        if not token:
            return


def remember_registry(home: HomeResource | str, registry_uri: str) -> str:
    """Record a foreign registry's URI under its short id (used as partition-key prefix)."""
    from pipelines.storage import registry_id, write_json_atomic

    path = Path(home.path if isinstance(home, HomeResource) else home) / "registries.json"
    known = json.loads(path.read_text()) if path.is_file() else {}
    prefix = registry_id(registry_uri)
    if known.get(prefix) != registry_uri:
        write_json_atomic(path, {**known, prefix: registry_uri})
    return prefix


def registry_for_partition(
    registry: RegistryResource, home: HomeResource, key: str
) -> tuple[RegistryResource, str, str]:
    """The registry a partition key belongs to, with its model name and version."""
    from pipelines.partitions import split_partition_key

    prefix, name, version = split_partition_key(key)
    if prefix is None:
        return registry, name, version
    path = Path(home.path) / "registries.json"
    uri = (json.loads(path.read_text()) if path.is_file() else {}).get(prefix)
    if uri is None:
        raise dg.Failure(
            description=f"partition {key}: unknown registry id {prefix}; "
            "scan it with `mlgate scan-model URI --tracking-uri REGISTRY`"
        )
    return RegistryResource(tracking_uri=uri, registry_uri=uri), name, version


def default_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    """Resources for the local deployment, from MLGATE_HOME and the MLflow URIs."""
    settings = settings or load_settings()
    return {
        "registry": RegistryResource(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri),
        "store": StoreResource(url=settings.store_url),
        "policy": PolicyResource(path=str(settings.policy_path or ""), store_url=settings.store_url),
        "home": HomeResource(path=str(settings.home)),
    }
