"""Fail-closed runner, gate status rules and the durable store."""

from __future__ import annotations

import datetime as dt
import threading
import time

from checks.findings import Finding
from checks.gate import execute_checks
from checks.policy import parse_policy
from checks.runner import CheckNotRun, run_check
from checks.store import FindingsStore


def _finding(severity: str = "high", key: str = "k") -> Finding:
    return Finding(
        check="label_noise",
        severity=severity,
        title="t",
        stage="data",
        subject_identity="m",
        key=key,
        evidence={"rows": [5, 1, 3, 1]},
    )


def _run(fn, budget: float = 5.0):
    return run_check(
        "label_noise",
        "data",
        fn,
        budget_seconds=budget,
        timeout_severity="critical",
        subject_identity="m",
        subject={"model": "m"},
    )


def test_runner_turns_a_crash_into_a_critical_error_finding() -> None:
    def boom(progress):
        raise ValueError("bad column")

    outcome = _run(boom)
    assert outcome.status == "error"
    [finding] = outcome.findings
    assert finding.severity.label == "critical"
    assert finding.evidence == {"exception_type": "ValueError", "message": "bad column"}


def test_runner_stops_at_the_budget_and_records_coverage() -> None:
    def slow(progress):
        progress["rows_done"] = 10
        time.sleep(2)
        return []

    started = time.monotonic()
    outcome = _run(slow, budget=0.2)
    assert time.monotonic() - started < 1.5
    assert outcome.status == "timeout"
    assert outcome.findings[0].evidence["covered"] == {"rows_done": 10}


def test_runner_not_run_keeps_the_governance_finding() -> None:
    def cannot(progress):
        raise CheckNotRun(_finding("medium", "no_holdout"))

    outcome = _run(cannot)
    assert outcome.status == "not_run" and outcome.findings[0].key == "no_holdout"


def test_gate_statuses_follow_the_policy() -> None:
    policy = parse_policy("")
    outcomes = execute_checks(
        [
            ("label_noise", lambda p: [_finding("high")]),
            ("data_quality", lambda p: [_finding("low")]),
            ("performance", lambda p: []),
        ],
        policy,
        model_name="m",
        identity="m",
        subject={},
    )
    assert [o.status for o in outcomes] == ["failed", "warned", "passed"]


def test_finding_rows_are_sorted_and_unique() -> None:
    assert _finding().evidence["rows"] == [1, 3, 5]


def test_store_roundtrip_and_idempotent_migration(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'f.db'}"
    store = FindingsStore(url)
    FindingsStore(url)  # second open: migration is a no-op
    subject = dict(registry_uri="sqlite://x", model_name="m", version="1", artifact_digest="a")
    scan = store.open_scan("model_version", policy_digest="p", detector_versions="d", run_id="r1", **subject)
    same_run = store.open_scan(
        "model_version", policy_digest="p", detector_versions="d", run_id="r1", **subject
    )
    assert scan == same_run, "two gate steps of one run write into one scan"
    store.record_check(
        scan,
        check_name="label_noise",
        stage="data",
        status="failed",
        blocking=True,
        found=[_finding()],
        detail={"seconds": 0.1},
        started_at=dt.datetime.now(dt.UTC),
    )
    stored = store.checks_of(scan)["label_noise"]
    assert stored.status == "failed" and stored.findings[0].fingerprint == _finding().fingerprint
    store.record_decision(action="refuse", reason="because", model_name="m", version="1")
    assert store.decisions_for("m", "1")[0]["reason"] == "because"
    assert store.list_findings(model_name="m")[0]["payload"]["severity"] == "high"


def test_store_survives_concurrent_writers(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'f.db'}"
    FindingsStore(url)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            store = FindingsStore(url)
            for i in range(25):
                scan = store.open_scan(
                    "dataset",
                    policy_digest="p",
                    detector_versions="d",
                    run_id=f"{n}-{i}",
                    dataset_digest=f"{n}-{i}",
                )
                store.record_check(
                    scan,
                    check_name="data_quality",
                    stage="data",
                    status="passed",
                    blocking=False,
                    found=[_finding("low", f"{n}-{i}")],
                    detail={},
                    started_at=dt.datetime.now(dt.UTC),
                )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(FindingsStore(url).list_findings(limit=1000)) == 100


def test_a_crash_blocks_even_when_its_finding_is_waived() -> None:
    from checks.gate import outcome_blocks

    finding = _finding("critical", "error")
    policy = parse_policy(
        f"waivers:\n  - {{fingerprint: {finding.fingerprint}, owner: a, reason: b, expires: 2099-01-01}}\n"
    )

    def boom(progress):
        raise RuntimeError("x")

    outcome = _run(boom)
    policy.apply_waivers(outcome.findings)
    assert outcome_blocks(outcome, policy, "m")
