"""`mlgate bom`: the AI inventory as one CycloneDX 1.6 JSON document, on stdout or in --output FILE.

Exit 0 with the document (whatever the findings say); 2 for a bad policy, a registry that cannot be
listed, a --model that is not registered or an output that cannot be written; 1 when the document
built fails strict validation (then nothing is printed or written; `--no-validate` skips the check,
whose jsonschema import costs seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from checks.bom import Inventory


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Register `mlgate bom` on the CLI's subcommands."""
    p = sub.add_parser("bom", parents=[common], help="the AI inventory as a CycloneDX 1.6 AI-BOM (JSON)")
    p.add_argument("--output", "-o", metavar="FILE", help="write the document here instead of stdout")
    p.add_argument("--model", action="append", metavar="NAME", help="only this registered model (repeatable)")
    p.add_argument(
        "--no-validate",
        dest="validate",
        action="store_false",
        help="skip the strict schema validation (saves the seconds jsonschema takes to import)",
    )
    p.add_argument(
        "--policy", help="policy YAML file for waivers (default: MLGATE_POLICY, ./mlgate.yaml, built-in)"
    )
    p.set_defaults(func=cmd_bom)


def cmd_bom(args: argparse.Namespace) -> int:
    from checks.bom import bom_counts, build_bom, dumps_bom, validate_bom
    from mlgate.api import UsageError

    with contextlib.redirect_stdout(sys.stderr):  # library chatter never reaches the document
        document = build_bom(_inventory(args))
        problems = validate_bom(document) if args.validate else []
    if problems:
        listed = "; ".join(problems[:5])
        print(f"mlgate: error: the AI-BOM is not valid CycloneDX 1.6: {listed}", file=sys.stderr)
        return 1
    counts = bom_counts(document)
    summary = (
        f"{counts['versions']} versions of {counts['models']} models, {counts['datasets']} datasets, "
        f"{counts['libraries']} libraries, {counts['open']} open and {counts['waived']} waived findings"
    )
    if not args.output:
        print(dumps_bom(document))
    else:
        from pipelines.storage import write_json_atomic

        try:
            write_json_atomic(Path(args.output), document)
        except OSError as exc:
            raise UsageError(f"{args.output}: cannot write ({exc.strerror or exc})") from None
        summary = f"wrote {args.output}: {summary}"
    if not args.quiet:
        print(summary, file=sys.stderr)
    return 0


def _inventory(args: argparse.Namespace) -> Inventory:
    """The inventory of the configured registry under the current waivers (policy and store)."""
    from mlflow import MlflowClient

    from checks.policy import load_policy
    from checks.store import FindingsStore
    from mlgate import __version__
    from mlgate.api import UsageError, _environment
    from pipelines.inventory import InventoryError, gather_inventory

    settings = _environment(args.policy)
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
    store = FindingsStore(settings.store_url)
    policy = load_policy(settings.policy_path).with_waivers(store.stored_waivers())
    try:
        return gather_inventory(
            client,
            store,
            policy,
            registry_uri=settings.registry_uri,
            cache_dir=settings.cache_dir,
            datasets_dir=settings.datasets_dir,
            models=args.model,
            tool_version=__version__,
        )
    except InventoryError as exc:
        raise UsageError(str(exc)) from None
