"""The verdict of a scan, recomputed from stored results and the current policy's waivers.

Used by the gate steps (to write verdict tags) and by the deployment step (to re-verify before
promoting): both ask the same question of the store, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from checks.catalog import DATA_CHECKS, MODEL_CHECKS, detector_versions
from checks.findings import ERROR, Finding
from checks.policy import Policy
from checks.store import FindingsStore, StoredCheck

PASSED_VERDICT, BLOCKED_VERDICT = "passed", "blocked"


@dataclass
class ScanVerdict:
    verdict: str  # passed | blocked
    complete: bool
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, StoredCheck] = field(default_factory=dict)
    scan_id: str | None = None
    data_scan_id: str | None = None

    @property
    def findings(self) -> list[Finding]:
        return [f for c in self.checks.values() for f in c.findings]

    @property
    def deployable(self) -> bool:
        return self.complete and self.verdict == PASSED_VERDICT


def _judge(policy: Policy, model_name: str | None, checks: dict[str, StoredCheck]) -> str:
    findings = [f for c in checks.values() for f in c.findings]
    policy.apply_waivers(findings)
    crashed = any(c.status == ERROR for c in checks.values())
    blocked = crashed or any(policy.blocks(f, model_name) for f in findings)
    return BLOCKED_VERDICT if blocked else PASSED_VERDICT


def dataset_verdict(
    store: FindingsStore, policy: Policy, dataset_digest: str, model_name: str | None = None
) -> ScanVerdict:
    """Verdict of the newest data scan of this digest under the current policy and detectors."""
    scan = store.latest_scan(
        "dataset",
        dataset_digest=dataset_digest,
        policy_digest=policy.digest,
        detector_versions=detector_versions(DATA_CHECKS),
    )
    if scan is None:
        return ScanVerdict(
            BLOCKED_VERDICT, False, [f"no data scan of {dataset_digest[:12]} under the current policy"]
        )
    checks = store.checks_of(scan["id"])
    missing = [c for c in DATA_CHECKS if c not in checks]
    reasons = [f"data check {c} has no stored result" for c in missing]
    return ScanVerdict(_judge(policy, model_name, checks), not missing, reasons, checks, None, scan["id"])


def version_verdict(
    store: FindingsStore,
    policy: Policy,
    *,
    registry_uri: str,
    name: str,
    version: str,
    artifact_digest: str,
    dataset_digest: str | None,
) -> ScanVerdict:
    """Is there a complete scan of exactly this artifact under the current policy, and did it pass?"""
    keys = dict(
        registry_uri=registry_uri, model_name=name, version=str(version), artifact_digest=artifact_digest
    )
    scan = store.latest_scan("model_version", policy_digest=policy.digest, **keys)
    if scan is None:
        older = store.latest_scan("model_version", **keys)
        reason = (
            "the policy changed since the last scan; rescan this version"
            if older
            else "no scan of this version with this artifact digest"
        )
        return ScanVerdict(BLOCKED_VERDICT, False, [reason])
    checks = store.checks_of(scan["id"])
    reasons = [f"check {c} has no stored result" for c in MODEL_CHECKS if c not in checks]
    data_scan_id = None
    if dataset_digest:
        data = dataset_verdict(store, policy, dataset_digest, name)
        if data.data_scan_id:
            checks = {**data.checks, **checks}
            reasons += data.reasons
            data_scan_id = data.data_scan_id
    verdict = _judge(policy, name, checks)
    return ScanVerdict(verdict, not reasons, reasons, checks, scan["id"], data_scan_id)
