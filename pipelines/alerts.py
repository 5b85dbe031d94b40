"""After-run hooks: alerts for blocked and at-risk versions (log and webhook), and the findings
register refresh.

Alerts for blocked and at-risk versions: a JSON message to the log and to a webhook.

Messages are built from the store's decisions of one run, so the run-status sensor (under the
daemon) and the CLI (after in-process runs) send the same thing. Delivery never raises: a webhook
that is down is logged, the decision itself is already stored.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from typing import Any

import dagster as dg

from checks.store import FindingsStore
from pipelines.jobs import refresh_register_job, rescan_version_job, retrain_job, scan_version_job
from pipelines.resources import StoreResource

log = logging.getLogger("mlgate.alerts")
EVENTS = {"verdict": "blocked", "at_risk": "at_risk", "rollback": "rolled_back"}


def webhook_url() -> str | None:
    return os.environ.get("MLGATE_ALERT_WEBHOOK") or None


def alerts_for_run(store: FindingsStore, run_id: str) -> list[dict[str, Any]]:
    """One message per blocking verdict, at-risk marking or rollback recorded by the run."""
    messages = []
    for d in store.decisions_for_run(run_id):
        if d["action"] not in EVENTS or (d["action"] == "verdict" and d["verdict"] != "blocked"):
            continue
        messages.append(
            {
                "source": "mlgate",
                "event": EVENTS[d["action"]],
                "model": d["model_name"],
                "version": d["version"],
                "registry": d["registry_uri"],
                "dataset_digest": d["dataset_digest"],
                "reason": d["reason"],
                "run_id": run_id,
                "at": d["at"].isoformat() if d["at"] else None,
            }
        )
    return messages


def send(messages: list[dict[str, Any]], url: str | None = None, timeout: float = 5.0) -> int:
    """Log every message and POST it to the webhook when one is configured; returns how many
    the webhook accepted."""
    url = url if url is not None else webhook_url()
    delivered = 0
    for message in messages:
        body = json.dumps(message)
        log.warning("mlgate alert: %s", body)
        if not url:
            continue
        request = urllib.request.Request(
            url, data=body.encode(), method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                delivered += 200 <= response.status < 300
        except OSError as exc:
            log.error("mlgate alert not delivered to %s: %s", url, exc)
    return delivered


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.FAILURE,
    monitored_jobs=[retrain_job, scan_version_job, rescan_version_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alerts (log + MLGATE_ALERT_WEBHOOK) for runs that blocked a dataset or version.",
)
def alert_on_blocked_runs(context: dg.RunStatusSensorContext, store: StoreResource) -> None:
    messages = alerts_for_run(store.open(), context.dagster_run.run_id)
    delivered = send(messages)
    context.log.info(f"{len(messages)} alerts for run {context.dagster_run.run_id}, {delivered} delivered")


def _register_refresher(status: dg.DagsterRunStatus) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(
        name=f"refresh_register_on_{status.value.lower()}",
        run_status=status,
        monitored_jobs=[retrain_job, scan_version_job, rescan_version_job],
        request_job=refresh_register_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Rebuilds the findings register after every scan, blocked or not.",
    )
    def refresh(context: dg.RunStatusSensorContext) -> dg.RunRequest:
        return dg.RunRequest(run_key=f"register-after-{context.dagster_run.run_id}")

    return refresh


register_refreshers = [
    _register_refresher(dg.DagsterRunStatus.SUCCESS),
    _register_refresher(dg.DagsterRunStatus.FAILURE),
]
