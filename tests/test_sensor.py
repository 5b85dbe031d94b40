"""The registry sensor against a real `mlflow server` on 127.0.0.1, with versions registered by
another process: every READY version is requested once, scanned and tagged, across an outage."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import requests

from pipelines.sensors import mlflow_registry_sensor
from tests.conftest import BUNDLED

OUTSIDE_SCRIPT = textwrap.dedent(f"""
    import mlflow, pandas as pd, skops.io
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    df = pd.read_csv({str(BUNDLED)!r})
    X, y = df.drop(columns=["diagnosis"]), df["diagnosis"]
    model = LogisticRegression(max_iter=5000).fit(X, y)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", serialization_format="skops", pip_requirements=["scikit-learn"],
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
            signature=infer_signature(X, model.predict(X)), input_example=X.head(2))
    mlflow.register_model(info.model_uri, "outside", tags={{"owner": "another-team"}})
""")


class MlflowServer:
    """A real MLflow tracking server on a free loopback port, stoppable and restartable."""

    def __init__(self, root: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.root = root
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        exe = Path(sys.executable).with_name("mlflow")
        env = {**os.environ, "MLFLOW_ENABLE_TELEMETRY": "false"}
        self.process = subprocess.Popen(
            [
                str(exe),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{self.root / 'server.db'}",
                "--default-artifact-root",
                str(self.root / "artifacts"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "server.log").open("a"),
            env=env,
        )
        for _ in range(120):
            try:
                if requests.get(f"{self.uri}/health", timeout=1).ok:
                    return
            except requests.RequestException:  # refused, or slow to answer under load
                time.sleep(0.5)
        raise RuntimeError(f"mlflow server did not start: {(self.root / 'server.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _register_from_another_process(server: MlflowServer) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.uri, "MLFLOW_ENABLE_TELEMETRY": "false"}
    subprocess.run(
        [sys.executable, "-c", OUTSIDE_SCRIPT], env=env, check=True, capture_output=True, timeout=300
    )


def _tick(env, cursor: str | None):
    from pipelines.resources import default_resources

    context = dg.build_sensor_context(
        instance=env.instance, cursor=cursor, definitions=env.defs, resources=default_resources(env.settings)
    )
    return mlflow_registry_sensor(context)


def _run_requests(env, result) -> list[str]:
    keys = [r.partition_key for r in result.run_requests]
    env.instance.add_dynamic_partitions("model_versions", keys)
    for key in keys:
        name, version = key.split("/")
        env.scan(name, version)
    return keys


def test_sensor_scans_every_version_once_across_an_outage(env, mlflow_server, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", mlflow_server.uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    env.rebuild()

    _register_from_another_process(mlflow_server)
    _register_from_another_process(mlflow_server)
    first = _tick(env, None)
    assert _run_requests(env, first) == ["outside/1", "outside/2"]
    for version in ("1", "2"):
        assert env.version_tags("outside", version)["mlgate.verdict"] == "passed"
    assert env.champion("outside") == "2"

    again = _tick(env, first.cursor)
    assert isinstance(again, dg.SkipReason), "tag writes and handled versions do not retrigger"

    mlflow_server.stop()
    try:
        outage = _tick(env, first.cursor)
        assert isinstance(outage, dg.SkipReason) and "unreachable" in outage.skip_message
    finally:
        mlflow_server.start()

    _register_from_another_process(mlflow_server)  # registered while nobody was looking
    assert env.retrain().success  # an owned version, scanned in process as `mlgate run` does
    assert env.scan("demo", 1).success
    later = _tick(env, first.cursor)
    assert _run_requests(env, later) == ["outside/3"], "the owned, already scanned version is not requested"
    assert env.version_tags("outside", "3")["mlgate.verdict"] == "passed"

    for key in ("outside/1", "outside/2", "outside/3", "demo/1"):
        runs = env.instance.get_run_records(filters=dg.RunsFilter(tags={"dagster/partition": key}))
        assert len(runs) == 1, f"{key} scanned exactly once"


def _plan(env, cursor: dict[str, int] | None = None):
    from pipelines.resources import default_resources
    from pipelines.sensors import plan_scans

    resources = default_resources(env.settings)
    registry = resources["registry"]
    return plan_scans(
        registry.client(),
        env.store,
        env.instance,
        registry.registry_uri,
        cursor or {},
        [],
        time.monotonic() + 30,
    )


def _retrain_tagged(env, tags: dict[str, str]) -> None:
    from tests.conftest import QUIET

    config = {
        "ops": {"raw_data": {"config": {"path": str(BUNDLED), "label": "diagnosis", "model_name": "demo"}}},
        **QUIET,
    }
    job = env.defs.resolve_job_def("retrain")
    assert job.execute_in_process(instance=env.instance, run_config=config, tags=tags).success


def test_sensor_leaves_a_cli_retrain_s_version_to_the_cli_until_the_handoff_expires(env, monkeypatch) -> None:
    from pipelines.partitions import IN_PROCESS_SCAN_TAG

    _retrain_tagged(env, {IN_PROCESS_SCAN_TAG: "in_process"})  # as `mlgate run` does, before its scan
    waiting = _plan(env)
    assert waiting.keys == [] and waiting.cursor == {}, "not requested, and the cursor waits at it"
    monkeypatch.setattr("pipelines.sensors.HANDOFF_SECONDS", 0.0)  # the CLI died before scanning
    assert _plan(env).keys == ["demo/1"]


def test_sensor_skips_a_version_its_cli_already_scanned_and_requests_scheduled_retrains(env) -> None:
    from pipelines.partitions import IN_PROCESS_SCAN_TAG

    _retrain_tagged(env, {IN_PROCESS_SCAN_TAG: "in_process"})
    assert env.scan("demo", 1).success
    _retrain_tagged(env, {})  # a scheduled retrain: the sensor scans its version at once
    plan = _plan(env)
    assert plan.keys == ["demo/2"] and plan.cursor == {"demo": 2}
