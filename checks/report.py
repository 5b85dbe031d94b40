"""Scan reports: the JSON document (Contracts), SARIF 2.1.0, and a short text rendering."""

from __future__ import annotations

from typing import Any

from checks.catalog import BY_NAME
from checks.findings import Finding, Severity, severity_counts

SCHEMA_VERSION = "1"
SARIF_LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


def build_report(
    *,
    verdict: str,
    subject: dict[str, Any],
    checks: list[dict[str, str]],
    findings: list[Finding],
    **extra: Any,
) -> dict[str, Any]:
    """The JSON scan report: required keys first, extras (policy digest, reasons...) after."""
    ordered = sorted(findings, key=lambda f: (-f.severity, f.check, f.title))
    return {
        "schema_version": SCHEMA_VERSION,
        "verdict": verdict,
        "subject": subject,
        "counts": severity_counts(findings),
        "checks": checks,
        "findings": [f.to_dict() for f in ordered],
        **extra,
    }


def to_sarif(report: dict[str, Any], tool_version: str) -> dict[str, Any]:
    """SARIF 2.1.0: one rule per check, level from severity, fingerprints, waivers as suppressions."""
    rule_ids = sorted({c["name"] for c in report["checks"]} | {f["check"] for f in report["findings"]})
    rules = [
        {"id": r, "name": r, "shortDescription": {"text": BY_NAME[r].description if r in BY_NAME else r}}
        for r in rule_ids
    ]
    results = []
    for f in report["findings"]:
        result: dict[str, Any] = {
            "ruleId": f["check"],
            "ruleIndex": rule_ids.index(f["check"]),
            "level": SARIF_LEVELS[Severity.parse(f["severity"])],
            "message": {"text": f["title"]},
            "partialFingerprints": {"mlgate/v1": f["fingerprint"]},
            "properties": {
                "severity": f["severity"],
                "stage": f["stage"],
                "taxonomy": f["taxonomy"],
                "remediation": f["remediation"],
                "subject": f["subject"],
            },
        }
        if f.get("status") == "waived":
            result["suppressions"] = [{"kind": "external", "justification": "waived in mlgate policy"}]
        results.append(result)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "mlgate", "version": tool_version, "rules": rules}},
                "results": results,
                "properties": {"verdict": report["verdict"], "subject": report["subject"]},
            }
        ],
    }


def render_text(report: dict[str, Any], *, top: int = 10) -> str:
    """A compact human summary: verdict, check statuses and the most severe findings."""
    subject = ", ".join(f"{k}={v}" for k, v in report["subject"].items())
    counts = ", ".join(f"{n} {s}" for s, n in report["counts"].items() if n)
    lines = [f"verdict: {report['verdict'].upper()}  ({subject})", f"findings: {counts or 'none'}"]
    lines += [f"  check {c['name']}: {c['status']}" for c in report["checks"]]
    for f in report["findings"][:top]:
        rows = f["evidence"].get("rows")
        suffix = f" [{len(rows)} rows]" if rows else ""
        waived = " (waived)" if f.get("status") == "waived" else ""
        lines.append(f"  - {f['severity'].upper():8} {f['check']}: {f['title']}{suffix}{waived}")
    if len(report["findings"]) > top:
        lines.append(f"  ... and {len(report['findings']) - top} more (use --format json)")
    for reason in report.get("reasons", []):
        lines.append(f"  ! {reason}")
    return "\n".join(lines)
