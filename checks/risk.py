"""Contextual risk: how urgent a finding is for this model, from its severity and the model's context.

    risk = severity weight × environment × exposure × data sensitivity (data and privacy checks
           only) × reachability, rounded to one decimal, on a 0–10 scale

Severity weights: critical 10, high 7.5, medium 5, low 2.5, info 0.5. Environment: production 1.0,
staging 0.7, development 0.4. Exposure: public 1.0, internal 0.8, offline (batch) 0.6. Data
sensitivity: high 1.0, medium 0.85, low 0.7, public 0.5. Reachability 0.5 when the finding says
the weakness is not reachable (`evidence.reachable` false, with `evidence.reachability` saying
why), e.g. an advisory for a package the model's flavour never imports.

Risk orders every view and sets due dates (the SLA of the severity band the risk falls in). It never
changes whether a finding blocks: that is the severity against the policy's line, or a waiver.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from checks.findings import Finding, Severity

SEVERITY_WEIGHT = {
    Severity.CRITICAL: 10.0,
    Severity.HIGH: 7.5,
    Severity.MEDIUM: 5.0,
    Severity.LOW: 2.5,
    Severity.INFO: 0.5,
}
ENVIRONMENT = {"production": 1.0, "staging": 0.7, "development": 0.4}
EXPOSURE = {"public": 1.0, "internal": 0.8, "offline": 0.6}
SENSITIVITY = {"high": 1.0, "medium": 0.85, "low": 0.7, "public": 0.5}
UNREACHABLE = 0.5
# Checks whose impact grows with how sensitive the training data is.
SENSITIVE_CHECKS = frozenset({"membership_inference", "data_quality", "label_noise", "poisoning"})
# Risk bands, highest first: the band a risk score falls in chooses the SLA.
BANDS = ((9.0, Severity.CRITICAL), (6.0, Severity.HIGH), (3.5, Severity.MEDIUM), (1.0, Severity.LOW))


@dataclass(frozen=True)
class Risk:
    score: float
    band: Severity  # the SLA band the score falls in
    factors: dict[str, float]  # every multiplier applied, for the record
    reasons: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "band": self.band.label,
            "factors": self.factors,
            "reasons": self.reasons,
        }


def risk_of(finding: Finding, context: Any) -> Risk:
    """The finding's contextual risk under a model context (checks.policy.ModelContext)."""
    factors = {
        "severity": SEVERITY_WEIGHT[finding.severity],
        "environment": ENVIRONMENT[context.environment],
        "exposure": EXPOSURE[context.exposure],
    }
    reasons = [f"{context.environment} model, {context.exposure} exposure"]
    if finding.check in SENSITIVE_CHECKS:
        factors["data_sensitivity"] = SENSITIVITY[context.data_sensitivity]
        reasons.append(f"{context.data_sensitivity}-sensitivity data")
    if finding.evidence.get("reachable") is False:
        factors["reachability"] = UNREACHABLE
        reasons.append(f"not reachable: {finding.evidence.get('reachability', 'see evidence')}")
    score = 1.0
    for value in factors.values():
        score *= value
    score = round(score, 1)
    band = next((sev for floor, sev in BANDS if score >= floor), Severity.INFO)
    return Risk(score, band, factors, reasons)


def due_date(band: Severity, first_seen: dt.date, slas: dict[str, int | None]) -> dt.date | None:
    """When a finding must be fixed or waived: first seen plus the SLA days of its risk band."""
    days = slas.get(band.label)
    return None if days is None else first_seen + dt.timedelta(days=days)


def by_risk(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows carrying `risk.score` (and `severity`), highest risk first, ties by severity then title."""
    return sorted(
        rows,
        key=lambda r: (
            -r["risk"]["score"],
            -Severity.parse(r["severity"]),
            r.get("title", ""),
        ),
    )
