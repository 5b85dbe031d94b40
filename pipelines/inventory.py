"""Gather the AI inventory (`checks.bom.Inventory`) from the MLflow registry, mlgate's files under
MLGATE_HOME and the findings store.

Read-only and free of Dagster, so `mlgate bom` and the `ai_inventory` asset share it. Nothing is
downloaded or deserialised: a version's dependencies are read statically from its scanned copy in
the artifact cache (a version never scanned lists none), its holdout metrics from the evaluation
stage's record of that same copy, and its findings from its newest scan plus the newest scan of its
training data, with their status under the current policy's waivers.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from checks.advisories import redact_url as redact
from checks.bom import DatasetEntry, Inventory, Package, VersionEntry, WaiverEntry
from checks.detectors.dependencies import Requirement, read_environment
from checks.detectors.registry import LINEAGE_TAG
from checks.findings import Finding
from checks.policy import Policy
from checks.store import FindingsStore
from pipelines.resources import registry_pages
from pipelines.storage import VersionSnapshot, load_dataset, load_version, version_dir

DATASET_NAME_TAG = "mlgate.dataset"
LINEAGE_SOURCE_TAG = "mlgate.lineage"


class InventoryError(Exception):
    """The registry cannot be listed, or a requested model is not registered."""


def _versions(client: Any, name: str) -> list[Any]:
    return list(registry_pages(client.search_model_versions, filter_string=f"name = {_quoted(name)}"))


def _quoted(name: str) -> str:
    """A registry filter literal for a model name (double quotes when the name holds a single one)."""
    return f'"{name}"' if "'" in name else f"'{name}'"


def _registered(client: Any, registry_uri: str, models: list[str] | None) -> list[tuple[Any, list[Any]]]:
    """Every (registered model, its versions) to list; models sorted by name, versions by number."""
    from mlflow.exceptions import MlflowException

    try:
        if models:
            found = []
            for name in models:
                try:
                    found.append(client.get_registered_model(name))
                except MlflowException as exc:
                    if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                        raise InventoryError(
                            f"model {name!r} is not registered in {redact(registry_uri)}"
                        ) from None
                    raise
        else:
            found = list(registry_pages(client.search_registered_models))
        return [(model, _versions(client, model.name)) for model in sorted(found, key=lambda m: m.name)]
    except InventoryError:
        raise
    except Exception as exc:  # any failure to list is one clear message
        raise InventoryError(
            f"registry {redact(registry_uri)}: cannot list models ({type(exc).__name__}: {exc})"
        ) from exc


def _packages(requirements: list[Requirement]) -> list[Package]:
    """Requirements as packages; a constraint's pin completes a loose requirement of the same name."""
    pins = {r.name: r.version for r in requirements if r.constraint and r.version}
    packages = {
        Package(
            name=r.name,
            version=r.version or pins.get(r.name),
            specifier="" if r.version or r.name in pins else r.specifier,
            origin=r.origin,
            direct=r.direct,
        )
        for r in requirements
        if r.name and not r.constraint
    }
    return sorted(packages, key=lambda p: (p.name, p.version or "", p.origin, p.direct or ""))


def _evaluation(cache_dir: Path, snapshot: VersionSnapshot) -> tuple[dict[str, float], int | None]:
    """Holdout metrics the evaluation stage recorded for exactly the cached copy, if any."""
    path = version_dir(cache_dir, snapshot.registry_uri, snapshot.name, snapshot.version) / "evaluation.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}, None
    if record.get("artifact_digest") != snapshot.artifact_digest or not record.get("metrics"):
        return {}, None
    metrics = {str(k): float(v) for k, v in record["metrics"].items() if isinstance(v, (int, float))}
    return metrics, record.get("holdout_rows")


def _findings(store: FindingsStore, scan: dict[str, Any] | None) -> list[Finding]:
    if scan is None:
        return []
    return [f for check in store.checks_of(scan["id"]).values() for f in check.findings]


def _created(millis: int | None) -> str | None:
    if not millis:
        return None
    stamp = dt.datetime.fromtimestamp(millis / 1000, dt.UTC).replace(microsecond=0)
    return stamp.isoformat().replace("+00:00", "Z")


def _version_entry(
    mv: Any,
    aliases: list[str],
    store: FindingsStore,
    policy: Policy,
    registry_uri: str,
    cache_dir: Path,
) -> VersionEntry:
    name, version = mv.name, str(mv.version)
    tags = {str(k): str(v) for k, v in (mv.tags or {}).items()}
    snapshot = load_version(cache_dir, registry_uri, name, version)
    scan = store.latest_scan("model_version", registry_uri=registry_uri, model_name=name, version=version)
    digest = tags.get(LINEAGE_TAG) or (snapshot.dataset_digest if snapshot else None)
    data_scan = None
    if digest:
        data_scan = store.latest_scan("dataset", model_name=name, dataset_digest=digest) or store.latest_scan(
            "dataset", dataset_digest=digest
        )
    entry = VersionEntry(
        name=name,
        version=version,
        registry_uri=registry_uri,
        source=str(mv.source or ""),
        run_id=mv.run_id,
        status=str(mv.status or ""),
        created_at=_created(mv.creation_timestamp),
        description=str(mv.description or ""),
        aliases=aliases,
        tags=tags,
        artifact_digest=tags.get("mlgate.artifact_digest")
        or (snapshot.artifact_digest if snapshot else None),
        dataset_digest=digest,
        findings=policy.apply_waivers(_findings(store, scan)),
        data_findings=policy.apply_waivers(_findings(store, data_scan)),
        blocking_severity=policy.blocking_line(name).label,
        scanned=scan is not None or snapshot is not None,
    )
    if snapshot is not None and Path(snapshot.artifact_dir).is_dir():
        entry.packages = _packages(read_environment(Path(snapshot.artifact_dir)).requirements)
        entry.metrics, entry.holdout_rows = _evaluation(cache_dir, snapshot)
    return entry


def _dataset_entry(datasets_dir: Path, digest: str, tags: dict[str, str]) -> DatasetEntry:
    stored = load_dataset(datasets_dir, digest)
    if stored is None:
        name = tags.get(DATASET_NAME_TAG) or f"dataset-{digest[:12]}"
        return DatasetEntry(digest, name, source=tags.get(LINEAGE_SOURCE_TAG, ""), retrievable=False)
    return DatasetEntry(
        digest=digest,
        name=stored.name,
        source=stored.source,
        label=stored.label,
        rows=stored.rows,
        columns=list(stored.columns),
        holdout_rows=len(stored.holdout_rows),
    )


def gather_inventory(
    client: Any,
    store: FindingsStore,
    policy: Policy,
    *,
    registry_uri: str,
    cache_dir: Path,
    datasets_dir: Path,
    models: list[str] | None = None,
    tool_version: str = "0.0.0",
) -> Inventory:
    """Every registered model version (or those of `models`), its training data, its dependencies
    and its findings, their status under `policy`'s waivers (merge the store's in first). Raises
    InventoryError when the registry cannot be listed or a model in `models` is not registered."""
    versions: list[VersionEntry] = []
    for model, model_versions in _registered(client, registry_uri, models):
        holders: dict[str, list[str]] = {}
        for alias, number in (model.aliases or {}).items():
            holders.setdefault(str(number), []).append(str(alias))
        versions += [
            _version_entry(
                mv, sorted(holders.get(str(mv.version), [])), store, policy, registry_uri, cache_dir
            )
            for mv in model_versions
        ]
    datasets: dict[str, DatasetEntry] = {}
    for entry in versions:
        if entry.dataset_digest and entry.dataset_digest not in datasets:
            datasets[entry.dataset_digest] = _dataset_entry(datasets_dir, entry.dataset_digest, entry.tags)
    waivers = {
        w.fingerprint: WaiverEntry(w.owner, w.reason, w.expires.isoformat())
        for w in policy.active_waivers().values()
    }
    return Inventory(
        registry_uri=registry_uri,
        versions=versions,
        datasets=list(datasets.values()),
        waivers=waivers,
        tool_version=tool_version,
        policy_digest=policy.digest,
    )
