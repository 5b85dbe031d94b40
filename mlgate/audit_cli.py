"""`mlgate audit verify`: check the store's hash-chained audit trail.

Exit 0 when intact, 1 when tampered (naming the first bad entry and what is wrong), 2 when the
store is missing or unreadable (one line). Imports stay lazy so the CLI starts fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mlgate.api import UsageError

EXIT_INTACT, EXIT_TAMPERED = 0, 1


def add_audit_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register `mlgate audit verify` on the CLI's subparsers."""
    audit = sub.add_parser("audit", help="the tamper-evident audit trail").add_subparsers(
        dest="action", required=True
    )
    p = audit.add_parser(
        "verify", parents=[common], help="check the audit chain: 0 intact, 1 tampered, 2 store missing"
    )
    p.add_argument(
        "--store-url", help="SQLAlchemy URL of the store (default: MLGATE_STORE_URL or MLGATE_HOME's)"
    )
    p.add_argument("--head", type=Path, help="the chain head file (default: next to the store / MLGATE_HOME)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_audit_verify)


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def cmd_audit_verify(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from checks.store import FindingsStore, StoreNotFound
    from pipelines.settings import load_settings

    url = args.store_url or load_settings().store_url
    label = sa.engine.make_url(url).render_as_string(hide_password=True)
    try:
        store = FindingsStore(url, head_path=args.head, create=False)
        try:
            verdict = store.verify_audit()
        finally:
            store.close()
    except StoreNotFound as exc:
        raise UsageError(f"{label}: {exc}") from None
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        raise UsageError(f"{label}: store unreadable ({_one_line(exc)})") from None
    if args.format == "json":
        document = {"ok": verdict.ok, "first_bad_seq": verdict.first_bad_seq, "message": verdict.message}
        print(json.dumps({**document, "store": label, "head": str(store.head_path or "")}))
    elif verdict.ok:
        print(f"audit trail intact: {verdict.message}")
    else:
        print(f"audit trail TAMPERED: {verdict.message}")
    return EXIT_INTACT if verdict.ok else EXIT_TAMPERED
