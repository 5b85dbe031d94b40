"""The findings register: one entry per weakness (fingerprint) across every stored scan.

Each entry carries its newest finding, where and when it was seen, its status (open, waived under
a current waiver, or fixed when the model's current scans no longer find it), its contextual risk,
owner and due date. Exports: JSON, SARIF 2.1.0 (waived findings as suppressions) and a CSV risk
register. Entries are built from the store's rows; nothing here talks to Dagster or MLflow.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from checks.findings import Finding, Severity
from checks.policy import Policy
from checks.risk import by_risk, due_date, risk_of

OPEN, WAIVED, FIXED = "open", "waived", "fixed"
CSV_COLUMNS = [
    "fingerprint",
    "title",
    "severity",
    "risk",
    "owner",
    "due_date",
    "status",
    "owasp_ml",
    "atlas",
    "model",
    "check",
    "stage",
    "first_seen",
    "last_seen",
]


@dataclass(frozen=True)
class Filters:
    """Exact-match filters of `findings list|export` (None matches anything)."""

    model: str | None = None
    version: str | None = None
    severity: str | None = None  # this severity or worse
    status: str | None = None
    check: str | None = None
    stage: str | None = None

    def match(self, entry: dict[str, Any]) -> bool:
        if self.severity and Severity.parse(entry["severity"]) < Severity.parse(self.severity):
            return False
        if self.version and self.version not in entry["versions"]:
            return False
        wanted = {"model": self.model, "status": self.status, "check": self.check, "stage": self.stage}
        return all(v is None or entry[k] == v for k, v in wanted.items())


def build_register(
    rows: Iterable[dict[str, Any]],
    policy: Policy,
    *,
    current: dict[str, set[str]] | None = None,
    owners: dict[str, str] | None = None,
    today: dt.date | None = None,
) -> list[dict[str, Any]]:
    """Group stored finding rows (newest first) by fingerprint, highest risk first.

    `current` maps a model to the fingerprints its current scans still find; a model's fingerprint
    absent from it is fixed. `owners` maps a model to its registry owner tag (the policy's owner
    wins). Waivers come from the policy (and the store's waivers merged into it by the caller).
    """
    today = today or dt.date.today()
    register: dict[str, dict[str, Any]] = {}
    for row in rows:
        payload = row["payload"]
        entry = register.get(payload["fingerprint"])
        if entry is None:
            entry = register[payload["fingerprint"]] = _entry(row, policy, current, owners, today)
        entry["first_seen"] = _iso(row["created_at"])
        entry["occurrences"] += 1
        if row.get("version") and row["version"] not in entry["versions"]:
            entry["versions"].append(str(row["version"]))
    for entry in register.values():
        first = dt.date.fromisoformat(entry["first_seen"][:10])
        due = due_date(Severity.parse(entry["risk"]["band"]), first, policy.slas.model_dump())
        entry["due_date"] = due.isoformat() if due else None
        entry["overdue"] = bool(due and entry["status"] == OPEN and due < today)
        entry["versions"].sort(key=int)
    return by_risk(list(register.values()))


def _entry(
    row: dict[str, Any],
    policy: Policy,
    current: dict[str, set[str]] | None,
    owners: dict[str, str] | None,
    today: dt.date,
) -> dict[str, Any]:
    finding = Finding.from_dict(row["payload"])
    model = row.get("model_name")
    waiver = policy.active_waivers(today).get(finding.fingerprint)
    if waiver is not None:
        status = WAIVED
    elif current is not None and model in current and finding.fingerprint not in current[model]:
        status = FIXED
    else:
        status = OPEN
    context = policy.for_model(model).context
    return {
        "fingerprint": finding.fingerprint,
        "check": finding.check,
        "stage": finding.stage,
        "severity": finding.severity.label,
        "title": finding.title,
        "status": status,
        "blocks": status == OPEN and policy.blocks(finding, model),
        "risk": risk_of(finding, context).as_dict(),
        "owner": policy.for_model(model).owner or (owners or {}).get(model or ""),
        "model": model,
        "dataset": row.get("dataset_name"),
        "versions": [],
        "last_version": row.get("version"),
        "last_seen": _iso(row["created_at"]),
        "occurrences": 0,
        "taxonomy": finding.taxonomy,
        "remediation": finding.remediation,
        "waiver": waiver.model_dump(mode="json") if waiver else None,
        "finding": {**finding.to_dict(), "status": WAIVED if waiver else OPEN},
    }


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def to_csv(entries: list[dict[str, Any]]) -> str:
    """The risk register as CSV, one row per entry, in the given (risk) order."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for e in entries:
        writer.writerow(
            {
                **{k: e.get(k) for k in CSV_COLUMNS},
                "risk": e["risk"]["score"],
                "owasp_ml": e["taxonomy"].get("owasp_ml", ""),
                "atlas": e["taxonomy"].get("atlas", ""),
                "owner": e["owner"] or "",
                "due_date": e["due_date"] or "",
            }
        )
    return out.getvalue()


def as_report(entries: list[dict[str, Any]], subject: dict[str, Any]) -> dict[str, Any]:
    """The entries shaped as a scan report (checks and findings), for the SARIF and text renderers."""
    checks = sorted({e["check"] for e in entries})
    blocked = any(e["blocks"] for e in entries)
    return {
        "verdict": "blocked" if blocked else "passed",
        "subject": subject,
        "counts": {},
        "checks": [{"name": c, "status": "failed"} for c in checks],
        "findings": [e["finding"] | {"risk": e["risk"]["score"]} for e in entries],
    }
