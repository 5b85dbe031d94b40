"""Evaluation: load the model through the load guard and score it (and the champion) on its holdout."""

from pathlib import Path
from typing import Any

import dagster as dg

from checks.load_guard import UntrustedModelError, load_verified_model
from pipelines.partitions import model_versions, parse_partition_key
from pipelines.resources import HomeResource, PolicyResource, RegistryResource, StoreResource
from pipelines.storage import load_dataset, load_version, version_dir, write_json_atomic
from pipelines.training import evaluate


def evaluation_path(home: HomeResource, registry_uri: str, name: str, version: str) -> Path:
    return version_dir(home.cache_dir, registry_uri, name, version) / "evaluation.json"


@dg.asset(group_name="scan", partitions_def=model_versions, deps=["model_version"], kinds={"sklearn"})
def model_evaluation(
    context: dg.AssetExecutionContext,
    registry: RegistryResource,
    store: StoreResource,
    policy: PolicyResource,
    home: HomeResource,
) -> dg.MaterializeResult:
    """Holdout metrics of the version and, on the same rows, of the current alias holder."""
    name, version = parse_partition_key(context.partition_key)
    snapshot = load_version(home.cache_dir, registry.registry_uri, name, version)
    if snapshot is None:
        raise dg.Failure(description=f"{name} v{version} has no snapshot; materialize model_version first")
    findings_store = store.open()
    try:
        model = load_verified_model(findings_store, snapshot)
    except UntrustedModelError as exc:
        raise dg.Failure(description=str(exc)) from None
    dataset = load_dataset(home.datasets_dir, snapshot.dataset_digest) if snapshot.dataset_digest else None
    result: dict[str, Any] = {
        "version": version,
        "metrics": None,
        "champion": None,
        "champion_version": None,
        "notes": [],
    }
    if dataset is None:
        result["notes"].append("training data or holdout not retrievable through lineage")
    else:
        holdout = dataset.frame().iloc[dataset.holdout_rows]
        result["metrics"] = evaluate(model, holdout, dataset.label)
        result["holdout_rows"] = len(holdout)
        holder = registry.alias_holder(name, policy.load().for_model(name).alias)
        if holder and holder != version:
            result["champion_version"] = holder
            champion = load_version(home.cache_dir, registry.registry_uri, name, holder)
            try:
                if champion is None:
                    raise UntrustedModelError(f"champion v{holder} was never scanned by mlgate")
                result["champion"] = evaluate(
                    load_verified_model(findings_store, champion), holdout, dataset.label
                )
            except (UntrustedModelError, ValueError, KeyError) as exc:
                result["notes"].append(f"champion v{holder} could not be evaluated: {exc}")
    write_json_atomic(evaluation_path(home, registry.registry_uri, name, version), result)
    metadata = {f"holdout_{k}": v for k, v in (result["metrics"] or {}).items()}
    if result["champion"]:
        metadata.update({f"champion_{k}": v for k, v in result["champion"].items()})
    return dg.MaterializeResult(metadata={**metadata, "notes": "; ".join(result["notes"]) or "none"})
