"""The MLflow registry sensor: every READY version, whoever registered it, gets `scan_version`.

The cursor is the highest handled version per model, so restarts and outages lose nothing:
versions registered meanwhile are found on the next tick. Tag writes (mlgate's verdicts) do not
change version numbers, so they never retrigger it. A version is requested once (run key = its
partition key) and only when it has no stored scan and no run yet; a version that `mlgate run`
registered is left to that process, which scans it next (`_handed_to_its_trainer`). Each tick
is bounded in time and pages through the registry.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from checks.store import FindingsStore
from pipelines.jobs import scan_version_job
from pipelines.partitions import IN_PROCESS_SCAN_TAG, RETRAIN_RUN_TAG, model_versions, partition_key
from pipelines.resources import RegistryResource, StoreResource, registry_pages

TICK_BUDGET_SECONDS = 40.0  # Dagster ends a tick at 60 s
HANDOFF_SECONDS = 120.0


def sensor_interval() -> int:
    return int(os.environ.get("MLGATE_SENSOR_INTERVAL", "10"))


def watched_models() -> list[str]:
    """Models named in MLGATE_WATCH_MODELS (comma-separated); empty means every model."""
    return [m.strip() for m in os.environ.get("MLGATE_WATCH_MODELS", "").split(",") if m.strip()]


@dataclass
class Plan:
    keys: list[str] = field(default_factory=list)
    cursor: dict[str, int] = field(default_factory=dict)
    complete: bool = True


def plan_scans(
    client: Any,
    store: FindingsStore,
    instance: dg.DagsterInstance,
    registry_uri: str,
    cursor: dict[str, int],
    models: list[str],
    deadline: float,
) -> Plan:
    """Which versions to scan now, and the cursor after handling them (pure of Dagster's sensor API)."""
    plan = Plan(cursor=dict(cursor))
    names = models or [m.name for m in registry_pages(client.search_registered_models)]
    for name in names:
        versions = sorted(
            registry_pages(client.search_model_versions, filter_string=f"name = '{name}'"),
            key=lambda v: int(v.version),
        )
        for mv in versions:
            number = int(mv.version)
            if number <= plan.cursor.get(name, 0):
                continue
            if time.monotonic() > deadline:
                plan.complete = False
                return plan
            if mv.status == "PENDING_REGISTRATION":
                break  # retry from here on the next tick; later versions wait behind it
            if mv.status == "READY" and not _already_scanned(store, instance, registry_uri, name, mv.version):
                if _handed_to_its_trainer(instance, mv):
                    break  # likewise
                plan.keys.append(partition_key(name, mv.version))
            plan.cursor[name] = number
    return plan


def _handed_to_its_trainer(instance: dg.DagsterInstance, mv: Any) -> bool:
    """True while the in-process retrain that registered this version is about to scan it itself.

    After HANDOFF_SECONDS without a scan run (the CLI died, say) the sensor takes the version over.
    """
    run_id = (mv.tags or {}).get(RETRAIN_RUN_TAG)
    record = instance.get_run_record_by_id(run_id) if run_id else None
    if record is None or record.dagster_run.tags.get(IN_PROCESS_SCAN_TAG) != "in_process":
        return False
    if not record.dagster_run.is_finished:
        return True
    return time.time() - (record.end_time or 0) < HANDOFF_SECONDS


def _already_scanned(
    store: FindingsStore, instance: dg.DagsterInstance, registry_uri: str, name: str, version: str
) -> bool:
    if store.latest_scan("model_version", registry_uri=registry_uri, model_name=name, version=str(version)):
        return True
    runs = instance.get_run_records(
        filters=dg.RunsFilter(tags={"dagster/partition": partition_key(name, version)}), limit=1
    )
    return bool(runs)


@dg.sensor(
    job=scan_version_job,
    minimum_interval_seconds=sensor_interval(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests scan_version for every new READY version in the MLflow registry.",
)
def mlflow_registry_sensor(
    context: dg.SensorEvaluationContext, registry: RegistryResource, store: StoreResource
) -> dg.SensorResult | dg.SkipReason:
    cursor = json.loads(context.cursor) if context.cursor else {}
    deadline = time.monotonic() + TICK_BUDGET_SECONDS
    try:
        plan = plan_scans(
            registry.client(),
            store.open(),
            context.instance,
            registry.registry_uri,
            cursor,
            watched_models(),
            deadline,
        )
    except Exception as exc:  # noqa: BLE001 - an outage skips the tick; the cursor stays where it was
        return dg.SkipReason(
            f"MLflow registry at {registry.registry_uri} unreachable: {type(exc).__name__}: {str(exc)[:300]}"
        )
    if not plan.keys and plan.cursor == cursor:
        return dg.SkipReason("no new READY versions")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=k, partition_key=k) for k in plan.keys],
        dynamic_partitions_requests=[model_versions.build_add_request(plan.keys)] if plan.keys else [],
        cursor=json.dumps(plan.cursor, sort_keys=True),
    )
