"""The findings store on SQLite and on the machine's PostgreSQL: same code, same migrations,
portable types, concurrent writers and concurrent first use lose nothing.

PostgreSQL tests use a unique schema per test run (dropped at the end); they skip when
PostgreSQL is unreachable, and fail instead when CI=true.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from checks.findings import Finding
from checks.store import FindingsStore, check_results, decisions, findings, scans

PG_URL = os.environ.get("MLGATE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# fork: children start at once with modules loaded; each opens its own engine and exits with
# os._exit, so connections inherited from the parent are never touched
FORK = multiprocessing.get_context("fork")


@pytest.fixture(scope="session")
def pg_schemas() -> Iterator[Callable[[], str]]:
    """A factory of store URLs, each on a fresh schema of this run; all dropped at the end."""
    where = sa.engine.make_url(PG_URL).render_as_string(hide_password=True)
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "unreachable"
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        reason = f"PostgreSQL not reachable at {where}: {detail}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (required when CI=true)")
        pytest.skip(reason)
    run, made = f"mlgate_test_{uuid.uuid4().hex[:8]}", []

    def new_schema() -> str:
        name = f"{run}_{len(made)}"
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        made.append(name)
        url = sa.engine.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={name}"})
        return url.render_as_string(hide_password=False)

    yield new_schema
    with engine.begin() as conn:
        for name in made:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty store URL on each backend; MLGATE_HOME (where a PostgreSQL store's audit
    head lives) is the test's own folder, and child processes inherit it."""
    for var in ("MLGATE_STORE_URL", "MLGATE_AUDIT_HEAD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLGATE_HOME", str(tmp_path / "home"))
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'findings.db'}"
    return request.getfixturevalue("pg_schemas")()


def finding(key: str, severity: str = "high") -> Finding:
    return Finding(
        check="artifact_safety",
        severity=severity,
        title=f"finding {key}",
        stage="model",
        subject_identity="m",
        key=key,
    )


def run_processes(target: Callable[..., Any], args_per_process: list[tuple]) -> None:
    """Start every process at once (behind a barrier) and require that each exits cleanly."""
    barrier = FORK.Barrier(len(args_per_process))
    procs = [FORK.Process(target=target, args=(*args, barrier)) for args in args_per_process]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * len(procs)


def write_scans(url: str, writer: int, rounds: int, threads: int, barrier: Any) -> None:
    """One writer process: `threads` threads, each opening scans and recording check results,
    findings and decisions in a loop (what concurrent scan runs do)."""
    store = FindingsStore(url)
    barrier.wait(timeout=60)
    errors: list[BaseException] = []

    def loop(thread: int) -> None:
        try:
            for i in range(rounds):
                tag = f"{writer}.{thread}.{i}"
                scan = store.open_scan(
                    "model_version",
                    policy_digest="p",
                    detector_versions="d",
                    run_id=f"run-{tag}",
                    model_name="m",
                    version=tag,
                    artifact_digest="a" * 64,
                )
                store.record_check(
                    scan,
                    check_name="artifact_safety",
                    stage="model",
                    status="failed",
                    blocking=True,
                    found=[finding(f"{tag}-a"), finding(f"{tag}-b", "low")],
                    detail={"writer": writer},
                    started_at=dt.datetime.now(dt.UTC),
                )
                store.record_decision(
                    action="verdict", verdict="blocked", scan_id=scan, model_name="m", version=tag, reason=tag
                )
        except BaseException as exc:  # noqa: BLE001 - reported below, failing the process
            errors.append(exc)

    workers = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    store.close()
    if errors:
        raise errors[0]


def open_store(url: str, barrier: Any) -> None:
    barrier.wait(timeout=60)
    FindingsStore(url).close()


def test_concurrent_scans_lose_nothing(store_url: str) -> None:
    writers, threads, rounds = 2, 2, 12
    FindingsStore(store_url).close()
    run_processes(write_scans, [(store_url, w, rounds, threads) for w in range(writers)])
    tags = {f"{w}.{t}.{i}" for w in range(writers) for t in range(threads) for i in range(rounds)}
    store = FindingsStore(store_url)
    with store.engine.connect() as conn:
        assert set(conn.execute(sa.select(scans.c.version)).scalars()) == tags
        assert conn.execute(sa.select(sa.func.count()).select_from(check_results)).scalar() == len(tags)
        stored = set(conn.execute(sa.select(findings.c.fingerprint)).scalars())
        assert conn.execute(sa.select(sa.func.count()).select_from(findings)).scalar() == 2 * len(tags)
        assert set(conn.execute(sa.select(decisions.c.reason)).scalars()) == tags
    assert stored == {finding(f"{tag}-{s}").fingerprint for tag in tags for s in "ab"}
    ok, _, message = store.verify_audit()
    assert ok, message
    assert f"{len(tags)} entries" in message
    store.close()


def test_concurrent_first_use_migrates_once(store_url: str) -> None:
    run_processes(open_store, [(store_url,)] * 3)
    store = FindingsStore(store_url)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == ["0003"]
        names = set(sa.inspect(conn).get_table_names())
    assert {"scans", "check_results", "findings", "decisions", "audit_log", "alembic_version"} <= names
    store.close()


def test_types_round_trip_on_both_backends(store_url: str) -> None:
    store = FindingsStore(store_url)
    long_name = "m" * 255 + "é"  # at the declared length, not ASCII
    scan = store.open_scan(
        "model_version",
        policy_digest="p" * 64,
        detector_versions="d" * 64,
        run_id="r" * 64,
        registry_uri="sqlite:///" + "x" * 500,
        model_name=long_name,
        version="9" * 64,
        artifact_digest="a" * 64,
    )
    started = dt.datetime(2024, 5, 1, 14, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    detail = {"nested": {"list": [1, 2.5, None, True]}, "text": "ünïcode ✓", "big": 2**53}
    ids = [
        store.record_check(
            scan,
            check_name="c" * 64,
            stage="s" * 32,
            status=status,
            blocking=blocking,
            found=[finding(status)],
            detail=detail,
            started_at=started,
        )
        for status, blocking in (("passed", False), ("failed", True))
    ]
    assert ids[1] > ids[0]
    decision_id = store.record_decision(
        action="promote", alias="a" * 64, reason="r" * 5000, model_name=long_name
    )
    checks = store.checks_of(scan)
    assert len(checks) == 1 and checks["c" * 64].detail == detail and checks["c" * 64].blocking is True
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(check_results).where(check_results.c.id == ids[0])).mappings().one()
    assert row["blocking"] is False
    assert row["started_at"] == started and row["started_at"].tzinfo is not None
    assert row["started_at"].utcoffset() == dt.timedelta(0)
    [decision] = store.decisions_for(long_name)
    assert decision["id"] == decision_id and decision["at"].tzinfo is not None
    assert store.latest_scan("model_version", model_name=long_name)["id"] == scan
    assert store.list_findings(model_name=long_name)[0]["payload"]["title"] == "finding failed"
    with store.engine.connect() as conn:
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("findings")}
        if conn.dialect.name == "postgresql":
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
            assert schema.startswith("mlgate_test_")
            assert sa.inspect(conn).get_table_names(schema="public").count("scans") == 0
    assert {"ix_findings_fingerprint", "ix_findings_scan_id", "ix_findings_check_result_id"} <= indexes
    store.close()
