"""Turning what the scan saw into Findings: one per pattern, with every location in the evidence.

A pattern is a fingerprint key: the imported `module.name` (or the kind of problem) and the
archive member, never a file path or offset, so the same weakness keeps its fingerprint when the
artifact is copied elsewhere or retrained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from checks.artifact_scan.pickle_values import Issue, Ref
from checks.artifact_scan.rules import Verdict
from checks.findings import Finding, Severity

CHECK = "artifact_safety"
STAGE = "registration"
OWASP = "ML06:2023"
ATLAS_SUPPLY_CHAIN = "AML.T0010"
ATLAS_EXECUTION = "AML.T0011"

DO_NOT_LOAD = (
    "Do not load this artifact. Rebuild the model from trusted code and data, save it with skops "
    "(mlflow.sklearn.log_model(..., serialization_format='skops')), and find out who produced it."
)
ALLOW_IT = "If {name} is your own trusted class, add it to the artifact scan allowlist in the policy; "
UNVERIFIABLE = (
    "The file cannot be verified, so it must not be loaded: re-save it with the library that "
    "produced it, or remove it from the artifact."
)
LIMIT = (
    "Treat the artifact as a possible decompression or resource bomb; raise the limit in the policy "
    "only if the artifact is legitimately this large."
)


@dataclass(frozen=True)
class Location:
    file: str
    member: str | None
    format: str

    def child(self, member: str | None = None, fmt: str | None = None) -> Location:
        joined = (
            self.member if member is None else (member if self.member is None else f"{self.member}!{member}")
        )
        return Location(self.file, joined, f"{self.format}>{fmt}" if fmt else self.format)


@dataclass
class Hit:
    """One observation at one location; hits with the same key become one Finding."""

    key: str
    severity: Severity
    title: str
    remediation: str
    loc: Location
    offsets: list[int] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    runs_code: bool = False


def _keyed(kind: str, loc: Location, detail: str = "") -> str:
    return f"{kind}:{detail}|{loc.member or ''}" if detail else f"{kind}|{loc.member or ''}"


def ref_hit(ref: Ref, verdict: Verdict, loc: Location) -> Hit | None:
    """The finding for one imported name, or None when it is allowed or only used as a resolver
    whose results are judged instead (getattr(ZoneInfo, "_unpickle"))."""
    if verdict.status == "allow" or (ref.resolved_calls and not ref.other_uses):
        return None
    action = "calls" if ref.invoked else "imports"
    evidence: dict[str, Any] = {"global": ref.full, "invoked": ref.invoked, "occurrences": ref.count}
    if verdict.resolves_to:
        evidence["resolves_to"] = verdict.resolves_to
    if ref.via:
        evidence["via"] = ref.via
    if verdict.status == "deny":
        category = verdict.category
        assert category is not None
        evidence["category"] = category.label
        return Hit(
            _keyed("global", loc, ref.full),
            category.severity,
            f"Loading {action} {ref.full} ({category.label})",
            DO_NOT_LOAD,
            loc,
            list(ref.offsets),
            evidence,
            runs_code=category.runs_code,
        )
    severity = Severity.HIGH if ref.invoked else Severity.MEDIUM
    title = f"Loading {action} {ref.full}, which is not on the allowlist"
    remediation = ALLOW_IT.format(name=ref.full) + (
        "otherwise re-save the model without it." if ref.invoked else "otherwise review why it is referenced."
    )
    return Hit(
        _keyed("global", loc, ref.full), severity, title, remediation, loc, list(ref.offsets), evidence
    )


def type_hit(name: str, constructed: bool, verdict: Verdict, loc: Location) -> Hit | None:
    """A skops schema type judged like a pickle import (constructed = invoked)."""
    module, _, attr = name.rpartition(".")
    ref = Ref(module, attr, invoked=constructed)
    ref.count = 1
    return ref_hit(ref, verdict, loc)


_ISSUES = {
    "dynamic_import": (Severity.CRITICAL, True, "Pickle imports a name computed at load time"),
    "dynamic_call": (Severity.HIGH, False, "Pickle calls an object produced at load time"),
    "build_on_global": (Severity.HIGH, False, "Pickle sets attributes on an imported object"),
    "ambiguous_stream": (Severity.HIGH, False, "joblib array bytes also read as pickle opcodes"),
}


def issue_hit(issue: Issue, loc: Location, producer_verdict: Verdict | None) -> Hit:
    severity, runs_code, title = _ISSUES[issue.kind]
    if issue.kind == "dynamic_call" and producer_verdict is not None and producer_verdict.status == "deny":
        severity, runs_code = Severity.CRITICAL, True  # e.g. getattr(module, "system")(...)
    if issue.name:
        title += f" ({issue.name})"
    evidence = {"detail": issue.detail, "producer": issue.name}
    return Hit(
        _keyed(issue.kind, loc, issue.name or ""),
        severity,
        title,
        DO_NOT_LOAD,
        loc,
        [issue.offset],
        evidence,
        runs_code,
    )


def problem_hit(
    kind: str,
    title: str,
    loc: Location,
    *,
    severity: Severity = Severity.HIGH,
    offset: int | None = None,
    **evidence: Any,
) -> Hit:
    """Unparseable content, unreadable entries, links and special files: fail closed."""
    remediation = {"limit": LIMIT}.get(kind.split(":")[0], UNVERIFIABLE)
    if kind in ("symlink", "hardlink", "special_file"):
        remediation = (
            "Replace links and special files with regular files inside the artifact; they are never followed."
        )
    return Hit(
        _keyed(kind, loc), severity, title, remediation, loc, [] if offset is None else [offset], evidence
    )


def to_findings(hits: list[Hit], *, subject_identity: str, subject: dict[str, Any] | None) -> list[Finding]:
    """Group hits by key into Findings, worst first."""
    groups: dict[str, list[Hit]] = {}
    for hit in hits:
        groups.setdefault(hit.key, []).append(hit)
    findings = [_finding(key, group, subject_identity, subject or {}) for key, group in groups.items()]
    findings.sort(key=lambda f: (-f.severity, f.key))
    return findings


def _finding(key: str, group: list[Hit], subject_identity: str, subject: dict[str, Any]) -> Finding:
    worst = max(group, key=lambda h: h.severity)
    first = group[0]
    evidence: dict[str, Any] = {
        "file": first.loc.file,
        "member": first.loc.member,
        "format": first.loc.format,
        "offset": first.offsets[0] if first.offsets else None,
        "offsets": sorted(set(first.offsets)),
    }
    for hit in group:
        for name, value in hit.evidence.items():
            if name == "invoked":
                evidence[name] = evidence.get(name, False) or value
            else:
                evidence.setdefault(name, value)
    if len({(h.loc.file, h.loc.format) for h in group}) > 1:
        evidence["locations"] = [
            {
                "file": h.loc.file,
                "member": h.loc.member,
                "format": h.loc.format,
                "offsets": sorted(set(h.offsets)),
            }
            for h in group
        ]
    runs_code = any(h.runs_code for h in group)
    return Finding(
        check=CHECK,
        severity=worst.severity,
        title=worst.title,
        stage=STAGE,
        subject_identity=subject_identity,
        key=key,
        subject=subject,
        evidence=evidence,
        taxonomy={"owasp_ml": OWASP, "atlas": ATLAS_EXECUTION if runs_code else ATLAS_SUPPLY_CHAIN},
        remediation=worst.remediation,
    )
