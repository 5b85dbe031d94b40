"""Evaluation: load the model through the load guard and score it (and the champion) on its holdout."""

from pathlib import Path
from typing import Any

import dagster as dg

from checks.load_guard import UntrustedModelError, load_verified_model
from checks.store import FindingsStore
from pipelines.partitions import model_versions
from pipelines.resources import (
    HomeResource,
    PolicyResource,
    RegistryResource,
    StoreResource,
    registry_for_partition,
)
from pipelines.storage import VersionSnapshot, load_dataset, load_version, version_dir, write_json_atomic
from pipelines.training import evaluate


def evaluation_path(home: HomeResource, registry_uri: str, name: str, version: str) -> Path:
    return version_dir(home.cache_dir, registry_uri, name, version) / "evaluation.json"


def evaluate_version(
    snapshot: VersionSnapshot,
    store: FindingsStore,
    home: HomeResource,
    champion_version: str | None,
    allow: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Holdout metrics of the version and, on the same rows, of the champion.

    Raises when the version cannot be loaded or scored; the caller records that as an error
    the performance check turns into a critical finding.
    """
    result: dict[str, Any] = {
        "artifact_digest": snapshot.artifact_digest,
        "metrics": None,
        "champion": None,
        "champion_version": None,
        "notes": [],
    }
    dataset = load_dataset(home.datasets_dir, snapshot.dataset_digest) if snapshot.dataset_digest else None
    # loaded even without a holdout: a model that will not load fails the gate
    model = load_verified_model(store, snapshot, allow)
    if dataset is None:
        note = snapshot.lineage_note or "training data or holdout not retrievable through lineage"
        result["notes"].append(note)
        return result
    if not dataset.holdout_rows:
        result["notes"].append("no holdout was logged with the training data (an evaluation dataset input)")
        return result
    holdout = dataset.frame().iloc[dataset.holdout_rows]
    result["metrics"] = evaluate(model, holdout, dataset.label)
    result["holdout_rows"] = len(holdout)
    if champion_version and champion_version != snapshot.version:
        result["champion_version"] = champion_version
        champion = load_version(home.cache_dir, snapshot.registry_uri, snapshot.name, champion_version)
        try:
            if champion is None:
                raise UntrustedModelError(f"champion v{champion_version} was never scanned by mlgate")
            result["champion"] = evaluate(load_verified_model(store, champion, allow), holdout, dataset.label)
        except Exception as exc:  # noqa: BLE001 - an unusable champion is a governance gap, not a crash
            result["notes"].append(f"champion v{champion_version} could not be evaluated: {exc}")
    return result


@dg.asset(group_name="scan", partitions_def=model_versions, deps=["model_version"], kinds={"sklearn"})
def model_evaluation(
    context: dg.AssetExecutionContext,
    registry: RegistryResource,
    store: StoreResource,
    policy: PolicyResource,
    home: HomeResource,
) -> dg.MaterializeResult:
    """Holdout metrics of the version and of the current alias holder, for the performance check.

    A version that cannot be loaded or scored is recorded as such, so the evaluation gate blocks
    it with a critical finding and writes the verdict (fail closed, nothing silently skipped).
    """
    registry, name, version = registry_for_partition(registry, home, context.partition_key)
    snapshot = load_version(home.cache_dir, registry.registry_uri, name, version)
    if snapshot is None:
        raise dg.Failure(description=f"{name} v{version} has no snapshot; materialize model_version first")
    current = policy.load()
    holder = registry.alias_holder(name, current.for_model(name).alias)
    allow = frozenset(current.checks.artifact_safety.allow)
    try:
        result = evaluate_version(snapshot, store.open(), home, holder, allow)
    except Exception as exc:  # noqa: BLE001 - recorded for the gate, which blocks on it
        result = {"artifact_digest": snapshot.artifact_digest, "error": f"{type(exc).__name__}: {exc}"}
    write_json_atomic(evaluation_path(home, registry.registry_uri, name, version), result)
    metadata: dict[str, Any] = {f"holdout_{k}": v for k, v in (result.get("metrics") or {}).items()}
    metadata.update({f"champion_{k}": v for k, v in (result.get("champion") or {}).items()})
    metadata["notes"] = "; ".join(result.get("notes", [])) or result.get("error", "none")
    return dg.MaterializeResult(metadata=metadata)
