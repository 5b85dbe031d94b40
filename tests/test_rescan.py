"""The weekly rescan of alias holders: a new blocking finding marks the holder at risk, fails the
run and, where the policy says so, moves the alias back; a rescan never promotes."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd

from pipelines.resources import default_resources
from pipelines.schedules import weekly_rescan
from tests.conftest import BUNDLED, QUIET


def _slightly_noisy_copy(tmp_path, fraction: float = 0.03):
    df = pd.read_csv(BUNDLED)
    rows = np.random.default_rng(7).choice(len(df), int(fraction * len(df)), replace=False)
    df.loc[rows, "diagnosis"] = df.loc[rows, "diagnosis"].map({"benign": "malignant", "malignant": "benign"})
    folder = tmp_path / "incoming"
    folder.mkdir()
    path = folder / "breast_cancer.csv"  # same logical dataset, same suite
    df.to_csv(path, index=False)
    return path


def _schedule_context(env) -> dg.ScheduleEvaluationContext:
    return dg.build_schedule_context(
        instance=env.instance,
        resources=default_resources(env.settings),
        scheduled_execution_time=dt.datetime(2026, 11, 29, 3, tzinfo=dt.UTC),
    )


def test_weekly_rescan_blocks_the_holder_and_rolls_back_per_policy(env, tmp_path) -> None:
    assert env.retrain().success and env.scan("demo", 1).success
    assert env.retrain(path=_slightly_noisy_copy(tmp_path)).success
    assert env.scan("demo", 2).success, "3% noise is within the default 5%"
    assert env.champion("demo") == "2"

    env.set_policy(
        "checks:\n  label_noise:\n    max_noise_rate: 0.02\nmodels:\n  demo:\n    rollback_on_risk: true\n"
    )
    assert env.scan("demo", 1, only=["model_version", "model_evaluation"]).success, "v1 still passes"

    context = _schedule_context(env)
    requests = weekly_rescan(context)
    assert [r.partition_key for r in requests] == ["demo/2"], "only alias holders are rescanned"
    rescan = env.defs.resolve_job_def("rescan_version").execute_in_process(
        instance=env.instance, partition_key="demo/2", run_config=QUIET, raise_on_error=False
    )
    assert not rescan.success
    tags = env.version_tags("demo", 2)
    assert tags["mlgate.verdict"] == "blocked" and tags["mlgate.at_risk"] == "true"
    assert env.champion("demo") == "1", "moved back to the newest version that still passes"
    [rollback] = [d for d in env.store.decisions_for("demo", "2") if d["action"] == "rollback"]
    assert "to v1" in rollback["reason"]
    assert not {e.step_key for e in rescan.all_events if e.step_key == "deployment"}


def test_without_the_policy_switch_the_at_risk_holder_keeps_the_alias(env) -> None:
    assert env.retrain().success and env.scan("demo", 1).success
    env.set_policy("checks:\n  label_noise:\n    max_noise_rate: 0.0\n")
    context = _schedule_context(env)
    [request] = weekly_rescan(context)
    rescan = env.defs.resolve_job_def("rescan_version").execute_in_process(
        instance=env.instance, partition_key=request.partition_key, run_config=QUIET, raise_on_error=False
    )
    assert not rescan.success
    assert env.version_tags("demo", 1)["mlgate.at_risk"] == "true"
    assert env.champion("demo") == "1"
    assert not [d for d in env.store.decisions_for("demo", "1") if d["action"] == "rollback"]
