"""The hash-chained audit trail on the real stores (SQLite and PostgreSQL): tampering with any
entry, the newest included, is named by `verify_audit` and by `mlgate audit verify` (exit 1);
intact is exit 0, a missing store exit 2; concurrent appends keep one unbroken chain."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from checks import audit
from checks.store import FindingsStore
from mlgate.cli import main
from tests import test_store_postgres as shared
from tests.test_cli import mlgate

pg_schemas = shared.pg_schemas  # the session's PostgreSQL schemas (skip/fail when unreachable)
store_url = shared.store_url  # a fresh store URL per backend
ENTRIES = 6
ACTIONS = ("verdict", "promote", "at_risk", "rollback", "hold")


def _chain(url: str) -> FindingsStore:
    """A store holding ENTRIES audit entries: decisions of every kind and a waiver."""
    store = FindingsStore(url)
    for i, action in enumerate(ACTIONS):
        store.record_decision(action=action, verdict="passed", model_name="m", version=str(i), reason=action)
    store.record_waiver(fingerprint="f" * 32, owner="sec", reason="accepted", expires="2099-01-01")
    return store


def _sql(store: FindingsStore, statement: str, **params: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def _edit(store: FindingsStore, seq: int) -> int:
    _sql(store, "UPDATE audit_log SET actor = 'mallory' WHERE seq = :s", s=seq)
    return seq


def _delete(store: FindingsStore, seq: int) -> int:
    _sql(store, "DELETE FROM audit_log WHERE seq = :s", s=seq)
    return seq


COLUMNS = ("at", "kind", "actor", "payload", "prev_hash", "hash")


def _swap(store: FindingsStore, seq: int) -> int:
    """Swap an entry's content with its neighbour's (hashes are unique: go through a placeholder)."""
    other = seq + 1 if seq < ENTRIES else seq - 1
    log = audit.audit_log
    with store.engine.connect() as conn:
        rows = {r.seq: r._asdict() for r in conn.execute(sa.select(log).where(log.c.seq.in_([seq, other])))}
    with store.engine.begin() as conn:
        conn.execute(log.update().where(log.c.seq == seq).values(prev_hash="x", hash="y"))
        for target, source in ((other, seq), (seq, other)):
            values = {c: rows[source][c] for c in COLUMNS}
            conn.execute(log.update().where(log.c.seq == target).values(**values))
    return min(seq, other)


TAMPER = {"edited": _edit, "deleted": _delete, "out of place": _swap}


@pytest.mark.parametrize("position", [1, 3, ENTRIES], ids=["first", "middle", "newest"])
@pytest.mark.parametrize("what", list(TAMPER))
def test_tampering_with_any_entry_is_named(store_url: str, what: str, position: int) -> None:
    store = _chain(store_url)
    assert store.verify_audit().ok
    bad = TAMPER[what](store, position)
    ok, first_bad, message = store.verify_audit()
    assert not ok
    assert first_bad == bad, message
    assert f"seq {bad}" in message
    expected = "missing" if what == "deleted" and position < ENTRIES else what
    assert expected in message
    store.close()


def test_rewriting_the_newest_entry_consistently_is_caught_by_the_head(store_url: str) -> None:
    store = _chain(store_url)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(audit.audit_log).where(audit.audit_log.c.seq == ENTRIES)).one()
    forged = json.loads(row.payload) | {"owner": "mallory"}
    digest = audit.entry_hash(row.prev_hash, ENTRIES, row.at, row.kind, row.actor, forged)
    _sql(
        store,
        "UPDATE audit_log SET payload = :p, hash = :h WHERE seq = :s",
        p=audit.canonical_json(forged),
        h=digest,
        s=ENTRIES,
    )
    ok, first_bad, message = store.verify_audit()
    assert (ok, first_bad) == (False, ENTRIES)
    assert "head recorded outside the store" in message
    store.close()


def test_an_edited_decision_row_no_longer_matches_its_entry(store_url: str) -> None:
    store = _chain(store_url)
    _sql(store, "UPDATE decisions SET verdict = 'blocked' WHERE action = 'promote'")
    ok, first_bad, message = store.verify_audit()
    assert (ok, first_bad) == (False, 2)
    assert "decision 2 (promote m v1) was edited" in message and "verdict" in message
    store.close()


def test_a_missing_head_file_is_not_intact(store_url: str) -> None:
    store = _chain(store_url)
    assert store.head_path is not None
    store.head_path.unlink()
    ok, _, message = store.verify_audit()
    assert not ok and "is missing" in message
    store.close()


def append_many(url: str, writer: int, rounds: int, barrier: Any) -> None:
    """One process of a concurrent retrain: decisions and waivers appended in a loop."""
    store = FindingsStore(url)
    barrier.wait(timeout=60)
    for i in range(rounds):
        store.record_decision(
            action="verdict", verdict="passed", model_name=f"w{writer}", version=str(i), reason="r"
        )
        store.record_waiver(fingerprint=f"{writer}-{i}", owner="o", reason="r", expires=None)
    store.close()


def test_concurrent_appends_keep_one_chain(store_url: str) -> None:
    FindingsStore(store_url).close()
    shared.run_processes(append_many, [(store_url, w, 15) for w in range(2)])
    store = FindingsStore(store_url)
    ok, _, message = store.verify_audit()
    assert ok, message
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(audit.audit_log).order_by(audit.audit_log.c.seq)).all()
    assert [r.seq for r in rows] == list(range(1, 61))
    waivers = {json.loads(r.payload)["fingerprint"] for r in rows if r.kind == "waiver"}
    assert waivers == {f"{w}-{i}" for w in range(2) for i in range(15)}
    assert json.loads(store.head_path.read_text())["seq"] == 60
    store.close()


def _cli_env(url: str) -> dict[str, str]:
    """What `mlgate` needs to find the same store and head as the test (see store_url)."""
    return {"MLGATE_STORE_URL": url, "MLGATE_HOME": os.environ["MLGATE_HOME"]}


def test_cli_exit_codes(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = _chain(store_url)
    assert main(["audit", "verify", "--store-url", store_url]) == 0
    out = capsys.readouterr().out
    assert "intact" in out and f"{ENTRIES} entries" in out
    _delete(store, ENTRIES)
    tampered = mlgate("audit", "verify", **_cli_env(store_url))  # as a user runs it
    assert tampered.returncode == 1, tampered.stderr
    assert f"entry seq {ENTRIES} was deleted" in tampered.stdout
    _edit(store, 2)
    assert main(["audit", "verify", "--store-url", store_url, "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["first_bad_seq"] == 2 and "edited" in report["message"]
    store.close()


def test_cli_missing_store_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere" / "findings.db"
    result = mlgate("audit", "verify", MLGATE_STORE_URL=f"sqlite:///{missing}")
    assert result.returncode == 2
    assert "store not found" in result.stderr and result.stderr.count("\n") == 1
    assert not missing.exists(), "verify must not create a store"
    unreachable = "postgresql+psycopg://postgres@127.0.0.1:1/test"
    assert main(["audit", "verify", "--store-url", unreachable]) == 2
    err = capsys.readouterr().err
    assert "store unreadable" in err and err.count("\n") == 1
