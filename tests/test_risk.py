"""Contextual risk orders findings by the model's context and sets due dates, but never unblocks."""

from __future__ import annotations

import datetime as dt

from checks.findings import Finding, Severity
from checks.policy import parse_policy
from checks.risk import by_risk, due_date, risk_of

POLICY = parse_policy("""
models:
  public-api: {context: {environment: production, exposure: public, data_sensitivity: high}}
  batch-dev: {context: {environment: development, exposure: offline, data_sensitivity: public}}
""")


def _finding(check: str, severity: Severity, **evidence) -> Finding:
    return Finding(
        check=check,
        severity=severity,
        title=f"{check} {severity.label}",
        stage="registration",
        subject_identity="m",
        key=check,
        evidence=evidence,
    )


def public_ctx():
    return POLICY.for_model("public-api").context


def test_the_same_finding_ranks_higher_on_a_public_production_model() -> None:
    leak = _finding("membership_inference", Severity.HIGH)
    public = risk_of(leak, public_ctx())
    batch = risk_of(leak, POLICY.for_model("batch-dev").context)
    assert public.score == 7.5 and public.band == Severity.HIGH
    assert batch.score == round(7.5 * 0.4 * 0.6 * 0.5, 1) and batch.band == Severity.INFO
    assert "data_sensitivity" in public.factors, "privacy findings weigh the data's sensitivity"
    assert "data_sensitivity" not in risk_of(_finding("artifact_safety", Severity.HIGH), public_ctx()).factors


def test_context_reorders_findings_and_an_unreachable_advisory_is_down_weighted() -> None:
    ctx = public_ctx()
    reachable = _finding("dependency_advisories", Severity.HIGH)
    unreachable = _finding(
        "dependency_advisories", Severity.HIGH, reachable=False, reachability="never imported"
    )
    medium = _finding("registry_validation", Severity.MEDIUM)
    rows = [
        {"title": f.title + str(i), "severity": f.severity.label, "risk": risk_of(f, ctx).as_dict()}
        for i, f in enumerate([unreachable, medium, reachable])
    ]
    ordered = [r["title"] for r in by_risk(rows)]
    assert ordered == [reachable.title + "2", medium.title + "1", unreachable.title + "0"]
    assert "not reachable: never imported" in risk_of(unreachable, ctx).reasons


def test_risk_never_unblocks_and_sets_due_dates_by_band() -> None:
    high = _finding("artifact_safety", Severity.HIGH)
    low_risk = risk_of(high, POLICY.for_model("batch-dev").context)
    assert low_risk.band < Severity.HIGH
    assert POLICY.blocks(high, "batch-dev"), "a blocking finding still blocks, whatever its risk"
    first_seen = dt.date(2026, 1, 1)
    slas = POLICY.slas.model_dump()
    assert due_date(risk_of(high, public_ctx()).band, first_seen, slas) == dt.date(2026, 1, 31)
    info = risk_of(_finding("registry_validation", Severity.INFO), public_ctx())
    assert due_date(info.band, first_seen, slas) is None
