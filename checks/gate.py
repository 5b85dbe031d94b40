"""Gate execution without Dagster: run a stage's checks, settle their statuses, store them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from checks.catalog import BY_NAME
from checks.findings import ERROR, FAILED, PASSED, WARNED
from checks.policy import Policy
from checks.runner import CheckFn, CheckOutcome, run_check, settle_status
from checks.store import FindingsStore, StoredCheck


def outcome_blocks(outcome: CheckOutcome | StoredCheck, policy: Policy, model_name: str | None) -> bool:
    """An error always blocks (fail closed); otherwise any open finding at or above the line."""
    return outcome.status == ERROR or any(policy.blocks(f, model_name) for f in outcome.findings)


def settle(outcome: CheckOutcome, policy: Policy, model_name: str | None) -> CheckOutcome:
    policy.apply_waivers(outcome.findings)
    outcome.status = settle_status(outcome, lambda f: policy.blocks(f, model_name))
    return outcome


def execute_checks(
    checks: list[tuple[str, CheckFn]],
    policy: Policy,
    *,
    model_name: str | None,
    identity: str,
    subject: dict[str, Any],
    store: FindingsStore | None = None,
    scan_id: str | None = None,
) -> list[CheckOutcome]:
    """Run each check under its budget, apply waivers and the policy, and store each result."""
    outcomes = []
    for name, fn in checks:
        info, config = BY_NAME[name], policy.checks.for_check(name)
        outcome = settle(
            run_check(
                name,
                info.stage,
                fn,
                budget_seconds=config.timeout_seconds,
                timeout_severity=config.timeout_severity,
                subject_identity=identity,
                subject=subject,
                taxonomy=info.taxonomy,
            ),
            policy,
            model_name,
        )
        if store is not None and scan_id is not None:
            store.record_check(
                scan_id,
                check_name=name,
                stage=info.stage,
                status=outcome.status,
                blocking=outcome_blocks(outcome, policy, model_name),
                found=outcome.findings,
                detail=outcome.detail,
                started_at=outcome.started_at,
            )
        outcomes.append(outcome)
    return outcomes


def reuse(stored: StoredCheck, policy: Policy, model_name: str | None) -> CheckOutcome:
    """A stored result as an outcome, re-judged against the current waivers.

    A detector that finished is settled again (passed/warned/failed depend on waivers); error,
    timeout and not_run keep their status.
    """
    finished = stored.status in (PASSED, WARNED, FAILED)
    outcome = CheckOutcome(
        stored.check_name,
        stored.stage,
        PASSED if finished else stored.status,
        stored.findings,
        dt.datetime.now(dt.UTC),
        {**stored.detail, "reused": True},
    )
    return settle(outcome, policy, model_name)
