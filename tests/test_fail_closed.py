"""Fail closed: a detector that raises or overruns its budget blocks, through the real jobs."""

from __future__ import annotations

import time

import checks.stage_checks


def test_detector_that_raises_blocks_the_version(env, monkeypatch) -> None:
    assert env.retrain().success

    def broken(*args, **kwargs):
        raise RuntimeError("registry detector exploded")

    monkeypatch.setattr(checks.stage_checks, "validate_registry_entry", broken)
    scan = env.scan("demo", 1)
    assert not scan.success
    tags = env.version_tags("demo", 1)
    assert tags["mlgate.verdict"] == "blocked"
    assert tags["mlgate.findings.critical"] == "1"
    assert env.champion("demo") is None
    stored = env.store.checks_of(env.store.latest_scan("model_version", model_name="demo")["id"])
    result = stored["registry_validation"]
    assert result.status == "error"
    [finding] = result.findings
    assert finding.severity.label == "critical"
    assert "RuntimeError" in finding.title and "registry detector exploded" in finding.title
    # nothing downstream of the failed gate ran
    ran = {e.step_key for e in scan.all_events if e.is_step_success}
    assert not {"model_evaluation", "deployment"} & ran


def _slow_label_noise(monkeypatch) -> None:
    """The real detector, one second late: it overruns a 0.2 s budget every time."""
    real = checks.stage_checks.find_label_noise

    def slow(*args, **kwargs):
        time.sleep(1.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(checks.stage_checks, "find_label_noise", slow)


def test_check_that_overruns_its_budget_blocks_the_retrain(env, monkeypatch) -> None:
    _slow_label_noise(monkeypatch)
    env.set_policy("checks:\n  label_noise:\n    timeout_seconds: 0.2\n")
    retrain = env.retrain()
    assert not retrain.success
    assert env.client.search_registered_models() == []
    scan = env.store.latest_scan("dataset", model_name="demo")
    result = env.store.checks_of(scan["id"])["label_noise"]
    assert result.status == "timeout"
    [finding] = result.findings
    assert finding.severity.label == "critical"
    assert finding.evidence["budget_seconds"] == 0.2
    assert finding.evidence["covered"]["rows"] == 569, "what it covered before the budget ran out"


def test_policy_can_lower_the_severity_of_a_timeout(env, monkeypatch) -> None:
    _slow_label_noise(monkeypatch)
    env.set_policy("checks:\n  label_noise:\n    timeout_seconds: 0.2\n    timeout_severity: low\n")
    retrain = env.retrain()
    assert retrain.success, "a timeout below the blocking line warns instead of blocking"
    scan = env.store.latest_scan("dataset", model_name="demo")
    assert env.store.checks_of(scan["id"])["label_noise"].status == "timeout"
