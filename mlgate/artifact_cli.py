"""`mlgate scan-artifact PATH...`: the static artifact scanner on files or directories.

Imports only what scanning needs (no pandas, MLflow or Dagster), so a call costs about what a
plain Python script does. The policy module is read only when a policy is given or configured.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from mlgate.api import UsageError


def _policy_settings(policy_path: str | None) -> tuple[Any, str, Any]:
    """(scan policy, blocking line, policy or None): defaults unless a policy file is in force."""
    from checks.artifact_scan import ScanPolicy

    local = "mlgate.yaml" if Path("mlgate.yaml").is_file() else None
    path = policy_path or os.environ.get("MLGATE_POLICY") or local
    if not path:
        return ScanPolicy(), "high", None
    from checks.policy import PolicyError, load_policy

    try:
        policy = load_policy(path)
    except PolicyError as exc:
        raise UsageError(str(exc)) from None
    return policy.checks.artifact_safety.scan_policy(), policy.blocking_severity, policy


def scan_artifacts(paths: list[str], policy_path: str | None = None) -> dict[str, Any]:
    """The JSON scan report for the given files and directories (nothing is loaded)."""
    from checks.artifact_scan import scan_path
    from checks.findings import FAILED, PASSED, WARNED, Severity
    from checks.report import build_report

    missing = [p for p in paths if not os.path.lexists(p)]
    if missing:
        raise UsageError(f"{missing[0]}: no such file or directory")
    scan_policy, line, policy = _policy_settings(policy_path)
    findings = []
    for path in paths:
        identity = Path(path).resolve().name or str(path)
        subject = {"artifact": str(Path(path).resolve())}
        try:
            findings += scan_path(path, policy=scan_policy, subject_identity=identity, subject=subject)
        except OSError as exc:
            raise UsageError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if policy is not None:
        policy.apply_waivers(findings)
    blocking = [f for f in findings if f.status != "waived" and f.severity >= Severity.parse(line)]
    status = FAILED if blocking else WARNED if findings else PASSED
    return build_report(
        verdict="blocked" if blocking else "passed",
        subject={"artifacts": [str(Path(p).resolve()) for p in paths]},
        checks=[{"name": "artifact_safety", "status": status}],
        findings=findings,
        blocking_severity=line,
    )


def cmd_scan_artifact(args: argparse.Namespace) -> int:
    from mlgate.cli import EXIT_BLOCKED, EXIT_PASSED, _print_document

    report = scan_artifacts(args.paths, args.policy)
    _print_document(report, args.format)
    return EXIT_PASSED if report["verdict"] == "passed" else EXIT_BLOCKED


def add_scan_artifact_parser(sub: Any, scan: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "scan-artifact", parents=[scan], help="statically scan model files or directories (nothing is loaded)"
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories (e.g. an MLflow model)")
    p.set_defaults(func=cmd_scan_artifact)
