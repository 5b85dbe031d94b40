"""Alerts for blocked and at-risk versions reach a webhook on 127.0.0.1: from the CLI after an
in-process run, and from the run-status sensor under the daemon."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest

from pipelines.alerts import alert_on_blocked_runs
from pipelines.resources import default_resources
from tests.test_cli import mlgate


class Webhook:
    """A loopback HTTP server that records every JSON body posted to it."""

    def __init__(self) -> None:
        received: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.received = received
        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def webhook(monkeypatch) -> Iterator[Webhook]:
    hook = Webhook()
    monkeypatch.setenv("MLGATE_ALERT_WEBHOOK", hook.url)
    yield hook
    hook.server.shutdown()


def test_cli_alerts_on_a_blocked_retrain_and_not_on_a_pass(tmp_path, webhook) -> None:
    home = tmp_path / "home"
    assert mlgate("run", "--quiet", home=home, MLGATE_ALERT_WEBHOOK=webhook.url).returncode == 0
    assert webhook.received == [], "a passing version raises no alert"
    blocked = mlgate(
        "run", "--quiet", "--inject-label-noise", "0.3", home=home, MLGATE_ALERT_WEBHOOK=webhook.url
    )
    assert blocked.returncode == 1
    [message] = webhook.received
    assert message["event"] == "blocked" and message["model"] == "mlgate-demo"
    assert message["version"] is None and message["dataset_digest"], "blocked before a version existed"
    assert "data checks blocked" in message["reason"]
    # the CLI refreshed the findings register after each run, blocked or not
    register = json.loads((home / "reports" / "findings_register.json").read_text())
    [noise] = [e for e in register if e["check"] == "label_noise" and e["severity"] == "high"]
    # one entry per weakness: the clean run's review list (low) is another weakness than the noise
    # above the limit (high), so each has its own entry
    assert noise["status"] == "open" and noise["occurrences"] == 1
    assert any(e["check"] == "label_noise" and e["severity"] == "low" for e in register)
    assert any(e["check"] == "registry_validation" for e in register), "the passing run's findings too"


def _run_alert_sensor(env, failed_run) -> None:
    """Evaluate the alert sensor as the daemon would after `failed_run` ended in failure."""
    context = dg.build_run_status_sensor_context(
        sensor_name=alert_on_blocked_runs.name,
        dagster_event=failed_run.get_run_failure_event(),
        dagster_instance=env.instance,
        dagster_run=failed_run.dagster_run,
        resources=default_resources(env.settings),
    )
    alert_on_blocked_runs(context)


def test_run_status_sensor_alerts_for_a_blocked_run(env, webhook) -> None:
    retrain = env.retrain(noise=0.3)
    assert not retrain.success
    _run_alert_sensor(env, retrain)
    [message] = webhook.received
    assert message["event"] == "blocked" and message["run_id"] == retrain.run_id


def test_at_risk_alert_when_a_rescan_blocks_the_champion(env, webhook) -> None:
    assert env.retrain().success and env.scan("demo", 1).success
    env.set_policy("checks:\n  label_noise:\n    max_noise_rate: 0.0\n")
    rescan = env.scan("demo", 1, only=["model_version", "model_evaluation"])
    _run_alert_sensor(env, rescan)
    assert {m["event"] for m in webhook.received} == {"blocked", "at_risk"}
    assert all(m["version"] == "1" for m in webhook.received)


def test_register_refreshers_request_the_register_after_any_scan(env) -> None:
    from pipelines.alerts import register_refreshers

    retrain = env.retrain(noise=0.3)
    failure_sensor = next(s for s in register_refreshers if s.name.endswith("failure"))
    context = dg.build_run_status_sensor_context(
        sensor_name=failure_sensor.name,
        dagster_event=retrain.get_run_failure_event(),
        dagster_instance=env.instance,
        dagster_run=retrain.dagster_run,
    )
    request = failure_sensor(context)
    assert request.run_key == f"register-after-{retrain.run_id}"
    refresh = env.defs.resolve_job_def("refresh_register").execute_in_process(instance=env.instance)
    assert refresh.success
    [materialization] = refresh.asset_materializations_for_node("findings_register")
    assert materialization.metadata["open_high"].value == 1


def test_overdue_findings_escalate_once_and_tag_the_model(env, webhook) -> None:
    import pandas as pd
    import sqlalchemy as sa
    from sklearn.linear_model import LogisticRegression

    from checks.store import findings
    from pipelines.alerts import OVERDUE_TAG, escalate_overdue_findings
    from tests.conftest import BUNDLED, register_external

    df = pd.read_csv(BUNDLED)
    features = df.drop(columns=["diagnosis"])
    model = LogisticRegression(max_iter=5000).fit(features, df["diagnosis"])
    version = register_external(env, model, features, signature=False)  # medium governance gaps
    assert env.scan("demo", version).success
    with env.store.engine.begin() as conn:  # time passes: first seen 200 days ago, past the 90-day SLA
        conn.execute(findings.update().values(created_at=sa.func.datetime("now", "-200 days")))

    def tick(cursor: str | None):
        context = dg.build_sensor_context(
            instance=env.instance, cursor=cursor, resources=default_resources(env.settings)
        )
        escalate_overdue_findings(context)
        return context.cursor

    cursor = tick(None)
    overdue = [m for m in webhook.received if m["event"] == "overdue"]
    by_title = {m["title"]: m for m in overdue}
    assert by_title["Model has no signature"]["severity"] == "high", "a medium-risk finding escalates to high"
    assert by_title["No owner tag"]["severity"] == "medium", "a low-risk one to medium"
    assert all(m["due_date"] and m["fingerprint"] for m in overdue)
    assert env.client.get_registered_model("demo").tags[OVERDUE_TAG] == str(len(overdue))
    tick(cursor)
    assert len([m for m in webhook.received if m["event"] == "overdue"]) == len(overdue), "sent once"
