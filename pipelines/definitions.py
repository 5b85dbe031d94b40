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


def build_definitions() -> dg.Definitions:
    settings = load_settings()
    prepare_environment(settings)
    return dg.Definitions(
        assets=[
            raw_data,
            training_data,
            audit_predictions,
            candidate_model,
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
