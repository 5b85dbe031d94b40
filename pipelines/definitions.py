"""The mlgate code location: every asset, gate, job, schedule and resource in one Definitions."""

from __future__ import annotations

import dagster as dg

from assets.collection import raw_data
from assets.deployment import deployment
from assets.evaluation import model_evaluation
from assets.governance import findings_register
from assets.inventory import ai_inventory
from assets.registry import model_version
from assets.training import audit_predictions, candidate_model, training_data
from checks.gates import data_quality_gate, evaluation_gate, label_noise_gate, version_gate
from pipelines.alerts import alert_on_blocked_runs, escalate_overdue_findings, register_refreshers
from pipelines.jobs import refresh_register_job, rescan_version_job, retrain_job, scan_version_job
from pipelines.resources import default_resources
from pipelines.schedules import nightly_retrain, weekly_rescan
from pipelines.sensors import mlflow_registry_sensor
from pipelines.settings import load_settings, prepare_environment

RETRAIN_ASSETS = [raw_data, training_data, audit_predictions, candidate_model]


def lifecycle_owners(settings) -> list[str]:
    """Dagster asset owners of the owned retrain lifecycle: the policy owner of the model the
    retrain produces (an email or `team:name`), so the UI shows who answers for its findings."""
    from checks.policy import PolicyError, load_policy
    from pipelines.settings import DEFAULT_MODEL_NAME

    try:
        owner = load_policy(settings.policy_path).for_model(DEFAULT_MODEL_NAME).owner
    except PolicyError:
        return []  # the gates report the bad policy; the code location still loads
    return [owner] if owner and ("@" in owner or owner.startswith("team:")) else []


def build_definitions() -> dg.Definitions:
    settings = load_settings()
    prepare_environment(settings)
    owners = lifecycle_owners(settings)
    retrain = (
        dg.map_asset_specs(lambda spec: spec.replace_attributes(owners=owners), RETRAIN_ASSETS)
        if owners
        else RETRAIN_ASSETS
    )
    return dg.Definitions(
        assets=[
            *retrain,
            model_version,
            model_evaluation,
            deployment,
            findings_register,
            ai_inventory,
        ],
        asset_checks=[data_quality_gate, label_noise_gate, version_gate, evaluation_gate],
        jobs=[retrain_job, scan_version_job, rescan_version_job, refresh_register_job],
        schedules=[nightly_retrain, weekly_rescan],
        sensors=[
            mlflow_registry_sensor,
            alert_on_blocked_runs,
            escalate_overdue_findings,
            *register_refreshers,
        ],
        resources=default_resources(settings),
    )


defs = build_definitions()
