"""End to end through real Dagster jobs and a real MLflow registry (SQLite in a temp dir)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from tests.conftest import BUNDLED

REQUIRED_REPORT_KEYS = {"schema_version", "verdict", "subject", "counts", "checks", "findings"}


def _report(tags: dict[str, str]) -> dict:
    return json.loads(open(urlparse(tags["mlgate.report_uri"]).path).read())


def test_clean_retrain_passes_is_tagged_and_promoted(env) -> None:
    retrain = env.retrain()
    assert retrain.success
    candidate = retrain.output_for_node("candidate_model")
    assert candidate["version"] == "1"
    tags = env.version_tags("demo", 1)
    dataset_digest = tags["mlgate.dataset_digest"]
    assert len(dataset_digest) == 64

    scan = env.scan("demo", 1)
    assert scan.success
    tags = env.version_tags("demo", 1)
    assert tags["mlgate.verdict"] == "passed"
    assert tags["mlgate.findings.critical"] == "0" and tags["mlgate.findings.high"] == "0"
    assert tags["mlgate.scan_run_id"] == scan.run_id
    assert tags["mlgate.policy_digest"] and len(tags["mlgate.artifact_digest"]) == 64
    report = _report(tags)
    assert set(report) >= REQUIRED_REPORT_KEYS
    html = Path(tags["mlgate.report_html_uri"].removeprefix("file://"))
    assert "PASSED" in html.read_text().upper() and "<svg" in html.read_text()
    logged = {a.path for a in env.client.list_artifacts(tags["mlgate.report_run_id"], "reports")}
    assert logged == {f"reports/{html.name}", f"reports/{html.stem}.json"}, "both reports logged to MLflow"
    frameworks = {r["framework"] for r in report["compliance"]}
    assert frameworks >= {"OWASP ML Top 10 (2023)", "MITRE ATLAS", "EU AI Act"}
    assert {c["name"] for c in report["checks"]} == {
        "data_quality",
        "label_noise",
        "poisoning",
        "artifact_safety",
        "registry_validation",
        "dependency_advisories",
        "performance",
        "robustness",
        "membership_inference",
    }
    assert env.champion("demo") == "1"
    actions = [d["action"] for d in env.store.decisions_for("demo", "1")]
    assert "promote" in actions and actions.count("verdict") == 1

    # the model is usable through the public facade, which goes through the load guard
    import mlgate

    model = mlgate.load_model("models:/demo@champion")
    holdout = pd.read_csv(BUNDLED).drop(columns=["diagnosis"]).head(5)
    assert set(model.predict(holdout)) <= {"benign", "malignant"}


def test_poisoned_retrain_is_blocked_before_training(env) -> None:
    retrain = env.retrain(noise=0.3)
    assert not retrain.success
    # nothing was trained or registered
    assert env.client.search_registered_models() == []
    failed = {e.step_key for e in retrain.all_events if e.is_step_failure}
    assert failed == {"label_noise_gate"}
    assert "candidate_model" not in {e.step_key for e in retrain.all_events if e.is_step_success}
    # findings and the verdict are stored durably
    blocked = [d for d in env.store.decisions_for("demo") if d["verdict"] == "blocked"]
    assert len(blocked) == 1 and blocked[0]["run_id"] == retrain.run_id
    finding = next(
        r["payload"]
        for r in env.store.list_findings(model_name="demo")
        if r["payload"]["check"] == "label_noise"
    )
    assert finding["severity"] == "high"
    rows = finding["evidence"]["rows"]
    assert rows == sorted(rows) and len(rows) == finding["evidence"]["flagged"]
    assert finding["evidence"]["noise_rate"] > 0.2
    assert finding["taxonomy"]["owasp_ml"] and finding["remediation"]


def test_data_results_are_reused_for_the_same_snapshot(env) -> None:
    assert env.retrain().success
    assert env.retrain().success
    assert env.scan("demo", 1).success and env.scan("demo", 2).success
    # the same weakness on the next retrain keeps its fingerprint (no version, digest or run in it)
    v1, v2 = (_report(env.version_tags("demo", v)) for v in (1, 2))

    def fingerprints(report: dict) -> set[str]:
        return {f["fingerprint"] for f in report["findings"] if f["check"] != "performance"}

    assert fingerprints(v1) and fingerprints(v1) == fingerprints(v2)
    scans = env.store.list_findings(model_name="demo")
    data_scans = {r["scan_id"] for r in scans if r["kind"] == "dataset"}
    assert len(data_scans) == 1, "same digest, policy and detectors: one stored data scan"
    import sqlalchemy as sa

    from checks.store import check_results

    with env.store.engine.connect() as conn:
        rows = (
            conn.execute(sa.select(check_results.c.check_name).where(check_results.c.scan_id.in_(data_scans)))
            .scalars()
            .all()
        )
    assert sorted(rows) == ["data_quality", "label_noise", "poisoning"], "the second retrain reused them"


def test_retrain_whose_holdout_metrics_regress_is_blocked_and_not_promoted(env) -> None:
    assert env.retrain().success
    assert env.scan("demo", 1).success and env.champion("demo") == "1"
    # a retrain on a tenth of the data (a broken split): same data checks, a much weaker model
    assert env.retrain(holdout_fraction=0.95, estimator="knn").success
    scan = env.scan("demo", 2)
    assert not scan.success
    tags = env.version_tags("demo", 2)
    assert tags["mlgate.verdict"] == "blocked"
    assert int(tags["mlgate.findings.high"]) >= 1
    report = _report(tags)
    regression = [f for f in report["findings"] if f["check"] == "performance"]
    assert regression and regression[0]["severity"] == "high"
    assert regression[0]["evidence"]["champion_version"] == "1"
    assert env.champion("demo") == "1"
    assert "promote" not in [d["action"] for d in env.store.decisions_for("demo", "2")]


def test_rescan_under_a_stricter_policy_blocks_and_marks_the_deployed_version_at_risk(env) -> None:
    assert env.retrain().success and env.scan("demo", 1).success
    assert env.champion("demo") == "1"
    env.set_policy("checks:\n  label_noise:\n    max_noise_rate: 0.0\n")
    rescan = env.scan("demo", 1, only=["model_version", "model_evaluation"])
    assert not rescan.success
    tags = env.version_tags("demo", 1)
    assert tags["mlgate.verdict"] == "blocked"
    assert tags["mlgate.at_risk"] == "true"
    assert tags["mlgate.scan_run_id"] == rescan.run_id
    # the data checks were re-run on the stored snapshot under the new policy, through lineage
    report = _report(tags)
    [noise] = [f for f in report["findings"] if f["check"] == "label_noise"]
    assert noise["severity"] == "high"
    assert env.champion("demo") == "1", "a rescan never moves the alias"


def test_model_attack_checks_run_on_the_holdout_and_flag_an_overfit_forest(env) -> None:
    assert env.retrain(estimator="random_forest").success
    assert env.scan("demo", 1).success, "membership leakage is medium by default: it warns"
    scan = env.store.latest_scan("model_version", model_name="demo", version="1")
    checks = env.store.checks_of(scan["id"])
    leak = checks["membership_inference"]
    assert leak.status == "warned" and leak.findings[0].taxonomy["owasp_ml"] == "ML04:2023"
    assert leak.detail["covered"]["member_rows"] >= 100 and "attack_auc" in leak.detail["covered"]
    assert checks["robustness"].status in ("passed", "warned")
    assert checks["robustness"].detail["covered"]["sample_size"] > 0
