"""Registration -> verdict: how long after an outside job registers a version until mlgate tags it.

An outside script (not mlgate's retrain) trains a LogisticRegression on seeded synthetic data
(`sklearn.datasets.make_classification`, N rows x 50 features, 2 classes), logs it with skops,
a signature and an input example into its own MLflow experiment and registers it. The clock starts
when `mlflow.register_model` returns and stops when the version carries `mlgate.verdict`.
Every measurement gets a fresh MLGATE_HOME (Dagster instance, MLflow SQLite registry, findings
store, caches).

Lineage variants (what the outside run tells mlgate about its training data):

  - `no_lineage`: nothing logged; the data checks are not_run and the evaluation has no holdout
    (the model is still loaded through the load guard).
  - `lineage`: the run logs its training split and its 20% holdout as MLflow dataset inputs
    (`mlflow.log_input(mlflow.data.from_pandas(df, source=<parquet path>, targets=...))`,
    contexts `training` and `evaluation`). mlgate resolves them inside the scan
    (`pipelines/lineage.py`: read the files, compare MLflow's digest, store the snapshot) and runs
    both data checks (baseline data contract, no suite; label-noise audit with out-of-fold
    probabilities of the policy's detection model) on all N rows, then evaluates on the holdout.
  - `seen`: right after a `lineage` measurement, in the same home, a second version trained on
    the same data is registered: its lineage is resolved again, the stored data-check results
    are reused, and it is also compared with the champion (the first version).

Paths (how the scan starts):

  - `direct` (a, no sensor interval): `mlgate.api.scan_model("models:/NAME/V", promote=True)`,
    the in-process path of `mlgate scan-model --promote`, which runs the `scan_version` job (the
    job the sensor requests) right after registration. The bench process is warm (imports done).
  - `tick` (b, in process): one real evaluation of `mlflow_registry_sensor` through
    `dg.build_sensor_context` (cursor from a tick before the registration), then the requested
    `scan_version` run in process. The sensor interval is NOT waited: the table adds interval/2
    (mean) and interval + 5 s (worst case: Dagster's sensor daemon loops every 5 s at most) to
    the measured time. Default: at 100k rows only, once (it differs from direct by the tick).
  - `daemon` (b, real): a real `dagster-daemon run` on the repository's workspace.yaml and
    dagster.yaml (queued run coordinator, default run launcher: each run is a new process), with
    MLGATE_SENSOR_INTERVAL as given; the daemon is warm (first sensor tick done) before the
    registration and the bench polls the version's tags every 0.5 s. The one sampled sensor wait
    is replaced by interval/2 (mean) and interval + 5 s (worst) in the expected figures.
    Default: at 100k rows only, once.

A measurement that fails is recorded with the run's full error (`failed_attempts`) and retried
once.

The verdict time is the end of the gate step that wrote the tags (from the run's step stats;
`evaluation_gate`, or `version_gate` when it blocks); the version's `mlgate.scan_run_id` tag
must name that run. Phases come from the run's step stats and the findings store's per-check
seconds. The 1-minute load average is recorded before and after each measurement.

Run from the repo root: `.venv/bin/python bench/bench_registration.py [--rows 10000 100000]
[--repeat 2] [--tick-rows 100000] [--daemon-rows 100000] [--json bench/results_registration.json]`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from machine import machine

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")
MODEL = "outside"
LABEL = "label"
FEATURES = 50
GOAL_SECONDS = 60.0
GOAL_ROWS = 100_000
HOLDOUT_FRACTION, SPLIT_SEED = 0.2, 0  # as the training_data asset's SplitConfig defaults
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
MLGATE_VARS = (
    "MLGATE_HOME",
    "DAGSTER_HOME",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLGATE_STORE_URL",
)
VERDICT_STEPS = ("evaluation_gate", "version_gate")
# Dagster's sensor daemon loops at most every 5 s (dagster._daemon.sensor.MIN_INTERVAL_LOOP_TIME)
# and ticks a sensor on the first loop at or after its minimum interval: worst case interval + 5 s.
LOOP_SECONDS = 5.0
VARIANTS = ("no_lineage", "lineage", "seen")
PATHS = ("direct", "tick", "daemon")

for _var, _value in (
    ("GX_ANALYTICS_ENABLED", "false"),
    ("MLFLOW_ENABLE_TELEMETRY", "false"),
    ("MLFLOW_DISABLE_TELEMETRY", "true"),
    ("DAGSTER_DISABLE_TELEMETRY", "1"),
    ("DO_NOT_TRACK", "1"),
    ("GIT_PYTHON_REFRESH", "quiet"),
    ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"),
):
    os.environ.setdefault(_var, _value)
os.environ.pop("MLGATE_POLICY", None)  # the default policy
os.environ.pop("MLGATE_WATCH_MODELS", None)


# ---------------------------------------------------------------- data and the outside model


@dataclass
class Workload:
    """One size: the outside job's training and holdout files and its model."""

    rows: int
    train_path: Path
    holdout_path: Path
    model: Any
    features: pd.DataFrame  # a few rows, for the signature and input example
    train_s: float


def make_workload(rows: int, features: int, seed: int, folder: Path) -> Workload:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    x, y = make_classification(
        n_samples=rows,
        n_features=features,
        n_informative=20,
        n_redundant=10,
        n_classes=2,
        class_sep=1.5,
        flip_y=0.0,
        random_state=seed,
    )
    frame = pd.DataFrame(x, columns=[f"f{i:02d}" for i in range(features)])
    frame[LABEL] = y
    train, holdout = train_test_split(
        frame, test_size=HOLDOUT_FRACTION, random_state=SPLIT_SEED, stratify=frame[LABEL]
    )
    paths = folder / f"train_{rows}.parquet", folder / f"holdout_{rows}.parquet"
    for part, path in zip((train, holdout), paths, strict=True):
        part.reset_index(drop=True).to_parquet(path, index=False)
    x_train = train.drop(columns=[LABEL])
    start = time.perf_counter()
    model = LogisticRegression(max_iter=2000).fit(x_train, train[LABEL])
    train_s = time.perf_counter() - start
    return Workload(rows, *paths, model, x_train.head(20), train_s)


# ---------------------------------------------------------------- one isolated mlgate home


def make_template_db(folder: Path) -> Path:
    """An empty, migrated MLflow database, copied into every home (creating it takes seconds)."""
    from mlflow import MlflowClient

    path = folder / "mlflow-template.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{path}", registry_uri=f"sqlite:///{path}")
    client.search_experiments()
    client.search_registered_models()
    return path


@contextlib.contextmanager
def isolated_home(folder: Path, template: Path) -> Iterator[Any]:
    """Point every mlgate/Dagster/MLflow location at `folder`; yields the settings."""
    from pipelines.settings import load_settings, prepare_environment

    home = folder / "mlgate-home"
    home.mkdir(parents=True)
    shutil.copyfile(template, home / "mlflow.db")
    saved = {var: os.environ.get(var) for var in MLGATE_VARS}
    cwd = Path.cwd()
    os.environ["MLGATE_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    os.environ["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_REGISTRY_URI"] = f"sqlite:///{home / 'mlflow.db'}"
    os.environ.pop("MLGATE_STORE_URL", None)
    os.chdir(folder)  # no stray ./mlgate.yaml or ./mlruns
    try:
        settings = load_settings()
        prepare_environment(settings)
        yield settings
    finally:
        os.chdir(cwd)
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def register_outside(settings: Any, work: Workload, *, lineage: bool) -> str:
    """Log and register the model as another team's job would: its own experiment, skops, and
    (with `lineage`) its training and holdout files as dataset inputs of the run."""
    import mlflow
    import skops.io
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry_uri)
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
    experiment = client.get_experiment_by_name("outside-team")
    if experiment is None:
        artifacts = settings.home / "outside-artifacts"
        artifacts.mkdir(exist_ok=True)
        experiment_id = client.create_experiment("outside-team", artifact_location=artifacts.as_uri())
    else:
        experiment_id = experiment.experiment_id
    with mlflow.start_run(experiment_id=experiment_id):
        if lineage:
            for path, context in ((work.train_path, "training"), (work.holdout_path, "evaluation")):
                data = mlflow.data.from_pandas(
                    pd.read_parquet(path), source=str(path), targets=LABEL, name=path.stem
                )
                mlflow.log_input(data, context=context)
        info = mlflow.sklearn.log_model(
            work.model,
            name="model",
            serialization_format="skops",
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(work.model)),
            pip_requirements=["scikit-learn", "skops"],
            signature=infer_signature(work.features, work.model.predict(work.features)),
            input_example=work.features.head(2),
        )
    tags = {"owner": "outside-team@example.com"}
    return str(mlflow.register_model(info.model_uri, MODEL, tags=tags).version)


# ---------------------------------------------------------------- measuring one registration


@dataclass
class Measurement:
    rows: int
    variant: str
    path: str  # direct | tick | daemon
    repeat: int
    verdict: str
    run_id: str
    verdict_s: float  # register_model returned -> gate step that wrote mlgate.verdict ended
    done_s: float  # -> the scan path returned (direct/tick) or the tag was seen (daemon)
    tick_s: float | None  # tick: the in-process evaluation; daemon: tick start -> run created
    sensor_s: float | None  # daemon: registration -> start of the tick that requested the run
    launch_s: float | None  # run created -> first step started (queue, run process start, import)
    steps: dict[str, float]
    checks: dict[str, float]
    phases: dict[str, float]
    check_status: dict[str, str]
    visible_s: float  # the version's creation time minus t0 (< 0: READY before register_model returned)
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    started_utc: str
    notes: list[str] = field(default_factory=list)


def run_timings(instance: Any, run_id: str) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    stats = instance.get_run_step_stats(run_id)
    spans = {s.step_key: (s.start_time, s.end_time) for s in stats if s.start_time and s.end_time}
    return {k: round(e - s, 3) for k, (s, e) in spans.items()}, spans


def check_timings(settings: Any, run_id: str) -> tuple[dict[str, float], dict[str, str]]:
    """Seconds and status of every check result this run wrote (model scan and dataset scan)."""
    import sqlalchemy as sa

    from checks.store import FindingsStore, check_results, scans

    store = FindingsStore(settings.store_url)
    query = (
        sa.select(check_results.c.check_name, check_results.c.status, check_results.c.detail)
        .join(scans, scans.c.id == check_results.c.scan_id)
        .where(scans.c.run_id == run_id)
        .order_by(check_results.c.id)
    )
    seconds, status = {}, {}
    with store.engine.connect() as conn:
        for name, state, detail in conn.execute(query):
            seconds[name] = float((detail or {}).get("seconds", 0.0))
            status[name] = state
    return seconds, status


def phases_of(
    steps: dict[str, float], checks: dict[str, float], verdict_s: float, first: float
) -> dict[str, float]:
    """snapshot, data checks, label-noise audit, model checks, evaluation, verdict gate, rest."""
    data = checks.get("data_quality", 0.0)
    noise = checks.get("label_noise", 0.0)
    gate = steps.get("version_gate", 0.0)
    phases = {
        "before_first_step": first,
        "snapshot": steps.get("model_version", 0.0),
        "data_checks": data,
        "label_noise_audit": noise,
        "model_checks": max(gate - data - noise, 0.0),  # artifact scan, registry facts, store writes
        "evaluation": steps.get("model_evaluation", 0.0),
        "evaluation_gate": steps.get("evaluation_gate", 0.0),
    }
    phases["other"] = max(verdict_s - sum(phases.values()), 0.0)
    return {k: round(v, 3) for k, v in phases.items()}


def finish(
    settings: Any,
    instance: Any,
    *,
    work: Workload,
    variant: str,
    path: str,
    repeat: int,
    version: str,
    t0: float,
    done_s: float,
    extra: dict[str, Any],
) -> Measurement:
    extra.setdefault("tick_s", None)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
    mv = client.get_model_version(MODEL, version)
    tags = dict(mv.tags)
    extra["visible_s"] = round(mv.creation_timestamp / 1000 - t0, 3)
    if "mlgate.verdict" not in tags:
        raise RuntimeError(f"{MODEL} v{version}: no mlgate.verdict tag after the scan")
    run_id = tags["mlgate.scan_run_id"]
    steps, spans = run_timings(instance, run_id)
    gate = next((k for k in VERDICT_STEPS if k in spans), None)
    if gate is None:
        raise RuntimeError(f"run {run_id}: no gate step in {sorted(spans)}")
    verdict_s = spans[gate][1] - t0
    first = min(s for s, _ in spans.values()) - t0
    record = instance.get_run_record_by_id(run_id)
    created = record.create_timestamp.timestamp() - t0
    checks, status = check_timings(settings, run_id)
    notes = [f"verdict written by {gate}"]
    if path == "daemon":
        tick_start = _tick_start(instance, run_id)
        if tick_start is not None:  # sensor_s: waiting for the tick; tick_s: the tick until the run exists
            extra["sensor_s"] = round(tick_start - t0, 3)
            extra["tick_s"] = round(created - (tick_start - t0), 3)
        else:
            extra["sensor_s"] = round(created, 3)
            notes.append("tick record not found: sensor wait includes the tick")
        extra["launch_s"] = round(first - created, 3)
        first -= created  # phases start at the run's creation; the sensor wait is its own column
        verdict_phase = verdict_s - created
    else:
        extra["launch_s"] = round(first - created, 3)
        verdict_phase = verdict_s
    return Measurement(
        rows=work.rows,
        variant=variant,
        path=path,
        repeat=repeat,
        verdict=tags["mlgate.verdict"],
        run_id=run_id,
        verdict_s=round(verdict_s, 3),
        done_s=round(done_s, 3),
        steps=steps,
        checks=checks,
        phases=phases_of(steps, checks, verdict_phase, first),
        check_status=status,
        notes=notes,
        **extra,
    )


def measure_inprocess(
    work: Workload,
    variant: str,
    path: str,
    repeat: int,
    new_folder: Callable[[], Path],
    template: Path,
    *,
    then_seen: bool,
) -> list[Measurement]:
    """One registration scanned in process (direct or tick); with `then_seen`, a second version
    on the same data is then registered and scanned directly in the same home (`seen`)."""
    import dagster as dg

    from mlgate.api import scan_model
    from pipelines.definitions import build_definitions
    from pipelines.partitions import partition_key
    from pipelines.resources import default_resources
    from pipelines.sensors import mlflow_registry_sensor

    def one(
        settings: Any, instance: Any, defs: Any, variant: str, path: str, cursor: str | None
    ) -> Measurement:
        load_before = os.getloadavg()
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        version = register_outside(settings, work, lineage=variant != "no_lineage")
        t0 = time.time()
        tick_s = None
        if path == "direct":
            try:
                scan_model(f"models:/{MODEL}/{version}", promote=True)
            except RuntimeError as exc:
                run_id = str(exc).split()[2] if str(exc).startswith("scan run ") else ""
                raise RuntimeError(f"{exc}\n{run_failure(instance, run_id)}") from None
        else:
            result = mlflow_registry_sensor(
                dg.build_sensor_context(
                    instance=instance, cursor=cursor, definitions=defs, resources=default_resources(settings)
                )
            )
            tick_s = round(time.time() - t0, 3)
            keys = [r.partition_key for r in result.run_requests]
            if keys != [partition_key(MODEL, version)]:
                raise RuntimeError(f"sensor requested {keys}, expected {MODEL}/{version}")
            instance.add_dynamic_partitions("model_versions", keys)
            run = defs.resolve_job_def("scan_version").execute_in_process(
                instance=instance, partition_key=keys[0], run_config=QUIET, raise_on_error=False
            )
            if not run.success:
                print(f"  scan run {run.run_id} failed: {run_failure(instance, run.run_id)}", flush=True)
        done_s = time.time() - t0
        return finish(
            settings,
            instance,
            work=work,
            variant=variant,
            path=path,
            repeat=repeat,
            version=version,
            t0=t0,
            done_s=done_s,
            extra={
                "tick_s": tick_s,
                "sensor_s": None,
                "load_before": load_before,
                "load_after": os.getloadavg(),
                "started_utc": started,
            },
        )

    folder = new_folder()
    with isolated_home(folder, template) as settings, dg.DagsterInstance.get() as instance:
        defs = build_definitions()
        cursor = None
        if path == "tick":  # the sensor's state before the registration, as a running daemon has it
            first = mlflow_registry_sensor(
                dg.build_sensor_context(
                    instance=instance, definitions=defs, resources=default_resources(settings)
                )
            )
            cursor = getattr(first, "cursor", None)
        measured = [one(settings, instance, defs, variant, path, cursor)]
        if then_seen:
            measured.append(one(settings, instance, defs, "seen", "direct", None))
        return measured


def _sensor_ticked(instance: Any) -> bool:
    for state in instance.all_instigator_state():
        if state.name == "mlflow_registry_sensor" and instance.get_ticks(
            state.instigator_origin_id, state.selector_id, limit=1
        ):
            return True
    return False


def _tick_start(instance: Any, run_id: str) -> float | None:
    """Epoch start of the registry sensor's tick that requested `run_id`."""
    for state in instance.all_instigator_state():
        if state.name != "mlflow_registry_sensor":
            continue
        for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=20):
            if run_id in tick.run_ids:
                return tick.timestamp
    return None


def _failed_run(instance: Any, key: str) -> str | None:
    """The id of a finished, unsuccessful run for the partition, if any."""
    import dagster as dg

    for record in instance.get_run_records(filters=dg.RunsFilter(tags={"dagster/partition": key}), limit=5):
        run = record.dagster_run
        if run.is_finished and not run.is_success:
            return run.run_id
    return None


def _wait_for_run_end(instance: Any, key: str, timeout: float = 180.0) -> None:
    """Wait until every run of the partition has finished (the tag is written mid-step)."""
    import dagster as dg

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = instance.get_run_records(filters=dg.RunsFilter(tags={"dagster/partition": key}), limit=5)
        if records and all(r.dagster_run.is_finished for r in records):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the scan run of {key} did not finish within {timeout:.0f}s of its verdict")


def measure_daemon(
    work: Workload, variant: str, repeat: int, new_folder: Callable[[], Path], template: Path, interval: int
) -> tuple[Measurement, float]:
    """A real dagster-daemon: start it, wait for its first sensor tick, register, poll the tags."""
    import dagster as dg
    from mlflow import MlflowClient

    from pipelines.partitions import partition_key

    folder = new_folder()
    with isolated_home(folder, template) as settings, dg.DagsterInstance.get() as instance:
        env = {**os.environ, "MLGATE_SENSOR_INTERVAL": str(interval)}
        log = (folder / "daemon.log").open("w")
        start = time.perf_counter()
        daemon = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("dagster-daemon")),
                "run",
                "-w",
                str(REPO / "workspace.yaml"),
            ],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: code server and run processes included
        )
        try:
            deadline = time.monotonic() + 240
            while not _sensor_ticked(instance):
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"dagster-daemon did not tick: {(folder / 'daemon.log').read_text()[-2000:]}"
                    )
                time.sleep(1.0)
            warm_s = time.perf_counter() - start
            client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
            load_before = os.getloadavg()
            started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            version = register_outside(settings, work, lineage=variant != "no_lineage")
            t0 = time.time()
            deadline = time.monotonic() + 300
            while "mlgate.verdict" not in (client.get_model_version(MODEL, version).tags or {}):
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"no verdict: {(folder / 'daemon.log').read_text()[-2000:]}")
                failed = _failed_run(instance, partition_key(MODEL, version))
                if failed:
                    raise RuntimeError(f"scan run {failed} failed: {run_failure(instance, failed)}")
                time.sleep(0.5)
            done_s = time.time() - t0
            load_after = os.getloadavg()
            _wait_for_run_end(instance, partition_key(MODEL, version))  # step stats are complete
            measurement = finish(
                settings,
                instance,
                work=work,
                variant=variant,
                path="daemon",
                repeat=repeat,
                version=version,
                t0=t0,
                done_s=done_s,
                extra={
                    "load_before": load_before,
                    "load_after": load_after,
                    "started_utc": started,
                },
            )
            measurement.notes.append(f"daemon warm-up (start to first sensor tick) {warm_s:.1f}s")
            measurement.notes.append(f"MLGATE_SENSOR_INTERVAL={interval}")
            return measurement, warm_s
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait(timeout=30)
            log.close()


def attempt(failures: list[dict[str, str]], label: str, fn: Callable[[], list[T]]) -> list[T]:
    """Run one measurement; on an error record it (with the run's full error) and try once more."""
    for tries in (1, 2):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - recorded in the results, then retried once
            failures.append({"measurement": label, "try": str(tries), "error": str(exc)[-4000:]})
            print(f"  {label}: attempt {tries} failed: {str(exc)[-1500:]}", flush=True)
    return []


def run_failure(instance: Any, run_id: str) -> str:
    """The full error of a run's failed steps (scan_model's message keeps only the first line)."""
    errors = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event and event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            errors.append(f"{event.step_key}: {event.step_failure_data.error.to_string()[-3000:]}")
    return "\n".join(errors) or "no step failure recorded"


# ---------------------------------------------------------------- report


def cold_import_seconds() -> float:
    """Importing the code location in a fresh process (what every daemon-launched run pays)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import pipelines.definitions"], check=True, cwd=REPO)
    return round(time.perf_counter() - start, 2)


def environment() -> dict[str, Any]:
    import dagster
    import mlflow
    import sklearn

    import pipelines

    code = Path(pipelines.__file__).resolve().parent.parent

    def git(*command: str) -> str:
        return subprocess.run(["git", *command], cwd=code, capture_output=True, text=True).stdout.strip()

    # MLGATE_BENCH_COMMIT names the commit of a tree exported with `git archive` (no .git there)
    commit = git("rev-parse", "--short", "HEAD") or os.environ.get("MLGATE_BENCH_COMMIT", "unknown")
    return {
        "code": str(code),
        "commit": commit,
        "uncommitted": git("status", "--short").splitlines(),
        **machine(np, pd, sklearn, dagster, mlflow),
    }


TABLE_HEAD = [
    "| rows | lineage | path | verdict | to verdict (s) | + interval mean / worst (s) | goal <= 60 s "
    "| sensor wait + tick (s) | run start (s) | snapshot | data checks | label-noise audit | model checks "
    "| evaluation | eval gate | other | load 1-min before / after |",
    "|---:|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
]


def with_interval(m: Measurement, interval: int) -> tuple[float, float] | None:
    """(mean, worst) registration -> verdict with the sensor's polling delay.

    tick: measured + interval/2, measured + interval + LOOP_SECONDS. daemon: the same, on the
    measured time minus its one sampled sensor wait. direct: None (no sensor involved).
    """
    if m.path == "direct":
        return None
    base = m.verdict_s - (m.sensor_s or 0.0)
    return base + interval / 2, base + interval + LOOP_SECONDS


def table_row(m: Measurement, interval: int) -> str:
    p = m.phases
    expected = with_interval(m, interval)
    total = f"{expected[0]:.1f} / {expected[1]:.1f}" if expected else "-"
    worst = expected[1] if expected else m.verdict_s
    goal = "" if m.rows != GOAL_ROWS else ("met" if worst <= GOAL_SECONDS else "NOT met")
    if m.path == "daemon":
        sensor = f"{m.sensor_s:.1f} + {m.tick_s or 0.0:.1f}"
    else:
        sensor = f"0 + {m.tick_s:.2f}" if m.tick_s is not None else "-"
    return (
        f"| {m.rows:,} | {m.variant} | {m.path} | {m.verdict} | {m.verdict_s:.1f} | {total} | {goal} "
        f"| {sensor} | {p['before_first_step']:.1f} | {p['snapshot']:.1f} | {p['data_checks']:.1f} "
        f"| {p['label_noise_audit']:.1f} | {p['model_checks']:.1f} | {p['evaluation']:.1f} "
        f"| {p['evaluation_gate']:.1f} | {p['other']:.1f} "
        f"| {m.load_before[0]:.2f} / {m.load_after[0]:.2f} |"
    )


def save(
    args: argparse.Namespace,
    env: dict[str, Any],
    interval: int,
    bench_start: float,
    daemon_warm: list[float],
    failures: list[dict[str, str]],
    measurements: list[Measurement],
    *,
    final: bool,
) -> list[str]:
    """The sorted table; also (re)written to --json after every measurement, so a stopped run
    keeps what it measured (`complete` says whether the run finished)."""
    ordered = sorted(
        measurements, key=lambda m: (m.rows, VARIANTS.index(m.variant), PATHS.index(m.path), m.repeat)
    )
    table = [*TABLE_HEAD, *(table_row(m, interval) for m in ordered)]
    if args.json:
        document = {
            "environment": env,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "sensor_interval_s": interval,
            "goal": {"rows": GOAL_ROWS, "features": args.features, "seconds": GOAL_SECONDS},
            "complete": final,
            "bench_seconds": round(time.perf_counter() - bench_start, 1),
            "load_at_end": os.getloadavg(),
            "daemon_warm_up_s": [round(w, 1) for w in daemon_warm],
            "failed_attempts": failures,
            "measurements": [asdict(m) for m in ordered],
            "table": table,
        }
        args.json.write_text(json.dumps(document, indent=2))
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--features", type=int, default=FEATURES)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--extra-repeat", type=int, default=1, help="runs per size of the tick path and of `seen`"
    )
    parser.add_argument(
        "--daemon-rows", type=int, nargs="*", default=[100_000], help="sizes measured with a real daemon"
    )
    parser.add_argument(
        "--tick-rows", type=int, nargs="*", default=[100_000], help="sizes measured on the tick path"
    )
    parser.add_argument(
        "--interval", type=int, default=None, help="sensor interval (default: the sensor's own)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from pipelines.sensors import sensor_interval

    interval = args.interval if args.interval is not None else sensor_interval()
    bench_start = time.perf_counter()
    env = environment()
    env["load_at_start"] = os.getloadavg()
    env["cold_import_pipelines_definitions_s"] = cold_import_seconds()
    print(json.dumps(env, indent=2), flush=True)
    measurements: list[Measurement] = []
    daemon_warm: list[float] = []
    failures: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(
        prefix="mlgate-bench-registration-", ignore_cleanup_errors=True
    ) as scratch:
        root = Path(scratch)
        template = make_template_db(root)
        counter = iter(range(10_000))

        def folder() -> Path:
            path = root / f"m{next(counter):03d}"
            path.mkdir()
            return path

        warm = make_workload(1_000, args.features, args.seed, root)  # imports and first-call costs
        for variant in ("no_lineage", "lineage"):
            measure_inprocess(warm, variant, "tick", 0, folder, template, then_seen=variant == "lineage")
        print(f"warm-up done at {time.perf_counter() - bench_start:.0f}s", flush=True)

        for rows in args.rows:
            work = make_workload(rows, args.features, args.seed, root)
            print(
                f"\n{rows:,} rows x {args.features}: outside model trained in {work.train_s:.1f}s", flush=True
            )
            for repeat in range(1, max(args.repeat, args.extra_repeat) + 1):
                # `seen` follows a `lineage` run in its home; the tick path differs from direct
                # only by the tick itself: both are measured fewer times
                plan = [(v, "direct") for v in ("no_lineage", "lineage") if repeat <= args.repeat]
                if repeat <= args.extra_repeat and rows in (args.tick_rows or []):
                    plan.append(("lineage", "tick"))
                for variant, path in plan:
                    then_seen = variant == "lineage" and path == "direct" and repeat <= args.extra_repeat
                    done = attempt(
                        failures,
                        f"{rows} {variant} {path} #{repeat}",
                        functools.partial(
                            measure_inprocess,
                            work,
                            variant,
                            path,
                            repeat,
                            folder,
                            template,
                            then_seen=then_seen,
                        ),
                    )
                    for m in done:
                        measurements.append(m)
                        print("  " + table_row(m, interval), flush=True)
                    save(args, env, interval, bench_start, daemon_warm, failures, measurements, final=False)
            if rows in (args.daemon_rows or []):
                for m, warm_s in attempt(
                    failures,
                    f"{rows} lineage daemon #1",
                    lambda w=work: [measure_daemon(w, "lineage", 1, folder, template, interval)],
                ):
                    measurements.append(m)
                    daemon_warm.append(warm_s)
                    print("  " + table_row(m, interval), flush=True)
                save(args, env, interval, bench_start, daemon_warm, failures, measurements, final=False)

    table = save(args, env, interval, bench_start, daemon_warm, failures, measurements, final=True)
    print(
        f"\nsensor interval {interval}s; bench took {time.perf_counter() - bench_start:.0f}s; "
        f"failed attempts: {len(failures)}\n"
    )
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
