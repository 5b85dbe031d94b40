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
from pipelines.resources import PolicyResource, RegistryResource, StoreResource

log = logging.getLogger("mlgate.alerts")
EVENTS = {"verdict": "blocked", "at_risk": "at_risk", "rollback": "rolled_back"}
SEVERITY = {"blocked": "high", "at_risk": "critical", "rolled_back": "high"}
OVERDUE_TAG = "mlgate.overdue_findings"
ESCALATION_INTERVAL = 3600


def webhook_url() -> str | None:
    return os.environ.get("MLGATE_ALERT_WEBHOOK") or None


def escalate(severity: str) -> str:
    """One step up (critical stays critical): overdue findings make their alerts more urgent."""
    order = ["info", "low", "medium", "high", "critical"]
    return order[min(order.index(severity) + 1, len(order) - 1)]


def alerts_for_run(
    store: FindingsStore, run_id: str, overdue: dict[str, int] | None = None
) -> list[dict[str, Any]]:
    """One message per blocking verdict, at-risk marking or rollback recorded by the run; its
    severity is escalated when the model has overdue findings (`overdue`: model -> count)."""
    overdue = overdue or {}
    messages = []
    for d in store.decisions_for_run(run_id):
        if d["action"] not in EVENTS or (d["action"] == "verdict" and d["verdict"] != "blocked"):
            continue
        event = EVENTS[d["action"]]
        late = overdue.get(d["model_name"], 0)
        messages.append(
            {
                "source": "mlgate",
                "event": event,
                "severity": escalate(SEVERITY[event]) if late else SEVERITY[event],
                "overdue_findings": late,
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
def alert_on_blocked_runs(
    context: dg.RunStatusSensorContext, store: StoreResource, policy: PolicyResource
) -> None:
    messages = alerts_for_run(
        store.open(), context.dagster_run.run_id, overdue_counts(store.open(), policy.load())
    )
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


def overdue_counts(store: FindingsStore, policy: Any) -> dict[str, int]:
    """Model -> number of its open findings past their due date."""
    from pipelines.findings_register import load_register

    return overdue_by_model(load_register(store, policy))


def overdue_by_model(entries: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in entries:
        if e["overdue"]:
            counts[e["model"] or ""] = counts.get(e["model"] or "", 0) + 1
    return counts


def overdue_alerts(entries: list[dict[str, Any]], sent: dict[str, str]) -> list[dict[str, Any]]:
    """One escalated message per open finding past its due date, once per (fingerprint, due date)."""
    return [
        {
            "source": "mlgate",
            "event": "overdue",
            "severity": escalate(e["risk"]["band"]),
            "model": e["model"],
            "fingerprint": e["fingerprint"],
            "title": e["title"],
            "owner": e["owner"],
            "due_date": e["due_date"],
            "risk": e["risk"]["score"],
        }
        for e in entries
        if e["overdue"] and sent.get(e["fingerprint"]) != e["due_date"]
    ]


def tag_overdue(client: Any, counts: dict[str, int], models: set[str]) -> None:
    """Registered-model tag `mlgate.overdue_findings` = how many of its open findings are late."""
    for model in sorted(m for m in models if m):
        try:
            client.set_registered_model_tag(model, OVERDUE_TAG, str(counts.get(model, 0)))
        except Exception as exc:  # noqa: BLE001 - a model only in the store (blocked data) has no entry
            log.info("no %s tag on %s: %s", OVERDUE_TAG, model, exc)


@dg.sensor(
    minimum_interval_seconds=ESCALATION_INTERVAL,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Escalates open findings past their SLA due date: alert (log + webhook) and tag.",
)
def escalate_overdue_findings(
    context: dg.SensorEvaluationContext,
    store: StoreResource,
    policy: PolicyResource,
    registry: RegistryResource,
) -> dg.SkipReason:
    from pipelines.findings_register import load_register

    sent = json.loads(context.cursor) if context.cursor else {}
    client = registry.client()
    entries = load_register(store.open(), policy.load(), client)
    messages = overdue_alerts(entries, sent)
    delivered = send(messages)
    tag_overdue(client, overdue_by_model(entries), {e["model"] for e in entries})
    sent.update({m["fingerprint"]: m["due_date"] for m in messages})
    context.update_cursor(json.dumps(sent, sort_keys=True))
    return dg.SkipReason(f"{len(messages)} overdue findings escalated, {delivered} delivered")
