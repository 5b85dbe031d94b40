"""The HTML scan report and the compliance view: content, escaping, plots, mapping, and the page as
headless Chromium renders it (screenshot kept in the test's tmp_path)."""

from __future__ import annotations

import importlib
import random
import re
from pathlib import Path
from typing import Any

import pytest

from checks.compliance import (
    ATLAS_FALLBACK,
    ATLAS_FALLBACK_TACTICS,
    ATLAS_YAML,
    CHECK_COVERAGE,
    EU,
    NIST,
    compliance_view,
    load_atlas,
    taxonomy_names,
)
from checks.findings import Finding
from checks.history import FindingsDiff, diff_findings
from checks.html_report import render_html, write_html_report
from checks.policy import ModelContext
from checks.report import build_report
from checks.risk import risk_of
from tests.browser import BROWSER, DRIVER, browser, needs_browser, require_browser, wait_for
from tests.conftest import SHARED_DATA

MODEL = "demo"
SUBJECT = {"model": MODEL, "version": "3"}
EVIL = "<script>alert('x')</script>"
ROWS = list(range(0, 5000, 3))  # a long row list: summarised, never dumped
DETECTORS = {  # check -> module under checks.detectors holding its TAXONOMY
    "data_quality": "data_quality",
    "label_noise": "label_noise",
    "poisoning": "poisoning.config",
    "registry_validation": "registry",
    "dependency_advisories": "dependencies",
    "performance": "performance",
    "robustness": "robustness",
    "membership_inference": "privacy",
}


def _finding(check: str, severity: str, title: str, key: str, **kwargs: Any) -> Finding:
    module = importlib.import_module(f"checks.detectors.{DETECTORS[check]}")
    stage = {"label_noise": "data", "data_quality": "data", "robustness": "evaluation"}.get(check)
    return Finding(
        check=check,
        severity=severity,
        title=title,
        stage=stage or ("evaluation" if check == "membership_inference" else "registration"),
        subject_identity=MODEL,
        key=key,
        subject=SUBJECT,
        taxonomy=dict(module.TAXONOMY),
        **kwargs,
    )


def _findings() -> list[Finding]:
    rng = random.Random(7)
    noise = _finding(
        "label_noise",
        "high",
        f"Estimated label noise 12.0% exceeds 5.0%: {len(ROWS)} rows look mislabelled",
        "label_issues",
        evidence={
            "noise_rate": 0.12,
            "max_noise_rate": 0.05,
            "flagged": len(ROWS),
            "rows": ROWS,
            "label_quality": [round(rng.betavariate(1.2, 6), 4) for _ in ROWS],
        },
        remediation="Review the listed rows (lowest label_quality first); relabel or drop them.",
    )
    advisory = _finding(
        "dependency_advisories",
        "high",
        "scikit-learn 0.22 is affected by PYSEC-2020-107 (CVE-2020-13092)",
        "advisory:scikit-learn:PYSEC-2020-107",
        evidence={
            "package": "scikit-learn",
            "version": "0.22",
            "advisory": "PYSEC-2020-107",
            "aliases": ["CVE-2020-13092"],
            "fixed": ["0.23.1"],
            "where": [{"file": "requirements.txt", "line": 2, "text": "scikit-learn==0.22"}],
        },
        remediation="Pin scikit-learn==0.23.1 or later (the first fixed release) and re-log the model.",
    )
    robust = _finding(
        "robustness",
        "medium",
        "Robust accuracy 0.612 at epsilon 0.1 std (clean 0.947): below the minimum 0.700",
        "evasion",
        evidence={
            "sample_size": 500,
            "epsilon": 0.1,
            "clean_accuracy": 0.947,
            "clean_accuracy_ci95": [0.924, 0.963],
            "robust_accuracy": 0.612,
            "robust_accuracy_ci95": [0.569, 0.653],
            "accuracy_drop": 0.335,
            "broken_by": {"noise": 12, "boundary": 80, "greedy": 75},
            "sensitive_features": {"worst radius": 40, "mean texture": 22},
            "min_robust_accuracy": 0.7,
            "max_accuracy_drop": 0.2,
        },
        remediation="Validate inputs at serving time; retrain with noise augmentation.",
    )
    privacy = _finding(
        "membership_inference",
        "low",
        "Generalisation gap 0.061 > 0.05 (training accuracy 0.990, holdout 0.929)",
        "generalization_gap",
        evidence={
            "attack_auc": 0.571,
            "attack_auc_ci95": [0.54, 0.60],
            "advantage": 0.118,
            "tpr_at_1pct_fpr": 0.024,
            "member_accuracy": 0.99,
            "non_member_accuracy": 0.929,
            "generalization_gap": 0.061,
            "max_generalization_gap": 0.05,
        },
        remediation="Regularise and retrain.",
        status="waived",
    )
    hostile = _finding(
        "data_quality",
        "medium",
        f"Column {EVIL} has 31% missing values",
        f"expect_column_values_to_not_be_null:{EVIL}",
        evidence={"column": EVIL, "unexpected_percent": 31.0, "partial_unexpected_list": [EVIL] * 30},
        remediation="Fill or drop the column.",
    )
    return [noise, advisory, robust, privacy, hostile]


def _diff(current: list[Finding], against: str, baseline: list[Finding], seen: set[str]) -> dict:
    return FindingsDiff(against, diff_findings(current, baseline, seen)).as_dict()


def _report(with_risk: bool = True) -> dict[str, Any]:
    findings = _findings()
    noise, advisory, robust, _privacy, hostile = findings
    fixed = _finding("registry_validation", "medium", "Version has no owner tag", "owner")
    diffs = {
        # v2 had the advisory and the owner gap; the noise finding was seen in v1, fixed in v2
        "previous": _diff(findings, "2", [advisory, fixed], {noise.fingerprint}),
        "champion": _diff(findings, "1", [noise, robust, hostile], set()),
    }
    report = build_report(
        verdict="blocked",
        subject=SUBJECT,
        checks=[
            {"name": "label_noise", "status": "failed"},
            {"name": "data_quality", "status": "warned"},
            {"name": "artifact_safety", "status": "passed"},
            {"name": "registry_validation", "status": "passed"},
            {"name": "dependency_advisories", "status": "failed"},
            {"name": "robustness", "status": "warned"},
            {"name": "membership_inference", "status": "warned"},
            {"name": "performance", "status": "not_run"},
        ],
        findings=findings,
        scan_id="scan-0042",
        policy_digest="p" * 16,
        reasons=["2 blocking findings: label_noise, dependency_advisories"],
        diff=diffs,
    )
    if with_risk:
        context = ModelContext(environment="production", exposure="public", data_sensitivity="low")
        by_fp = {f.fingerprint: f for f in findings}
        for f in report["findings"]:
            f["risk"] = risk_of(by_fp[f["fingerprint"]], context).as_dict()
    return report


HISTORY = [
    {
        "version": "1",
        "counts": {"critical": 0, "high": 1, "medium": 2, "low": 0, "info": 1},
        "verdict": "blocked",
    },
    {
        "version": "2",
        "counts": {"critical": 0, "high": 1, "medium": 1, "low": 1, "info": 2},
        "verdict": "blocked",
    },
    {
        "version": "3",
        "counts": {"critical": 0, "high": 2, "medium": 2, "low": 0, "info": 0},
        "verdict": "blocked",
    },
]


# -- content -------------------------------------------------------------------------------------


def test_report_shows_verdict_counts_checks_and_escapes_user_data() -> None:
    report = _report()
    page = render_html(report, HISTORY)

    assert page.startswith("<!DOCTYPE html>") and "BLOCKED" in page
    assert "2 blocking findings: label_noise, dependency_advisories" in page
    assert "scan-0042" in page and "model" in page
    for check in ("label_noise", "artifact_safety", "performance"):
        assert f"<td>{check}</td>" in page
    # user data is escaped everywhere: the title, the evidence, the compliance view
    assert "<script" not in page.lower()
    assert "Column &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; has 31% missing values" in page
    # self-contained: no external references
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "http://www.w3.org/2000/svg" in page  # the SVG namespace is the only URL


def test_findings_are_sorted_by_risk_waived_last_and_evidence_is_summarised() -> None:
    report = _report()
    page = render_html(report, HISTORY)
    findings_table = page[page.index('id="findings"') : page.index('id="diff"')]
    titles = [f["title"] for f in report["findings"]]
    positions = {t: findings_table.index(_escaped(t)) for t in titles}
    order = sorted(titles, key=positions.__getitem__)
    risks = {f["title"]: f["risk"]["score"] for f in report["findings"] if f["status"] != "waived"}
    open_order = [t for t in order if t in risks]
    assert [risks[t] for t in open_order] == sorted(risks.values(), reverse=True)
    waived = next(f["title"] for f in report["findings"] if f["status"] == "waived")
    assert order[-1] == waived and '<tr class="waived">' in findings_table
    assert "highest risk first" in findings_table
    # 1667 row positions and scores: a count and the first few, not the list
    assert f"{len(ROWS)} rows: 0, 3, 6, 9, 12, …" in findings_table
    assert str(ROWS[-1]) not in findings_table
    assert len(page) < 120_000
    # taxonomy by name
    assert "ML02:2023 Data Poisoning Attack" in findings_table
    assert "AML.T0010.001 AI Supply Chain Compromise: AI Software" in findings_table


def test_findings_without_risk_are_sorted_by_severity() -> None:
    report = _report(with_risk=False)
    page = render_html(report, [])
    table = page[page.index('id="findings"') : page.index('id="diff"')]
    assert "most severe first" in table and ">risk<" not in table
    high = table.index("Estimated label noise")
    medium = table.index("Robust accuracy 0.612")
    assert high < medium


def test_diff_section_lists_new_reintroduced_recurring_and_fixed() -> None:
    page = render_html(_report(), HISTORY)
    diff = page[page.index('id="diff"') : page.index('id="compliance"')]
    assert "vs previous: v2" in diff and "vs champion: v1" in diff
    assert "3 new, 1 reintroduced, 1 recurring, 1 fixed" in diff  # vs previous
    assert "2 new, 0 reintroduced, 3 recurring, 0 fixed" in diff  # vs champion
    assert "Version has no owner tag" in diff
    for status in ("new", "reintroduced", "recurring", "fixed"):
        assert f">{status}</span>" in diff


def test_plots_severity_history_label_quality_and_metrics() -> None:
    report = _report()
    page = render_html(report, HISTORY)
    assert page.count("<svg") == 4  # history, label quality, robustness bars, privacy bars
    history = _between(page, 'id="plot-history"', "</svg>")
    assert all(f">v{h['version']}</text>" in history for h in HISTORY)
    assert "v3: 2 high" in history and "v2: 1 low" in history  # one tooltip per stacked segment
    quality = _between(page, 'id="plot-label-quality"', "</div>")
    assert f"{len(ROWS)} flagged rows" in quality and quality.count("<rect") == 10
    metrics = _between(page, 'id="plot-metrics"', "</section>")
    for name in ("robust_accuracy", "accuracy_drop", "attack_auc", "advantage", "tpr_at_1pct_fpr"):
        assert name in metrics
    assert "[0.569, 0.653]" in metrics  # its 95% interval
    assert "sample_size" in metrics  # other numeric evidence: in the table

    # no history: this scan alone; no label-noise or model metrics: no such plots
    bare = build_report(
        verdict="passed",
        subject=SUBJECT,
        checks=[{"name": "artifact_safety", "status": "passed"}],
        findings=[],
    )
    page = render_html(bare, [])
    assert page.count("<svg") == 1 and ">v3</text>" in page and "PASSED" in page
    assert "No findings." in page and "No earlier scanned version" in page


def test_write_html_report_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "scan-0042.html"
    assert write_html_report(_report(), HISTORY, target) == target
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in target.parent.iterdir()] == [target.name]


# -- compliance ----------------------------------------------------------------------------------


def test_compliance_view_covers_every_taxonomy_id_and_framework() -> None:
    report = _report()
    rows = compliance_view(report)
    refs = {(r["framework"], r["ref"]) for r in rows}
    for f in report["findings"]:
        assert ("OWASP ML Top 10 (2023)", f["taxonomy"]["owasp_ml"]) in refs
        assert ("MITRE ATLAS", f["taxonomy"]["atlas"]) in refs
        mapped = [r for r in rows if f["fingerprint"] in {x["fingerprint"] for x in r["findings"]}]
        assert {r["framework"] for r in mapped} == {"OWASP ML Top 10 (2023)", "MITRE ATLAS", NIST, EU}
    assert {r["ref"] for r in rows if r["framework"] == EU} == {"Art. 9", "Art. 10", "Art. 15"}
    assert {r["group"] for r in rows if r["framework"] == NIST} == {"Govern", "Map", "Measure", "Manage"}
    by_ref = {r["ref"]: r for r in rows}
    assert by_ref["ML02:2023"]["status"] == "open"
    assert by_ref["ML04:2023"]["status"] == "waived"  # only the waived privacy finding maps to it
    assert by_ref["MEASURE 2.10"]["status"] == "waived"
    assert by_ref["AML.T0011"]["status"] == "passed"  # artifact_safety ran and found nothing
    assert by_ref["ML08:2023"]["status"] == "not_assessed"  # performance did not run
    page = render_html(report, HISTORY)
    assert "Infer Training Data Membership" in page and "EU AI Act" in page and "MEASURE 2.7" in page


def test_check_coverage_matches_the_detectors_taxonomy() -> None:
    for check, module in DETECTORS.items():
        taxonomy = importlib.import_module(f"checks.detectors.{module}").TAXONOMY
        assert taxonomy["owasp_ml"] in CHECK_COVERAGE[check].owasp, check
        assert taxonomy["atlas"] in CHECK_COVERAGE[check].atlas, check
    from checks.artifact_scan.report import ATLAS_EXECUTION, ATLAS_SUPPLY_CHAIN, OWASP

    assert {ATLAS_EXECUTION, ATLAS_SUPPLY_CHAIN} <= set(CHECK_COVERAGE["artifact_safety"].atlas)
    assert CHECK_COVERAGE["artifact_safety"].owasp == (OWASP,)
    ids = {i for c in CHECK_COVERAGE.values() for i in c.atlas}
    assert ids <= set(ATLAS_FALLBACK), "every ATLAS id mlgate uses needs a built-in name"


def test_atlas_names_come_from_the_shared_yaml_and_match_the_fallback() -> None:
    if not (SHARED_DATA / ATLAS_YAML.name).is_file():
        pytest.skip(f"{SHARED_DATA / ATLAS_YAML.name} absent (../shared/data is not next to this clone)")
    atlas = load_atlas(SHARED_DATA / ATLAS_YAML.name)
    assert atlas.source == "MITRE ATLAS 5.6.0"
    for technique, name in ATLAS_FALLBACK.items():
        assert atlas.names[technique] == name, technique
        assert atlas.tactics[technique] == ATLAS_FALLBACK_TACTICS[technique], technique
    assert atlas.name("AML.T0051") == "LLM Prompt Injection"  # anything in the file, not only ours


def test_atlas_without_the_yaml_uses_the_built_in_names(tmp_path: Path) -> None:
    atlas = load_atlas(tmp_path / "absent.yaml")
    assert atlas.source == "built-in table"
    names = taxonomy_names({"owasp_ml": "ML04:2023", "atlas": "AML.T0024.000"}, atlas)
    assert names == {
        "owasp_ml": "ML04:2023 Membership Inference Attack",
        "atlas": "AML.T0024.000 Exfiltration via AI Inference API: Infer Training Data Membership",
    }
    assert taxonomy_names({"atlas": "AML.T9999"}, atlas) == {"atlas": "AML.T9999"}
    broken = tmp_path / "broken.yaml"
    broken.write_text("matrices: [\n")
    assert load_atlas(broken).source.startswith("built-in table (")


# -- in a browser --------------------------------------------------------------------------------


@needs_browser
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    require_browser()
    assert BROWSER and DRIVER
    page_path = write_html_report(_report(), HISTORY, tmp_path / "report.html")
    with browser(tmp_path, BROWSER, DRIVER) as page:
        page.get(page_path.as_uri())
        wait_for("the report to load", lambda: page.script(LOADED) or None, 20, 0.2)
        dom = page.script(DOM)
        # the whole page in one screenshot: the window's height is the page's plus the browser's frame
        height, frame = page.script(SIZES)
        page.set_window_size(1400, min(int(height) + int(frame), 12_000))
        shot = page.screenshot(tmp_path / "html_report.png")  # kept in tmp_path
    assert dom["verdict"] == "BLOCKED" and dom["scripts"] == 0
    assert dom["svgs"] == 4 and dom["historyBars"] >= 8 and dom["histogramBars"] == 10
    assert dom["metricSvgs"] == 2 and dom["findingRows"] == 5 and dom["waivedRows"] == 1
    assert f"Column {EVIL} has 31% missing values" in dom["text"]  # shown as text, never run
    assert "Compliance view" in dom["text"] and "EU AI Act" in dom["text"]
    assert shot.stat().st_size > 30_000


LOADED = "return document.readyState === 'complete' && !!document.querySelector('#compliance')"
SIZES = "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]"
DOM = """
const q = (s) => document.querySelectorAll(s).length;
return {
  verdict: document.querySelector('#verdict .verdict').innerText.trim(),
  scripts: document.scripts.length,
  svgs: q('svg'),
  historyBars: q('#plot-history svg rect[fill]:not([width="10"])'),
  histogramBars: q('#plot-label-quality svg rect'),
  metricSvgs: q('#plot-metrics svg'),
  findingRows: q('table.findings tbody tr'),
  waivedRows: q('table.findings tbody tr.waived'),
  text: document.body.innerText,
};
"""


# -- helpers -------------------------------------------------------------------------------------


def _escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def _between(page: str, start: str, end: str) -> str:
    i = page.index(start)
    return page[i : page.index(end, i) + len(end)]
