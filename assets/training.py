"""Training: the validated snapshot with its holdout, the audit probabilities, the candidate model."""

from dataclasses import replace

import dagster as dg
import numpy as np
from sklearn.model_selection import train_test_split

from assets.collection import RawData
from checks.detectors.registry import LINEAGE_TAG
from checks.detectors.tabular import DataError
from pipelines.audit import AuditPredictions, compute_audit_predictions
from pipelines.partitions import RETRAIN_RUN_TAG
from pipelines.resources import HomeResource, PolicyResource, RegistryResource
from pipelines.storage import DatasetSnapshot, save_dataset
from pipelines.training import evaluate, fit_model


class SplitConfig(dg.Config):
    holdout_fraction: float = 0.2
    seed: int = 0


@dg.asset(group_name="retrain", kinds={"pandas"})
def training_data(raw_data: RawData, config: SplitConfig, home: HomeResource) -> dg.Output[DatasetSnapshot]:
    """The snapshot every later step uses, stored by digest, with a seeded stratified holdout."""
    df = raw_data.frame
    labelled = np.flatnonzero(df[raw_data.label].notna().to_numpy())
    labels = df[raw_data.label].to_numpy()[labelled]
    try:
        _, holdout = train_test_split(
            labelled, test_size=config.holdout_fraction, random_state=config.seed, stratify=labels
        )
    except ValueError as exc:
        raise dg.Failure(
            description=f"{raw_data.source}: cannot split a stratified holdout ({exc})"
        ) from None
    snapshot = save_dataset(
        home.datasets_dir,
        df,
        name=raw_data.name,
        label=raw_data.label,
        source=raw_data.source,
        holdout_rows=holdout.tolist(),
    )
    snapshot = replace(snapshot, model_name=raw_data.model_name)
    return dg.Output(
        snapshot,
        metadata={
            "dataset_digest": snapshot.digest,
            "rows": snapshot.rows,
            "holdout_rows": len(snapshot.holdout_rows),
            "path": snapshot.data_path.as_posix(),
        },
    )


@dg.asset(group_name="retrain", kinds={"sklearn"})
def audit_predictions(training_data: DatasetSnapshot, policy: PolicyResource) -> dg.Output[AuditPredictions]:
    """Out-of-fold probabilities from the policy's detection model, computed once per snapshot."""
    config = policy.load().detection_model
    try:
        audit = compute_audit_predictions(training_data, config)
    except DataError as exc:
        raise dg.Failure(description=f"{training_data.source}: {exc}") from None
    return dg.Output(
        audit,
        metadata={"estimator": config.estimator, "rows": len(audit.labels), "classes": len(audit.classes)},
    )


def pinned_requirements() -> list[str]:
    """The model's runtime requirements, pinned from this environment.

    Given explicitly so MLflow does not infer them by importing the model in a subprocess
    (slow, and it would load the artifact outside the load guard).
    """
    from importlib.metadata import version

    return [
        f"{package}=={version(package)}" for package in ("scikit-learn", "skops", "numpy", "scipy", "pandas")
    ]


class TrainConfig(dg.Config):
    estimator: str = "logistic_regression"
    seed: int = 0


@dg.asset(group_name="retrain", kinds={"mlflow", "sklearn"}, deps=[audit_predictions])
def candidate_model(
    context: dg.AssetExecutionContext,
    training_data: DatasetSnapshot,
    config: TrainConfig,
    registry: RegistryResource,
    home: HomeResource,
) -> dg.Output[dict]:
    """Train on the training split, log the run to MLflow and register a version tagged with the
    dataset digest (its lineage)."""
    import mlflow
    import skops.io
    from mlflow.models import infer_signature

    df = training_data.frame()
    mlflow.set_tracking_uri(registry.tracking_uri)
    mlflow.set_registry_uri(registry.registry_uri)
    experiment_id = registry.experiment_id(home.artifact_root)
    train = df.iloc[training_data.training_rows()]
    model = fit_model(train, training_data.label, config.estimator, config.seed)
    holdout = df.iloc[training_data.holdout_rows]
    metrics = evaluate(model, holdout, training_data.label)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"retrain-{training_data.name}") as run:
        mlflow.log_params(
            {
                "estimator": config.estimator,
                "seed": config.seed,
                "dataset": training_data.name,
                "train_rows": len(train),
                "holdout_rows": len(holdout),
            }
        )
        mlflow.log_metrics({f"holdout_{k}": v for k, v in metrics.items()})
        mlflow.set_tags({LINEAGE_TAG: training_data.digest, "mlgate.dagster_run_id": context.run_id})
        mlflow.log_input(
            mlflow.data.from_pandas(
                df,
                source=training_data.source,
                name=training_data.name,
                targets=training_data.label,
                digest=training_data.digest[:36],
            ),
            context="training",
        )
        features = df.drop(columns=[training_data.label])
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            pip_requirements=pinned_requirements(),
            serialization_format="skops",
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
            signature=infer_signature(features, model.predict(features.head(50))),
            input_example=features.head(3),
        )
        version = mlflow.register_model(
            info.model_uri,
            training_data.model_name,
            tags={
                LINEAGE_TAG: training_data.digest,
                "mlgate.dataset": training_data.name,
                RETRAIN_RUN_TAG: context.run.run_id,
            },
        )
    result = {"name": training_data.model_name, "version": str(version.version), "run_id": run.info.run_id}
    return dg.Output(result, metadata={**result, **{f"holdout_{k}": v for k, v in metrics.items()}})
