"""Tamper-evident audit trail: a hash chain of gate decisions, waivers and promotions.

Each entry is (seq, at, kind, actor, payload, prev_hash, hash) with
``hash = sha256(prev_hash + canonical_json({seq, at, kind, actor, payload}))``, so editing,
reordering or deleting an entry breaks the chain. Appends are serialised (a PostgreSQL advisory
lock; on SQLite the caller's BEGIN IMMEDIATE), so concurrent writers cannot fork it. The newest
(seq, hash) is also kept in a head file outside the store, which catches deleting the newest
entries. The hash input format is part of the stored data: never change it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

GENESIS = "0" * 64
AUDIT_LOCK = 0x6D6C6761  # advisory-lock class id for appends ("mlga")
HEAD_ENV = "MLGATE_AUDIT_HEAD"

audit_log = sa.Table(
    "audit_log",
    sa.MetaData(),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# decision columns copied into a decision's audit payload (and compared by verify)
DECISION_FIELDS = (
    "action",
    "verdict",
    "scan_id",
    "registry_uri",
    "model_name",
    "version",
    "dataset_digest",
    "artifact_digest",
    "policy_digest",
    "alias",
    "reason",
    "run_id",
    "actor",
)


class AuditVerdict(NamedTuple):
    """Outcome of `verify`: intact or not, the first bad entry's seq (when one is to blame), why."""

    ok: bool
    first_bad_seq: int | None
    message: str


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: dt.datetime
    kind: str
    actor: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


def canonical_json(value: Any) -> str:
    """The one JSON spelling that is hashed: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def iso(at: dt.datetime) -> str:
    """UTC timestamp with microseconds; naive values (SQLite drops the zone) are UTC."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(prev_hash: str, seq: int, at: dt.datetime, kind: str, actor: str, payload: Any) -> str:
    body = canonical_json({"seq": seq, "at": iso(at), "kind": kind, "actor": actor, "payload": payload})
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def decision_payload(decision_id: int, row: dict[str, Any]) -> dict[str, Any]:
    """What a decision's audit entry records: its row id and every descriptive column."""
    return {"decision_id": decision_id, **{k: row.get(k) for k in DECISION_FIELDS}}


# -- appending ---------------------------------------------------------------------------------


def lock_chain(conn: Connection) -> None:
    """Serialise appends on PostgreSQL until the transaction ends (one chain per schema).

    SQLite needs no extra step: the caller's BEGIN IMMEDIATE already holds the only write lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:cls, hashtext(coalesce(current_schema(), '')))"),
            {"cls": AUDIT_LOCK},
        )


def append(
    conn: Connection, kind: str, payload: dict[str, Any], *, actor: str, at: dt.datetime
) -> AuditEntry:
    """Append one entry inside the caller's (serialised) write transaction."""
    if not 0 < len(kind) <= 32:
        raise ValueError(f"audit kind must be 1-32 characters, got {kind!r}")
    text = canonical_json(payload)
    lock_chain(conn)
    tail = conn.execute(
        sa.select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
    ).first()
    seq, prev = (tail.seq + 1, tail.hash) if tail else (1, GENESIS)
    parsed = json.loads(text)
    digest = entry_hash(prev, seq, at, kind, actor, parsed)
    conn.execute(
        audit_log.insert().values(
            seq=seq, at=at, kind=kind, actor=actor, payload=text, prev_hash=prev, hash=digest
        )
    )
    return AuditEntry(seq, at, kind, actor, parsed, prev, digest)


def tail(conn: Connection) -> tuple[int, str] | None:
    row = conn.execute(
        sa.select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
    ).first()
    return (row.seq, row.hash) if row else None


# -- the head outside the store ----------------------------------------------------------------


def default_head_path(url: str) -> Path | None:
    """Where the chain head is kept: $MLGATE_AUDIT_HEAD, else next to a SQLite file, else under
    MLGATE_HOME (one file per store URL, password left out); None for an in-memory SQLite."""
    if os.environ.get(HEAD_ENV):
        return Path(os.environ[HEAD_ENV]).resolve()
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return None
        db = Path(parsed.database).resolve()
        return db.with_name(f"{db.stem}.audit-head.json")
    key = hashlib.sha256(parsed.render_as_string(hide_password=True).encode()).hexdigest()[:12]
    return Path(os.environ.get("MLGATE_HOME", ".mlgate")).resolve() / f"audit-head-{key}.json"


def read_head(path: Path) -> dict[str, Any] | None:
    """The recorded head, None when there is no file; ValueError when it is not a head."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"head file {path} is unreadable: {exc}") from None
    if not (
        isinstance(data, dict) and isinstance(data.get("seq"), int) and isinstance(data.get("hash"), str)
    ):
        raise ValueError(f"head file {path} is not an audit head (needs integer seq and hash)")
    return data


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def advance_head(path: Path, seq: int, digest: str, store: str) -> None:
    """Atomically record (seq, hash) as the head, unless the file already holds a later one
    (appends commit in order but their head writes may race)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(path):
        with contextlib.suppress(ValueError):
            current = read_head(path)
            if current is not None and current["seq"] >= seq:
                return
        record = {"seq": seq, "hash": digest, "store": store, "written_at": iso(dt.datetime.now(dt.UTC))}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".audit-head-", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


# -- verifying ---------------------------------------------------------------------------------


def _consistent_as(row: Any, seq: int) -> bool:
    """Does the row's stored hash match its content if it sat at `seq`?"""
    try:
        payload = json.loads(row.payload)
        if canonical_json(payload) != row.payload:
            return False
        return entry_hash(row.prev_hash, seq, row.at, row.kind, row.actor, payload) == row.hash
    except (ValueError, TypeError):
        return False


def _bad(seq: int | None, message: str) -> AuditVerdict:
    return AuditVerdict(False, seq, message)


def _first_break(rows: list[Any]) -> AuditVerdict | None:
    """The first entry that is missing, edited, moved or unlinked; None when the chain holds."""
    prev = GENESIS
    for expected, row in enumerate(rows, start=1):
        if row.seq != expected:
            gap = f"the chain jumps from seq {expected - 1} to seq {row.seq}"
            return _bad(expected, f"entry seq {expected} is missing (deleted): {gap}")
        if not _consistent_as(row, row.seq):
            limit = max(rows[-1].seq, len(rows)) + 1
            origin = next((s for s in range(1, limit + 1) if s != row.seq and _consistent_as(row, s)), None)
            if origin is None:
                return _bad(row.seq, f"entry seq {row.seq} was edited: its hash does not match its content")
            why = "entries reordered, or renumbered after a deletion"
            return _bad(
                row.seq, f"entry seq {row.seq} is out of place: it was written as seq {origin} ({why})"
            )
        if row.prev_hash != prev:
            if row.seq == 1:
                return _bad(1, "entry seq 1 does not start the chain (earlier entries deleted)")
            why = f"entry seq {row.seq} was chained to a different hash"
            return _bad(row.seq - 1, f"entry seq {row.seq - 1} was rewritten: {why}")
        prev = row.hash
    return None


def check_chain(rows: list[Any]) -> AuditVerdict:
    """Walk the entries in seq order and name the first bad one."""
    return _first_break(rows) or AuditVerdict(True, None, f"{len(rows)} entries")


def check_head(rows: list[Any], head: dict[str, Any] | None, head_path: Path | None) -> AuditVerdict:
    """The (intact) chain must still hold the head recorded outside the store."""
    last = rows[-1].seq if rows else 0
    if head is None:
        if last and head_path is not None:
            return _bad(
                None,
                f"no chain head outside the store ({head_path} is missing), so deleting the newest "
                f"entries would go unnoticed; the chain has {last} entries",
            )
        return AuditVerdict(True, None, "no head file (in-memory store)" if last else "empty chain")
    seq, digest = head["seq"], head["hash"]
    if seq > last:
        gone = f"entry seq {seq} was" if seq == last + 1 else f"entries seq {last + 1}..{seq} were"
        return _bad(
            last + 1,
            f"{gone} deleted: the head file {head_path} records seq {seq} but the chain ends at seq {last}",
        )
    if seq > 0 and rows[seq - 1].hash != digest:
        return _bad(
            seq,
            f"entry seq {seq} differs from the head recorded outside the store in {head_path} "
            "(the chain was rewritten from there)",
        )
    behind = f"; {last - seq} newer entries not yet in the head file" if last > seq else ""
    return AuditVerdict(True, None, f"head seq {seq} matches {head_path}{behind}")


def check_decisions(rows: list[Any], decision_rows: Iterable[Any]) -> AuditVerdict:
    """Every decision row must match the audit entry written with it, and vice versa."""
    audited: dict[int, tuple[int, dict[str, Any], dt.datetime]] = {}
    for row in rows:
        payload = json.loads(row.payload)
        if isinstance(payload, dict) and isinstance(payload.get("decision_id"), int):
            audited[payload["decision_id"]] = (row.seq, payload, row.at)
    for d in decision_rows:
        found = audited.pop(d.id, None)
        what = f"decision {d.id} ({d.action} {d.model_name or '-'} v{d.version or '-'})"
        if found is None:
            return _bad(None, f"{what} has no audit entry (written outside mlgate)")
        seq, payload, at = found
        expected = decision_payload(d.id, d._mapping)
        now, then = dict(expected, at=iso(d.at)), dict(payload, at=iso(at))
        changed = next((f for f in (*DECISION_FIELDS, "at") if now[f] != then.get(f)), None)
        if changed is not None:
            diff = f"{changed} is {now[changed]!r}, audit entry seq {seq} recorded {then.get(changed)!r}"
            return _bad(seq, f"{what} was edited after it was audited: {diff}")
    if audited:
        decision_id, (seq, _, _) = min(audited.items(), key=lambda item: item[1][0])
        return _bad(
            seq, f"decision {decision_id} (audit entry seq {seq}) was deleted from the decisions table"
        )
    return AuditVerdict(True, None, "decisions match")


def verify(
    rows: list[Any], decision_rows: Iterable[Any], head: dict[str, Any] | None, head_path: Path | None
) -> AuditVerdict:
    """Chain, then head, then decisions: the first problem found, or a summary when intact."""
    chain = check_chain(rows)
    if not chain.ok:
        return chain
    at_head = check_head(rows, head, head_path)
    if not at_head.ok:
        return at_head
    matched = check_decisions(rows, decision_rows)
    if not matched.ok:
        return matched
    return AuditVerdict(True, None, f"{chain.message}, {at_head.message}, every decision audited")
