"""Performance: holdout metrics must not regress against the current champion beyond a tolerance."""

from __future__ import annotations

from checks.findings import Finding, Severity

VERSION = "1"
CHECK = "performance"
TAXONOMY = {"owasp_ml": "ML08:2023", "atlas": "AML.T0031"}


def compare_to_champion(
    candidate: dict[str, float],
    champion: dict[str, float] | None,
    *,
    metric: str,
    tolerance: float,
    subject_identity: str,
    champion_version: str | None = None,
    subject: dict | None = None,
) -> list[Finding]:
    """A high finding when `metric` drops by more than `tolerance` against the champion.

    Both metric sets must come from the same holdout rows. No champion is an info finding.
    """
    if champion is None:
        return [
            Finding(
                check=CHECK,
                severity=Severity.INFO,
                title="No champion to compare with",
                stage="evaluation",
                subject_identity=subject_identity,
                key="no_champion",
                subject=subject or {},
                evidence={"candidate": candidate},
                taxonomy=TAXONOMY,
                remediation="None needed for a first version.",
            )
        ]
    drop = champion[metric] - candidate[metric]
    if drop <= tolerance:
        return []
    return [
        Finding(
            check=CHECK,
            severity=Severity.HIGH,
            stage="evaluation",
            subject_identity=subject_identity,
            title=f"Holdout {metric} dropped {drop:.3f} vs champion v{champion_version} "
            f"({candidate[metric]:.3f} < {champion[metric]:.3f}; tolerance {tolerance})",
            key=f"regression:{metric}",
            subject=subject or {},
            evidence={
                "metric": metric,
                "candidate": candidate,
                "champion": champion,
                "champion_version": champion_version,
                "drop": round(drop, 6),
                "tolerance": tolerance,
            },
            taxonomy=TAXONOMY,
            remediation="Investigate the training data and configuration of this retrain; keep the champion.",
        )
    ]
