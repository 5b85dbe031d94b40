"""Retrain diffs: how a version's findings compare with another version's, by fingerprint.

A fingerprint in this version is *new* when no earlier version of the model had it, *recurring*
when the baseline has it too, *reintroduced* when the baseline had fixed it but an earlier version
had it; a baseline fingerprint missing here is *fixed*. A version's findings are those of its
newest model scan plus the data scan of its training snapshot (its lineage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from checks.findings import Finding
from checks.store import FindingsStore, scans

STATUSES = ("new", "reintroduced", "recurring", "fixed")


@dataclass
class FindingsDiff:
    against: str  # the baseline version
    by_status: dict[str, list[Finding]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {s: len(self.by_status.get(s, [])) for s in STATUSES}

    def summary(self) -> str:
        return f"vs v{self.against}: " + ", ".join(f"{n} {s}" for s, n in self.counts().items())

    def as_dict(self) -> dict[str, Any]:
        return {
            "against": self.against,
            "counts": self.counts(),
            **{status: [_brief(f) for f in self.by_status.get(status, [])] for status in STATUSES},
        }


def _brief(f: Finding) -> dict[str, str]:
    return {"fingerprint": f.fingerprint, "check": f.check, "severity": f.severity.label, "title": f.title}


def diff_findings(current: list[Finding], baseline: list[Finding], seen_before: set[str]) -> dict:
    """Classify by fingerprint (see the module docstring); one entry per fingerprint."""
    now = {f.fingerprint: f for f in current}
    then = {f.fingerprint: f for f in baseline}
    out: dict[str, list[Finding]] = {s: [] for s in STATUSES}
    for fp, f in now.items():
        if fp in then:
            out["recurring"].append(f)
        else:
            out["reintroduced" if fp in seen_before else "new"].append(f)
    out["fixed"] = [f for fp, f in then.items() if fp not in now]
    return out


def scanned_versions(store: FindingsStore, registry_uri: str, name: str) -> list[str]:
    """Versions of the model with at least one stored model scan, oldest first."""
    query = (
        sa.select(scans.c.version)
        .where(scans.c.kind == "model_version")
        .where(scans.c.registry_uri == registry_uri, scans.c.model_name == name)
        .distinct()
    )
    with store.engine.connect() as conn:
        return sorted((str(v) for v in conn.execute(query).scalars()), key=int)


def version_findings(
    store: FindingsStore, registry_uri: str, name: str, version: str
) -> list[Finding] | None:
    """Findings of the version's newest model scan and of its training data's scan; None if unscanned."""
    keys = {"registry_uri": registry_uri, "model_name": name, "version": str(version)}
    scan = store.latest_scan("model_version", **keys)
    if scan is None:
        return None
    checks = store.checks_of(scan["id"])
    if scan.get("dataset_digest"):
        data = store.latest_scan("dataset", model_name=name, dataset_digest=scan["dataset_digest"])
        if data is not None:
            checks = {**store.checks_of(data["id"]), **checks}
    return [f for c in checks.values() for f in c.findings]


def version_diff(
    store: FindingsStore, registry_uri: str, name: str, version: str, against: str
) -> FindingsDiff | None:
    """The version's findings against another version's; None when either was never scanned."""
    current = version_findings(store, registry_uri, name, version)
    baseline = version_findings(store, registry_uri, name, against)
    if current is None or baseline is None:
        return None
    seen: set[str] = set()
    for earlier in scanned_versions(store, registry_uri, name):
        if int(earlier) < int(version) and earlier != against:
            seen |= {f.fingerprint for f in version_findings(store, registry_uri, name, earlier) or []}
    return FindingsDiff(str(against), diff_findings(current, baseline, seen))


def dataset_findings(store: FindingsStore, model: str, digest: str) -> list[Finding] | None:
    """Findings of the newest data scan of a training snapshot (None when never scanned)."""
    scan = store.latest_scan("dataset", model_name=model, dataset_digest=digest)
    if scan is None:
        return None
    return [f for c in store.checks_of(scan["id"]).values() for f in c.findings]


def remediation_diff(
    store: FindingsStore, registry_uri: str, name: str, version: str, source_digest: str
) -> FindingsDiff | None:
    """A remediated version's findings against those of the data it remediates."""
    current = version_findings(store, registry_uri, name, version)
    baseline = dataset_findings(store, name, source_digest)
    if current is None or baseline is None:
        return None
    return FindingsDiff(f"data {source_digest[:12]}", diff_findings(current, baseline, set()))


def previous_version(store: FindingsStore, registry_uri: str, name: str, version: str) -> str | None:
    """The newest scanned version older than `version`."""
    older = [v for v in scanned_versions(store, registry_uri, name) if int(v) < int(version)]
    return older[-1] if older else None


def current_fingerprints(store: FindingsStore) -> dict[str, set[str]]:
    """Per model, what its current scans still find: the newest scanned version's findings (with
    its data) plus any data scan since (a retrain blocked before registration). The register calls
    anything else of that model fixed."""
    columns = [scans.c.id, scans.c.kind, scans.c.registry_uri, scans.c.model_name, scans.c.version]
    query = sa.select(*columns, scans.c.created_at).where(scans.c.model_name.is_not(None))
    with store.engine.connect() as conn:
        rows = conn.execute(query.order_by(scans.c.created_at)).all()
    newest: dict[str, Any] = {}
    for row in rows:
        if row.kind == "model_version" and (
            row.model_name not in newest or int(row.version) >= int(newest[row.model_name].version)
        ):
            newest[row.model_name] = row
    current: dict[str, set[str]] = {}
    for model, scan in newest.items():
        found = {f.fingerprint for f in version_findings(store, scan.registry_uri, model, scan.version) or []}
        for row in rows:
            if row.kind == "dataset" and row.model_name == model and row.created_at > scan.created_at:
                found |= {f.fingerprint for c in store.checks_of(row.id).values() for f in c.findings}
        current[model] = found
    return current
