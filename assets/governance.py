"""Governance: the findings register, one row per weakness (fingerprint) across every scan."""

from collections.abc import Iterable
from typing import Any

import dagster as dg

from checks.findings import SEVERITIES, Finding
from checks.policy import Policy
from pipelines.resources import HomeResource, PolicyResource, StoreResource
from pipelines.storage import write_json_atomic


def build_register(rows: Iterable[dict[str, Any]], policy: Policy) -> list[dict[str, Any]]:
    """Group stored findings by fingerprint: latest record, first/last seen, occurrences, and the
    status under the current waivers (open or waived). Rows arrive newest first."""
    register: dict[str, dict[str, Any]] = {}
    for row in rows:
        payload = row["payload"]
        entry = register.get(payload["fingerprint"])
        if entry is None:
            finding = policy.apply_waivers([Finding.from_dict(payload)])[0]
            entry = register[payload["fingerprint"]] = {
                "fingerprint": payload["fingerprint"],
                "check": payload["check"],
                "severity": payload["severity"],
                "title": payload["title"],
                "status": finding.status,
                "model": row["model_name"],
                "dataset": row["dataset_name"],
                "last_version": row["version"],
                "last_seen": row["created_at"],
                "occurrences": 0,
            }
        entry["first_seen"] = row["created_at"]
        entry["occurrences"] += 1
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(register.values(), key=lambda e: (order[e["severity"]], str(e["model"]), e["title"]))


@dg.asset(group_name="governance", deps=["model_evaluation"], kinds={"sqlite"})
def findings_register(
    store: StoreResource, policy: PolicyResource, home: HomeResource
) -> dg.MaterializeResult:
    """Every weakness mlgate has found, by fingerprint, with its current status; refreshed after
    every scan, blocked or not."""
    register = build_register(store.open().list_findings(limit=100_000), policy.load())
    path = home.reports_dir / "findings_register.json"
    write_json_atomic(
        path, [{**e, "first_seen": str(e["first_seen"]), "last_seen": str(e["last_seen"])} for e in register]
    )
    open_entries = [e for e in register if e["status"] == "open"]
    table = ["| severity | check | model | title | seen |", "|---|---|---|---|---|"] + [
        f"| {e['severity']} | {e['check']} | {e['model']} | {e['title'][:80]} | {e['occurrences']} |"
        for e in open_entries[:50]
    ]
    return dg.MaterializeResult(
        metadata={
            "open": len(open_entries),
            "waived": len(register) - len(open_entries),
            **{f"open_{s}": sum(e["severity"] == s for e in open_entries) for s in SEVERITIES},
            "register": dg.MetadataValue.md("\n".join(table)),
            "path": path.as_posix(),
        }
    )
