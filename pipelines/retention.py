"""`mlgate gc`: drop old, unreferenced entries of the artifact cache and the training snapshots.

Never deleted, whatever their age: the files of a version that holds an alias (and the snapshot it
was trained on), and anything an open finding was found in (its scan's artifact tree or dataset).
Age is the entry's modification time; the policy's `retention` section sets the limits.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from checks.policy import Policy
from checks.store import FindingsStore, findings, scans
from pipelines.findings_register import load_register
from pipelines.resources import registry_pages
from pipelines.storage import load_version

DAY = 86_400


@dataclass
class GcReport:
    deleted: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # path -> why it is kept
    freed_bytes: int = 0


def referenced_digests(
    store: FindingsStore, policy: Policy, client: Any, registry_uri: str, cache_dir: Path
) -> dict[str, str]:
    """Artifact and dataset digests that must stay, each with the reason."""
    keep: dict[str, str] = {}
    for model in registry_pages(client.search_registered_models):
        for alias, version in (model.aliases or {}).items():
            snapshot = load_version(cache_dir, registry_uri, model.name, str(version))
            why = f"{model.name} v{version} holds @{alias}"
            if snapshot is not None:
                keep[snapshot.artifact_digest] = why
                if snapshot.dataset_digest:
                    keep[snapshot.dataset_digest] = why
    still_open = {e["fingerprint"] for e in load_register(store, policy) if e["status"] == "open"}
    query = sa.select(findings.c.fingerprint, scans.c.artifact_digest, scans.c.dataset_digest).join(
        scans, scans.c.id == findings.c.scan_id
    )
    with store.engine.connect() as conn:
        for fingerprint, artifact, dataset in conn.execute(query):
            if fingerprint not in still_open:
                continue  # waived or fixed
            for digest in (artifact, dataset):
                if digest:
                    keep.setdefault(digest, f"open finding {fingerprint[:12]}")
    return keep


def collect_garbage(
    cache_dir: Path,
    datasets_dir: Path,
    policy: Policy,
    keep: dict[str, str],
    *,
    dry_run: bool = False,
    now: float | None = None,
) -> GcReport:
    """Delete entries older than the retention that `keep` does not name (nothing with dry_run)."""
    now = now or time.time()
    report = GcReport()
    areas = [
        (cache_dir / "artifacts", policy.retention.artifact_cache_days),
        (datasets_dir, policy.retention.datasets_days),
    ]
    for area, days in areas:
        if days is None or not area.is_dir():
            continue
        for entry in sorted(p for p in area.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if entry.name in keep:
                report.kept[str(entry)] = keep[entry.name]
                continue
            if now - entry.stat().st_mtime < days * DAY:
                report.kept[str(entry)] = f"younger than {days} days"
                continue
            report.freed_bytes += sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
            report.deleted.append(str(entry))
            if not dry_run:
                shutil.rmtree(entry)
    return report
