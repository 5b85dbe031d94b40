"""Governance: the findings register, one row per weakness (fingerprint) across every scan."""

import dagster as dg

from checks.findings import SEVERITIES
from pipelines.findings_register import load_register
from pipelines.resources import HomeResource, PolicyResource, RegistryResource, StoreResource
from pipelines.storage import write_json_atomic


@dg.asset(group_name="governance", deps=["model_evaluation"], kinds={"sqlite"})
def findings_register(
    store: StoreResource, policy: PolicyResource, home: HomeResource, registry: RegistryResource
) -> dg.MaterializeResult:
    """Every weakness mlgate has found, by fingerprint, highest contextual risk first, with its
    status (open, waived, fixed), owner and due date; refreshed after every scan, blocked or not."""
    register = load_register(store.open(), policy.load(), registry.client())
    path = home.reports_dir / "findings_register.json"
    write_json_atomic(path, register)
    open_entries = [e for e in register if e["status"] == "open"]
    table = ["| risk | severity | check | model | title | owner | due |", "|---|---|---|---|---|---|---|"] + [
        f"| {e['risk']['score']} | {e['severity']} | {e['check']} | {e['model']} | {e['title'][:80]} "
        f"| {e['owner'] or '-'} | {e['due_date'] or '-'}{' (overdue)' if e['overdue'] else ''} |"
        for e in open_entries[:50]
    ]
    return dg.MaterializeResult(
        metadata={
            "open": len(open_entries),
            "waived": sum(e["status"] == "waived" for e in register),
            "fixed": sum(e["status"] == "fixed" for e in register),
            "overdue": sum(e["overdue"] for e in register),
            **{f"open_{s}": sum(e["severity"] == s for e in open_entries) for s in SEVERITIES},
            "register": dg.MetadataValue.md("\n".join(table)),
            "path": path.as_posix(),
        }
    )
