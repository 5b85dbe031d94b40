"""The `mlgate` command line: parse, call mlgate.api, print, exit.

Exit codes: scan and verify commands 0 passed, 1 blocked; 2 on usage errors and missing or
unreadable input; other commands 0 on success. With --format json|sarif, stdout holds exactly one
strict JSON document and everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlgate.api import UsageError

EXIT_PASSED, EXIT_BLOCKED, EXIT_USAGE = 0, 1, 2


def _print_document(document: dict[str, Any], fmt: str) -> None:
    from checks.findings import dumps_strict
    from checks.report import render_text, to_sarif

    if fmt == "json":
        print(dumps_strict(document))
    elif fmt == "sarif":
        from mlgate import __version__

        print(dumps_strict(to_sarif(document, __version__)))
    else:
        print(render_text(document))


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Keep library chatter off stdout so a json/sarif document stays the only thing on it."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _finish(outcome: Any, args: argparse.Namespace) -> int:
    """Print the report in the asked format, then the notes (to stderr for json/sarif)."""
    _print_document(outcome.report, args.format)
    if not args.quiet:
        for note in outcome.notes:
            print(f"note: {note}", file=sys.stderr if args.format != "text" else sys.stdout)
    return outcome.exit_code


def cmd_run(args: argparse.Namespace) -> int:
    from mlgate import api

    with _stdout_to_stderr():
        outcome = api.run(
            data=args.data,
            label=args.label,
            model_name=args.model,
            inject_label_noise=args.inject_label_noise,
            verbose=args.verbose,
            policy_path=args.policy,
        )
    return _finish(outcome, args)


def cmd_scan_model(args: argparse.Namespace) -> int:
    from mlgate import api

    with _stdout_to_stderr():
        outcome = api.scan_model(
            args.uri,
            tracking_uri=args.tracking_uri,
            promote=args.promote,
            policy_path=args.policy,
            verbose=args.verbose,
        )
    return _finish(outcome, args)


def cmd_verify(args: argparse.Namespace) -> int:
    from checks.findings import dumps_strict
    from mlgate import api

    with _stdout_to_stderr():
        outcome = api.verify(args.uri, tracking_uri=args.tracking_uri, policy_path=args.policy)
    if args.format == "json":
        print(dumps_strict(outcome.report))
    if not args.quiet or args.format == "text":
        for note in outcome.notes:
            print(note, file=sys.stderr if args.format == "json" else sys.stdout)
    return outcome.exit_code


def cmd_gc(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient

    from checks.policy import PolicyError, load_policy
    from checks.store import FindingsStore
    from pipelines.retention import collect_garbage, referenced_digests
    from pipelines.settings import load_settings

    settings = load_settings()
    store = FindingsStore(settings.store_url)
    try:
        policy = load_policy(args.policy or settings.policy_path).with_waivers(store.stored_waivers())
    except PolicyError as exc:
        raise UsageError(str(exc)) from None
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
    with _stdout_to_stderr():
        keep = referenced_digests(store, policy, client, settings.registry_uri, settings.cache_dir)
    report = collect_garbage(settings.cache_dir, settings.datasets_dir, policy, keep, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for path in report.deleted:
        print(f"{verb} {path}")
    if args.verbose:
        for path, why in report.kept.items():
            print(f"kept {path}: {why}")
    freed = report.freed_bytes / 1e6
    print(f"{verb} {len(report.deleted)} entries ({freed:.1f} MB); kept {len(report.kept)}")
    return 0


def cmd_remediate(args: argparse.Namespace) -> int:
    from mlgate import api

    with _stdout_to_stderr():
        outcome = api.remediate(args.fingerprint, policy_path=args.policy, verbose=args.verbose)
    return _finish(outcome, args)


def cmd_scan_data(args: argparse.Namespace) -> int:
    from mlgate import api

    with _stdout_to_stderr():
        report = api.scan_data(args.path, args.label, suite=args.suite, policy_path=args.policy)
    _print_document(report, args.format)
    return EXIT_PASSED if report["verdict"] == "passed" else EXIT_BLOCKED


def cmd_init(args: argparse.Namespace) -> int:
    from checks.policy import DEFAULT_POLICY_PATH

    target = Path(args.path)
    if target.exists() and not args.force:
        raise UsageError(f"{target}: already exists (use --force to overwrite)")
    try:
        target.write_text(DEFAULT_POLICY_PATH.read_text())
    except OSError as exc:
        raise UsageError(f"{target}: cannot write ({exc.strerror})") from None
    print(f"wrote {target}; validate edits with `mlgate policy validate {target}`")
    return 0


def cmd_policy_validate(args: argparse.Namespace) -> int:
    from checks.policy import PolicyError, load_policy

    try:
        policy = load_policy(args.file)
    except PolicyError as exc:
        raise UsageError(str(exc)) from None
    print(
        f"{args.file}: valid (policy digest {policy.digest}, blocking at {policy.blocking_severity}, "
        f"{len(policy.waivers)} waivers)"
    )
    return 0


def cmd_suite_init(args: argparse.Namespace) -> int:
    from checks.detectors.data_quality import draft_suite
    from checks.findings import dumps_strict
    from mlgate.api import _read_input

    df = _read_input(args.data, args.label)
    name = args.name or Path(args.data).stem
    output = Path(args.output or f"suites/{name}.json")
    if output.exists() and not args.force:
        raise UsageError(f"{output}: already exists (use --force to overwrite)")
    suite = draft_suite(df, args.label, name)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(dumps_strict(suite) + "\n")
    except OSError as exc:
        raise UsageError(f"{output}: cannot write ({exc.strerror})") from None
    print(f"wrote {output} ({len(suite['expectations'])} expectations); review it before committing")
    return 0


DEFAULT_ADVISORIES_SOURCE = "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"


def cmd_advisories_update(args: argparse.Namespace) -> int:
    from checks.advisories import UpdateError, update
    from pipelines.settings import load_settings

    source = args.source or os.environ.get("MLGATE_ADVISORIES_URL") or DEFAULT_ADVISORIES_SOURCE
    try:
        info = update(source, load_settings().advisories_dir)
    except UpdateError as exc:
        raise UsageError(f"advisories update: {exc}") from None
    snapshot = info.snapshot_at.date().isoformat() if info.snapshot_at else "unknown date"
    print(f"advisories: {info.records} records for {info.packages} packages (snapshot {snapshot})")
    return 0


class _VersionAction(argparse.Action):
    """`--version`, reading the installed metadata only when asked (it is slow to import)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from mlgate import __version__

        print(f"mlgate {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", "-q", action="store_true", help="only the result")
    common.add_argument("--verbose", "-v", action="store_true", help="show library logs on stderr")
    scan = argparse.ArgumentParser(add_help=False, parents=[common])
    scan.add_argument("--format", choices=["text", "json", "sarif"], default="text")
    scan.add_argument("--policy", help="policy YAML file (default: MLGATE_POLICY, ./mlgate.yaml, built-in)")

    parser = argparse.ArgumentParser(prog="mlgate", description=__doc__.splitlines()[0], parents=[common])
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", parents=[scan], help="retrain on a source, then scan and deploy the version")
    p.add_argument("--data", help="CSV or Parquet source (default: the bundled example)")
    p.add_argument("--label", help="label column (default: diagnosis, the bundled example's)")
    p.add_argument("--model", help="registered model name (default: mlgate-demo)")
    p.add_argument(
        "--inject-label-noise",
        type=float,
        default=0.0,
        metavar="FRAC",
        help="flip this fraction of labels first (demo of a poisoned retrain)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("scan-model", parents=[scan], help="scan one registered version (any registry)")
    p.add_argument("uri", help="models:/NAME/VERSION or models:/NAME@ALIAS")
    p.add_argument(
        "--tracking-uri", help="the MLflow tracking and registry URI (default: the configured one)"
    )
    p.add_argument("--promote", action="store_true", help="move the alias if the version passes")
    p.set_defaults(func=cmd_scan_model)

    p = sub.add_parser(
        "verify", parents=[common], help="exit 0 only if a version's current files passed a complete scan"
    )
    p.add_argument("uri", help="models:/NAME/VERSION or models:/NAME@ALIAS")
    p.add_argument("--tracking-uri", help="the MLflow tracking and registry URI (default: mlgate's)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--policy", help="policy YAML file (default: MLGATE_POLICY, ./mlgate.yaml, built-in)")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("scan-data", parents=[scan], help="run the data checks on a file")
    p.add_argument("path")
    p.add_argument("--label", required=True)
    p.add_argument("--suite", help="GX expectation suite JSON (default: baseline contract)")
    p.set_defaults(func=cmd_scan_data)

    p = sub.add_parser("init", parents=[common], help="write a commented default policy")
    p.add_argument("--path", default="mlgate.yaml")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_init)

    policy = sub.add_parser("policy", help="policy commands").add_subparsers(dest="action", required=True)
    p = policy.add_parser("validate", parents=[common], help="validate a policy file")
    p.add_argument("file")
    p.set_defaults(func=cmd_policy_validate)

    suite = sub.add_parser("suite", help="expectation suite commands").add_subparsers(
        dest="action", required=True
    )
    p = suite.add_parser("init", parents=[common], help="draft an expectation suite from trusted data")
    p.add_argument("data")
    p.add_argument("--label", required=True)
    p.add_argument("--name", help="dataset name (default: file stem)")
    p.add_argument("--output", help="where to write (default: suites/<name>.json)")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_suite_init)

    advisories = sub.add_parser("advisories", help="the local OSV advisory database").add_subparsers(
        dest="action", required=True
    )
    p = advisories.add_parser("update", parents=[common], help="refresh it from a URL or a local OSV zip")
    p.add_argument(
        "--from",
        dest="source",
        metavar="URL|FILE",
        help="an OSV PyPI zip (default: MLGATE_ADVISORIES_URL, else OSV's public PyPI export)",
    )
    p.set_defaults(func=cmd_advisories_update)

    p = sub.add_parser(
        "remediate", parents=[scan], help="drop a data finding's rows, retrain on the copy and scan it"
    )
    p.add_argument("fingerprint", help="a data finding's fingerprint (or a unique prefix)")
    p.set_defaults(func=cmd_remediate)

    p = sub.add_parser("gc", parents=[common], help="drop old cache entries nothing deployed or open needs")
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted")
    p.add_argument("--policy", help="policy YAML file (its `retention` section)")
    p.set_defaults(func=cmd_gc)

    from mlgate.artifact_cli import add_scan_artifact_parser

    add_scan_artifact_parser(sub, scan)

    from mlgate.findings_cli import add_findings_parser

    add_findings_parser(sub, common)

    from mlgate.bom_cli import add_parser as add_bom_parser

    add_bom_parser(sub, common)

    from mlgate.audit_cli import add_audit_parser

    add_audit_parser(sub, common)
    return parser


def _quiet_libraries(verbose: bool) -> None:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    if verbose:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
        return
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    for name in ("mlflow", "alembic", "dagster", "great_expectations", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("DAGSTER_CLI_LOG_LEVEL", "ERROR")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries(args.verbose)
    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        return handler(args)
    except UsageError as exc:
        print(f"mlgate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.verbose:
            raise
        print(
            f"mlgate: error: {type(exc).__name__}: {exc} (rerun with --verbose for details)", file=sys.stderr
        )
        return EXIT_BLOCKED


if __name__ == "__main__":
    sys.exit(main())
