"""Run one check under a time budget and fail closed: a crash or an overrun is a finding, never a pass."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from checks.findings import ERROR, FAILED, NOT_RUN, PASSED, TIMEOUT, WARNED, Finding, Severity

CheckFn = Callable[[dict[str, Any]], list[Finding]]


class CheckNotRun(Exception):
    """Raised by a check that cannot get the data it needs; carries the governance finding."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.title)
        self.finding = finding


class DeadlineReached(TimeoutError):
    """A detector stopped itself at its cooperative deadline; `coverage` records what it covered.

    The runner reports it like an overrun budget: status `timeout` and the timeout finding.
    """

    def __init__(self, check: str, coverage: dict[str, Any]) -> None:
        super().__init__(f"{check} stopped at its deadline")
        self.check = check
        self.coverage = coverage


@dataclass
class CheckOutcome:
    name: str
    stage: str
    status: str
    findings: list[Finding]
    started_at: dt.datetime
    detail: dict[str, Any] = field(default_factory=dict)


def run_check(
    name: str,
    stage: str,
    fn: CheckFn,
    *,
    budget_seconds: float,
    timeout_severity: str,
    subject_identity: str,
    subject: dict[str, Any],
    taxonomy: dict[str, str] | None = None,
) -> CheckOutcome:
    """Call `fn(progress)` in a worker thread; stop waiting when the budget is spent.

    `fn` may record what it has covered in the `progress` dict; on a timeout that record is kept
    in the outcome. The status here is provisional (`passed` when the detector finished); the
    gate turns it into passed/warned/failed from the policy.
    """
    started = dt.datetime.now(dt.UTC)
    progress: dict[str, Any] = {}
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["findings"] = fn(progress)
        except BaseException as exc:  # noqa: BLE001 - every failure must become a finding
            box["error"] = exc

    clock = time.monotonic()
    worker = threading.Thread(target=target, name=f"mlgate-check-{name}", daemon=True)
    worker.start()
    worker.join(budget_seconds)
    elapsed = round(time.monotonic() - clock, 3)

    def failure(severity: Severity | str, key: str, title: str, remediation: str, **evidence: Any) -> Finding:
        return Finding(
            check=name,
            severity=severity,
            title=title,
            stage=stage,
            subject_identity=subject_identity,
            key=key,
            subject=subject,
            evidence=evidence,
            taxonomy=taxonomy or {},
            remediation=remediation,
        )

    covered = dict(progress)  # a copy: a worker that overran may still be writing to `progress`
    stopped = isinstance(box.get("error"), DeadlineReached)
    if stopped:
        covered |= box["error"].coverage
    detail: dict[str, Any] = {"seconds": elapsed, "budget_seconds": budget_seconds, "covered": covered}
    if worker.is_alive() or stopped:
        finding = failure(
            timeout_severity,
            "timeout",
            f"{name} stopped at its {budget_seconds:g}s budget",
            "Raise the check's timeout_seconds in the policy or reduce the input size.",
            covered=covered,
            budget_seconds=budget_seconds,
        )
        return CheckOutcome(name, stage, TIMEOUT, [finding], started, detail)
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, CheckNotRun):
            return CheckOutcome(name, stage, NOT_RUN, [exc.finding], started, detail)
        message = f"{type(exc).__name__}: {exc}"
        detail["error"] = message
        finding = failure(
            Severity.CRITICAL,
            "error",
            f"{name} crashed: {message}"[:500],
            "Fix the cause and rescan; the version stays blocked until a check passes.",
            exception_type=type(exc).__name__,
            message=str(exc)[:2000],
        )
        return CheckOutcome(name, stage, ERROR, [finding], started, detail)
    return CheckOutcome(name, stage, PASSED, list(box.get("findings") or []), started, detail)


def settle_status(outcome: CheckOutcome, blocks: Callable[[Finding], bool]) -> str:
    """Final status: error/timeout/not_run stay; otherwise failed if anything blocks, warned if
    any open finding remains, passed when clean."""
    if outcome.status in (ERROR, TIMEOUT, NOT_RUN):
        return outcome.status
    if any(blocks(f) for f in outcome.findings):
        return FAILED
    if any(f.status != "waived" and f.severity > Severity.INFO for f in outcome.findings):
        return WARNED
    return PASSED
