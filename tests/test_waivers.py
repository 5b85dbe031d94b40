"""Waivers from the command line: audited, merged with the policy's by the gate, and an expired one
blocks again (at the next scan and at deployment)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sklearn.dummy import DummyClassifier

from tests.conftest import BUNDLED, register_external
from tests.test_cli import mlgate


def test_a_cli_waiver_unblocks_until_it_expires_then_deployment_refuses(env) -> None:
    df = pd.read_csv(BUNDLED)
    features = df.drop(columns=["diagnosis"])
    assert env.retrain().success and env.scan("demo", 1).success
    digest = env.version_tags("demo", 1)["mlgate.dataset_digest"]
    weak = DummyClassifier(strategy="constant", constant="benign").fit(features, df["diagnosis"])
    version = register_external(env, weak, features, tags={"mlgate.dataset_digest": digest, "owner": "x"})
    assert not env.scan("demo", version, only=["model_version", "model_evaluation"]).success
    [regression] = [
        r for r in env.store.list_findings(model_name="demo") if r["payload"]["check"] == "performance"
    ][:1]
    fingerprint = regression["payload"]["fingerprint"]

    past = mlgate(
        "findings",
        "waive",
        fingerprint,
        "--owner",
        "o",
        "--reason",
        "r",
        "--expires",
        "2000-01-01",
        home=env.home,
    )
    assert past.returncode == 2 and "in the past" in past.stderr
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    waive = mlgate(
        "findings",
        "waive",
        fingerprint[:12],
        "--owner",
        "ml-lead@example.com",
        "--reason",
        "known regression",
        "--expires",
        tomorrow,
        home=env.home,
    )
    assert waive.returncode == 0, waive.stderr
    assert env.store.verify_audit().ok
    audit = mlgate("audit", "verify", home=env.home)
    assert audit.returncode == 0, audit.stdout + audit.stderr

    env.rebuild()  # resources read the store's waivers at each load
    assert env.scan("demo", version, only=["model_version", "model_evaluation"]).success
    assert env.version_tags("demo", version)["mlgate.verdict"] == "passed", (
        "the waived finding no longer blocks"
    )

    # time passes: the waiver has expired when deployment re-verifies the scan
    env.store.add_waiver(
        fingerprint=fingerprint,
        owner="ml-lead@example.com",
        reason="known regression",
        expires=dt.date.today() - dt.timedelta(days=1),
    )
    refused = env.scan("demo", version, only=["deployment"])
    assert not refused.success
    assert env.champion("demo") == "1"
    assert any(d["action"] == "refuse" for d in env.store.decisions_for("demo", version))
