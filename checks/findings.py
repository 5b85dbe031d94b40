"""The Finding model shared by every detector, the gate, the store and the reports."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any


class Severity(IntEnum):
    """Ordered severities; a larger value is worse."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        if isinstance(value, Severity):
            return value
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {value!r} (expected one of: {names})") from None

    @property
    def label(self) -> str:
        return self.name.lower()


SEVERITIES = [s.label for s in sorted(Severity, reverse=True)]

# Check statuses, as the JSON report names them.
PASSED, FAILED, WARNED, NOT_RUN, ERROR, TIMEOUT = (
    "passed",
    "failed",
    "warned",
    "not_run",
    "error",
    "timeout",
)
CHECK_STATUSES = (PASSED, FAILED, WARNED, NOT_RUN, ERROR, TIMEOUT)


def fingerprint(check: str, subject_identity: str, key: str) -> str:
    """Stable identity of a weakness: check id, subject identity and a check-specific key.

    Never include versions, digests, run ids, paths, counts or row lists, so that the same weakness
    on the next retrain (or on a cleansed copy of the data) keeps its fingerprint.
    """
    raw = "\x1f".join((check, subject_identity, key))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def to_jsonable(value: Any) -> Any:
    """Convert numpy/pandas scalars, tuples and sets into strict-JSON values (NaN/inf become None)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return [to_jsonable(v) for v in items]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return to_jsonable(value.tolist())
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):
        return to_jsonable(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


@dataclass
class Finding:
    """One weakness found by one check on one subject.

    `subject` names what was scanned (e.g. ``{"model": "m", "version": "3"}`` or
    ``{"dataset": "breast_cancer", "digest": "..."}``); `subject_identity` is the stable part used
    in the fingerprint (model name, or model/dataset name). `evidence.rows`, when present, lists
    0-based row positions in file order, ascending and complete.
    """

    check: str
    severity: Severity
    title: str
    stage: str
    subject_identity: str
    key: str
    subject: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    taxonomy: dict[str, str] = field(default_factory=dict)
    remediation: str = ""
    status: str = "open"

    def __post_init__(self) -> None:
        self.severity = Severity.parse(self.severity)
        rows = self.evidence.get("rows")
        if rows is not None:
            self.evidence["rows"] = sorted({int(r) for r in rows})

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.check, self.subject_identity, self.key)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.label
        data["fingerprint"] = self.fingerprint
        return to_jsonable(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**fields)


def evaluation_finding(
    check: str,
    taxonomy: dict[str, str],
    severity: Severity,
    key: str,
    title: str,
    identity: str,
    subject: dict[str, Any],
    evidence: dict[str, Any] | None = None,
    *,
    remediation: str,
) -> Finding:
    """A finding of a model-stage (evaluation) check; each check binds its name, taxonomy and advice."""
    return Finding(
        check=check,
        severity=severity,
        title=title,
        stage="evaluation",
        subject_identity=identity,
        key=key,
        subject=subject,
        evidence=evidence or {},
        taxonomy=taxonomy,
        remediation=remediation,
    )


def severity_counts(findings: list[Finding], *, include_waived: bool = False) -> dict[str, int]:
    """Count open findings by severity label (every severity present, zero when none)."""
    counts = dict.fromkeys(SEVERITIES, 0)
    for f in findings:
        if include_waived or f.status != "waived":
            counts[f.severity.label] += 1
    return counts


def dumps_strict(document: Any) -> str:
    """Serialise as strict JSON (no NaN, no numpy types)."""
    return json.dumps(to_jsonable(document), allow_nan=False, indent=2, sort_keys=False)
