"""`mlgate findings list|show|export|diff`: the findings register from the command line.

Every view is sorted by contextual risk (checks.risk). `export` writes JSON, SARIF 2.1.0 (all open
findings by default; waived ones as suppressions) or a CSV risk register.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mlgate.api import UsageError


def _context() -> tuple[Any, Any, Any]:
    from checks.policy import load_policy
    from checks.store import FindingsStore
    from pipelines.settings import load_settings

    settings = load_settings()
    store = FindingsStore(settings.store_url)
    return settings, store, load_policy(settings.policy_path).with_waivers(store.stored_waivers())


def _register(args: argparse.Namespace) -> list[dict[str, Any]]:
    from mlflow import MlflowClient

    from checks.register import Filters
    from pipelines.findings_register import load_register

    settings, store, policy = _context()
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
    entries = load_register(store, policy, client)
    filters = Filters(
        model=args.model,
        version=args.version,
        severity=args.severity,
        status=args.status,
        check=args.check,
        stage=args.stage,
    )
    return [e for e in entries if filters.match(e)]


def cmd_list(args: argparse.Namespace) -> int:
    from checks.findings import dumps_strict

    entries = _register(args)
    if args.format == "json":
        print(dumps_strict(entries))
        return 0
    if not entries:
        print("no findings match")
    for e in entries:
        due = f"due {e['due_date']}{' OVERDUE' if e['overdue'] else ''}" if e["due_date"] else ""
        print(
            f"{e['risk']['score']:>4}  {e['severity']:8} {e['status']:7} {e['check']:22} "
            f"{e['model'] or '-':16} {e['fingerprint']}  {e['title']}  {due}".rstrip()
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from checks.findings import dumps_strict

    args.model = args.version = args.severity = args.status = args.check = args.stage = None
    matches = [e for e in _register(args) if e["fingerprint"].startswith(args.fingerprint)]
    if len(matches) != 1:
        what = "no finding" if not matches else f"{len(matches)} findings"
        raise UsageError(f"{args.fingerprint}: {what} with this fingerprint (prefix)")
    print(dumps_strict(matches[0]))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from checks.findings import dumps_strict
    from checks.register import FIXED, as_report, to_csv
    from checks.report import to_sarif
    from mlgate import __version__

    entries = _register(args)
    if args.format == "sarif" and args.status is None:
        entries = [e for e in entries if e["status"] != FIXED]  # open ones, waived as suppressions
    if args.format == "csv":
        text = to_csv(entries)
    elif args.format == "sarif":
        subject = {"scope": "findings register", "filters": _filters_text(args)}
        text = dumps_strict(to_sarif(as_report(entries, subject), __version__)) + "\n"
    else:
        text = dumps_strict(entries) + "\n"
    if args.output:
        try:
            Path(args.output).write_text(text)
        except OSError as exc:
            raise UsageError(f"{args.output}: cannot write ({exc.strerror})") from None
        print(f"wrote {len(entries)} findings to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _filters_text(args: argparse.Namespace) -> str:
    keys = ("model", "version", "severity", "status", "check", "stage")
    return ", ".join(f"{k}={getattr(args, k)}" for k in keys if getattr(args, k)) or "all"


def cmd_diff(args: argparse.Namespace) -> int:
    from checks.findings import dumps_strict
    from mlgate.api import findings_diff

    diff = findings_diff(args.uri, against=args.against, tracking_uri=args.tracking_uri)
    if args.format == "json":
        print(dumps_strict(diff))
        return 0
    print(f"{diff['model']} v{diff['version']}")
    for label, d in diff["diffs"].items():
        print(f"  vs {label} v{d['against']}: " + ", ".join(f"{n} {s}" for s, n in d["counts"].items()))
        for status in ("new", "reintroduced", "fixed"):
            for f in d[status]:
                print(f"    {status:12} {f['severity']:8} {f['check']}: {f['title']}")
    if not diff["diffs"]:
        print("  no other scanned version to compare with")
    return 0


def cmd_waive(args: argparse.Namespace) -> int:
    import datetime as dt

    try:
        expires = dt.date.fromisoformat(args.expires)
    except ValueError:
        raise UsageError(f"--expires {args.expires!r}: expected a date YYYY-MM-DD") from None
    if expires < dt.date.today():
        raise UsageError(f"--expires {args.expires}: already in the past")
    if not args.owner.strip() or not args.reason.strip():
        raise UsageError("--owner and --reason must not be empty")
    _, store, _ = _context()
    known = {r["payload"]["fingerprint"] for r in store.list_findings(limit=1_000_000)}
    matches = sorted(fp for fp in known if fp.startswith(args.fingerprint))
    if len(matches) != 1:
        what = "no stored finding" if not matches else f"{len(matches)} stored findings"
        raise UsageError(f"{args.fingerprint}: {what} with this fingerprint (prefix)")
    store.add_waiver(fingerprint=matches[0], owner=args.owner, reason=args.reason, expires=expires)
    print(
        f"waived {matches[0]} until {expires} (owner {args.owner}); it stops blocking at the next scan, "
        "rescan or deployment check"
    )
    return 0


def add_findings_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register `findings list|show|export|diff` on the top-level subparsers."""
    findings = sub.add_parser("findings", help="the findings register").add_subparsers(
        dest="action", required=True
    )
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--model")
    filters.add_argument("--version", help="a version the finding was seen in")
    filters.add_argument("--severity", help="this severity or worse")
    filters.add_argument("--status", choices=["open", "waived", "fixed"])
    filters.add_argument("--check")
    filters.add_argument("--stage", choices=["data", "training", "registration", "evaluation", "deployment"])

    p = findings.add_parser("list", parents=[common, filters], help="findings by contextual risk")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_list)
    p = findings.add_parser("show", parents=[common], help="one finding in full")
    p.add_argument("fingerprint", help="the fingerprint (or a unique prefix)")
    p.set_defaults(func=cmd_show)
    p = findings.add_parser("export", parents=[common, filters], help="JSON, SARIF or a CSV risk register")
    p.add_argument("--format", choices=["json", "sarif", "csv"], default="json")
    p.add_argument("--output", "-o", help="write to this file instead of stdout")
    p.set_defaults(func=cmd_export)
    p = findings.add_parser("waive", parents=[common], help="accept a finding until a date (audited)")
    p.add_argument("fingerprint", help="the fingerprint (or a unique prefix)")
    p.add_argument("--owner", required=True, help="who accepts the risk")
    p.add_argument("--reason", required=True)
    p.add_argument("--expires", required=True, help="YYYY-MM-DD; the finding blocks again after it")
    p.set_defaults(func=cmd_waive)
    p = findings.add_parser("diff", parents=[common], help="new, recurring, fixed, reintroduced findings")
    p.add_argument("uri", help="models:/NAME/VERSION or models:/NAME@ALIAS")
    p.add_argument("--against", help="models:/NAME/VERSION to compare with (default: previous and champion)")
    p.add_argument("--tracking-uri", help="the MLflow tracking and registry URI (default: mlgate's)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_diff)
