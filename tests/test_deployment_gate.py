"""The deployment step re-verifies the exact artifact and a complete, passing scan (promise 4)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.dummy import DummyClassifier

from tests.conftest import BUNDLED, register_external


def _refused(env, result, version: str) -> str:
    assert not result.success
    refusals = [d for d in env.store.decisions_for("demo", version) if d["action"] == "refuse"]
    assert refusals, "the refusal is recorded"
    return refusals[-1]["reason"]


def test_deployment_alone_refuses_an_unscanned_version(env) -> None:
    assert env.retrain().success
    reason = _refused(env, env.scan("demo", 1, only=["deployment"]), "1")
    assert "no scan of this version" in reason
    assert env.champion("demo") is None


def test_deployment_alone_refuses_a_blocked_version(env) -> None:
    df = pd.read_csv(BUNDLED)
    features = df.drop(columns=["diagnosis"])
    weak = DummyClassifier(strategy="constant", constant="benign").fit(features, df["diagnosis"])
    assert env.retrain().success and env.scan("demo", 1).success
    digest = env.version_tags("demo", 1)["mlgate.dataset_digest"]
    version = register_external(env, weak, features, tags={"mlgate.dataset_digest": digest, "owner": "x"})
    assert not env.scan("demo", version).success
    assert env.version_tags("demo", version)["mlgate.verdict"] == "blocked"
    reason = _refused(env, env.scan("demo", version, only=["deployment"]), version)
    assert "performance" in reason or "Holdout" in reason
    assert env.champion("demo") == "1"


def test_deployment_refuses_a_version_altered_after_its_scan(env) -> None:
    assert env.retrain().success and env.scan("demo", 1).success
    assert env.retrain().success
    assert env.scan("demo", 2, only=["model_version", "model_evaluation"]).success
    assert env.version_tags("demo", 2)["mlgate.verdict"] == "passed"
    # someone swaps a file in the registry's artifact store after the scan
    source = env.client.get_model_version("demo", "2").source
    model_id = source.removeprefix("models:/")
    [model_dir] = [p for p in Path(env.settings.artifact_root).rglob(model_id) if p.is_dir()]
    requirements = next(model_dir.rglob("requirements.txt"))
    requirements.write_text(requirements.read_text() + "evil-package==1.0\n")
    reason = _refused(env, env.scan("demo", 2, only=["deployment"]), "2")
    assert "no scan of this version with this artifact digest" in reason
    assert env.champion("demo") == "1"


def test_deployment_requires_a_rescan_after_a_policy_change(env) -> None:
    assert env.retrain().success
    assert env.scan("demo", 1, only=["model_version", "model_evaluation"]).success
    env.set_policy("checks:\n  label_noise:\n    max_noise_rate: 0.04\n")
    reason = _refused(env, env.scan("demo", 1, only=["deployment"]), "1")
    assert "policy changed" in reason
    assert env.champion("demo") is None


def test_passing_version_is_not_promoted_over_a_newer_champion_or_when_auto_promote_is_off(env) -> None:
    env.set_policy("models:\n  demo:\n    auto_promote: false\n")
    assert env.retrain().success and env.scan("demo", 1).success
    assert env.champion("demo") is None
    assert [d["action"] for d in env.store.decisions_for("demo", "1") if d["action"] != "verdict"] == ["hold"]


def test_an_older_version_that_passes_is_held_not_promoted(env) -> None:
    assert env.retrain().success and env.retrain(estimator="random_forest").success
    assert env.scan("demo", 2).success and env.champion("demo") == "2"
    assert env.scan("demo", 1).success
    assert env.champion("demo") == "2"
    [hold] = [d for d in env.store.decisions_for("demo", "1") if d["action"] == "hold"]
    assert "already holds v2" in hold["reason"]


def test_deployment_refuses_when_the_champion_moved_since_the_comparison(env) -> None:
    assert env.retrain().success and env.retrain().success
    # both scanned before either is promoted: each was compared with no champion
    assert env.scan("demo", 1, only=["model_version", "model_evaluation"]).success
    assert env.scan("demo", 2, only=["model_version", "model_evaluation"]).success
    assert env.scan("demo", 1, only=["deployment"]).success and env.champion("demo") == "1"
    reason = _refused(env, env.scan("demo", 2, only=["deployment"]), "2")
    assert "compared with no champion" in reason and "rescan" in reason
    assert env.scan("demo", 2).success, "a fresh scan compares with v1 and may then promote"
    assert env.champion("demo") == "2"


def test_a_model_that_fails_to_load_at_evaluation_is_blocked_with_a_critical_finding(env) -> None:
    from pipelines.storage import load_version

    assert env.retrain().success
    assert env.scan("demo", 1, only=["model_version"]).success
    snapshot = load_version(env.settings.cache_dir, env.settings.registry_uri, "demo", "1")
    cached = Path(snapshot.artifact_dir) / "model.skops"
    cached.write_bytes(b"tampered")
    assert not env.scan("demo", 1, only=["model_evaluation"]).success
    tags = env.version_tags("demo", 1)
    # every check that needs the model fails closed: performance, robustness, membership inference
    assert tags["mlgate.verdict"] == "blocked" and tags["mlgate.findings.critical"] == "3"
    result = env.store.checks_of(env.store.latest_scan("model_version", model_name="demo")["id"])
    assert {result[c].status for c in ("performance", "robustness", "membership_inference")} == {"error"}
    assert "no longer match the scanned digest" in result["performance"].findings[0].title
