"""Durable store of scans, check results, findings, gate decisions and their audit trail.

SQLAlchemy with an Alembic schema. SQLite (WAL, busy timeout) under MLGATE_HOME by default;
PostgreSQL (``postgresql+psycopg://...``, a schema chosen with ``?options=-csearch_path%3DNAME``)
runs the same code and migrations. Every write is one serialised transaction (SQLite: BEGIN
IMMEDIATE), so a crash never leaves a half-written check result and concurrent writers lose
nothing; every decision is appended to the hash-chained audit log in the transaction that
inserts it (see checks.audit).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from checks import audit
from checks.audit import AuditEntry, AuditVerdict
from checks.findings import Finding

log = logging.getLogger(__name__)
MIGRATE_LOCK = 0x6D6C676D  # advisory-lock class ids ("mlgm", "mlgs")
SCAN_LOCK = 0x6D6C6773
_APPENDED = "mlgate.audit.appended"


class UtcDateTime(sa.types.TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone; PostgreSQL answers in
    the session's zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


TZ = UtcDateTime()
metadata = sa.MetaData()

scans = sa.Table(
    "scans",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # dataset | model_version
    sa.Column("registry_uri", sa.Text),
    sa.Column("model_name", sa.String(256)),
    sa.Column("version", sa.String(64)),
    sa.Column("dataset_name", sa.String(256)),
    sa.Column("dataset_digest", sa.String(64)),
    sa.Column("artifact_digest", sa.String(64)),
    sa.Column("policy_digest", sa.String(64), nullable=False),
    sa.Column("detector_versions", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("actor", sa.String(128)),
    sa.Column("created_at", TZ, nullable=False),
)

check_results = sa.Table(
    "check_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scan_id", sa.String(36), sa.ForeignKey("scans.id"), nullable=False, index=True),
    sa.Column("check_name", sa.String(64), nullable=False),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("blocking", sa.Boolean, nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("started_at", TZ, nullable=False),
    sa.Column("finished_at", TZ, nullable=False),
)

findings = sa.Table(
    "findings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("check_result_id", sa.Integer, sa.ForeignKey("check_results.id"), nullable=False, index=True),
    sa.Column("scan_id", sa.String(36), sa.ForeignKey("scans.id"), nullable=False, index=True),
    sa.Column("fingerprint", sa.String(64), nullable=False, index=True),
    sa.Column("check_name", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", TZ, nullable=False),
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scan_id", sa.String(36)),
    sa.Column("registry_uri", sa.Text),
    sa.Column("model_name", sa.String(256)),
    sa.Column("version", sa.String(64)),
    sa.Column("dataset_digest", sa.String(64)),
    sa.Column("artifact_digest", sa.String(64)),
    sa.Column("policy_digest", sa.String(64)),
    sa.Column("action", sa.String(32), nullable=False),  # verdict | promote | hold | refuse
    sa.Column("verdict", sa.String(16)),
    sa.Column("alias", sa.String(64)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("at", TZ, nullable=False),
)

waivers = sa.Table(
    "waivers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String(32), nullable=False, index=True),
    sa.Column("owner", sa.String(256), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("expires", sa.Date, nullable=False),
    sa.Column("actor", sa.String(128)),
    sa.Column("created_at", TZ, nullable=False),
)

MIGRATIONS = Path(__file__).with_name("migrations")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


@dataclass
class StoredCheck:
    scan_id: str
    check_name: str
    stage: str
    status: str
    blocking: bool
    detail: dict[str, Any]
    findings: list[Finding]


class StoreNotFound(Exception):
    """The URL names no mlgate store (no SQLite file, or no migrated schema)."""


def _sqlite_file(url: str) -> Path | None:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def make_engine(url: str) -> Engine:
    """An engine with SQLite tuned for concurrent writers (WAL, busy timeout) and a bounded
    connect time on PostgreSQL."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if (db := _sqlite_file(url)) is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    connect_args = {}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = 10
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _serialise(conn: Connection, pg_class: int, key: str | None) -> None:
    """Start a write transaction: BEGIN IMMEDIATE on SQLite (its one writer lock, taken up front
    so a read-then-write never fails half-way on a busy database); on PostgreSQL, when a key is
    given, a transaction-scoped advisory lock per (class, schema, key)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql" and key is not None:
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:cls, hashtext(coalesce(current_schema(), '') || :key))"),
            {"cls": pg_class, "key": key},
        )


def migrate(engine: Engine, *, create: bool = True) -> bool:
    """Bring the schema to the newest Alembic revision; True when it upgraded anything.

    Processes that open a fresh store at once do not race: the upgrade runs under the write lock
    and re-reads the revision first. With create=False, a database with no mlgate schema raises
    StoreNotFound instead of being initialised.
    """
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        if current is None and not create:
            raise StoreNotFound("no mlgate store there (no schema version table)")
    if current == head:
        return False
    with engine.begin() as conn:
        _serialise(conn, MIGRATE_LOCK, "")
        if MigrationContext.configure(conn).get_current_revision() == head:
            return False
        from alembic import command

        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return True


class FindingsStore:
    """Read and write mlgate's durable records.

    `head_path` is where the audit chain head is kept outside the store (default:
    checks.audit.default_head_path); `create=False` opens only an existing store.
    """

    def __init__(self, url: str, *, head_path: Path | None = None, create: bool = True) -> None:
        self.url = url
        if not create and (db := _sqlite_file(url)) is not None and not db.is_file():
            raise StoreNotFound(f"store not found (no file {db})")
        self.head_path = head_path if head_path is not None else audit.default_head_path(url)
        self.engine = make_engine(url)
        if migrate(self.engine, create=create):
            with self.engine.connect() as conn:
                last = audit.tail(conn)
            if last:  # decisions stored before the audit trail existed were just chained
                self._advance_head(*last)

    @property
    def label(self) -> str:
        """The URL without its password, for messages."""
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    # -- writes -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self, lock_key: str | None = None) -> Iterator[Connection]:
        """One write transaction (serialised on SQLite; on PostgreSQL per `lock_key` when given).

        Audit entries appended in it commit with it; the head file is advanced after the commit.
        """
        appended: list[AuditEntry] = []
        with self.engine.begin() as conn:
            conn.info[_APPENDED] = appended
            try:
                _serialise(conn, SCAN_LOCK, lock_key)
                yield conn
            finally:
                conn.info.pop(_APPENDED, None)
        if appended:
            self._advance_head(appended[-1].seq, appended[-1].hash)

    def _advance_head(self, seq: int, digest: str) -> None:
        if self.head_path is None:
            return
        try:
            audit.advance_head(self.head_path, seq, digest, self.label)
        except OSError as exc:  # the entry is committed; a stale head only weakens detection
            log.warning("audit head %s not written: %s", self.head_path, exc)

    def append_audit(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        actor: str | None = None,
        conn: Connection | None = None,
    ) -> AuditEntry:
        """Append one entry (kind <= 32 chars, JSON payload) to the audit chain.

        Pass `conn` from `transaction()` to commit the entry with your own writes (e.g. a waiver
        row); without it the entry is its own transaction.
        """
        from checks.findings import to_jsonable

        if conn is None:
            with self.transaction() as own:
                return self.append_audit(kind, payload, actor=actor, conn=own)
        appended = conn.info.get(_APPENDED)
        if appended is None:
            raise ValueError("append_audit: conn must come from FindingsStore.transaction()")
        entry = audit.append(conn, kind, to_jsonable(payload), actor=actor or _actor(), at=_now())
        appended.append(entry)
        return entry

    def record_waiver(
        self,
        *,
        fingerprint: str,
        owner: str,
        reason: str,
        expires: dt.date | str | None,
        actor: str | None = None,
        conn: Connection | None = None,
        **extra: Any,
    ) -> AuditEntry:
        """Audit a waiver granted (or, with e.g. ``event="revoked"`` in extra, changed)."""
        payload = {
            "fingerprint": fingerprint,
            "owner": owner,
            "reason": reason,
            "expires": expires.isoformat() if isinstance(expires, dt.date) else expires,
            **extra,
        }
        return self.append_audit("waiver", payload, actor=actor, conn=conn)

    def add_waiver(self, *, fingerprint: str, owner: str, reason: str, expires: dt.date) -> None:
        """Store a waiver and its audit entry in one transaction (the gate merges it with the policy's)."""
        actor = _actor()
        with self.transaction() as conn:
            conn.execute(
                waivers.insert().values(
                    fingerprint=fingerprint,
                    owner=owner,
                    reason=reason,
                    expires=expires,
                    actor=actor,
                    created_at=_now(),
                )
            )
            self.record_waiver(
                fingerprint=fingerprint, owner=owner, reason=reason, expires=expires, actor=actor, conn=conn
            )

    def stored_waivers(self) -> list[dict[str, Any]]:
        """Every waiver granted through the store, oldest first (expired ones included)."""
        columns = [waivers.c.fingerprint, waivers.c.owner, waivers.c.reason, waivers.c.expires]
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(*columns).order_by(waivers.c.id)).mappings()]

    def open_scan(
        self,
        kind: str,
        *,
        policy_digest: str,
        detector_versions: str,
        run_id: str | None,
        **subject: str | None,
    ) -> str:
        """Create (or return, for the same run and subject) the scan a gate step writes into."""
        keys = {
            k: subject.get(k)
            for k in (
                "registry_uri",
                "model_name",
                "version",
                "dataset_name",
                "dataset_digest",
                "artifact_digest",
            )
        }
        # locked per run, so two gate steps of one run never open two scans
        with self.transaction(lock_key=f"scan:{run_id or ''}") as conn:
            if run_id:
                query = sa.select(scans.c.id).where(
                    scans.c.kind == kind, scans.c.run_id == run_id, scans.c.policy_digest == policy_digest
                )
                for k, v in keys.items():
                    query = query.where(scans.c[k].is_(None) if v is None else scans.c[k] == v)
                found = conn.execute(query).scalar()
                if found:
                    return found
            scan_id = str(uuid.uuid4())
            conn.execute(
                scans.insert().values(
                    id=scan_id,
                    kind=kind,
                    policy_digest=policy_digest,
                    detector_versions=detector_versions,
                    run_id=run_id,
                    actor=_actor(),
                    created_at=_now(),
                    **keys,
                )
            )
            return scan_id

    def record_check(
        self,
        scan_id: str,
        *,
        check_name: str,
        stage: str,
        status: str,
        blocking: bool,
        found: list[Finding],
        detail: dict[str, Any],
        started_at: dt.datetime,
    ) -> int:
        """Store one check result and its findings in a single transaction."""
        from checks.findings import to_jsonable

        now = _now()
        with self.transaction() as conn:
            result_id = conn.execute(
                check_results.insert().values(
                    scan_id=scan_id,
                    check_name=check_name,
                    stage=stage,
                    status=status,
                    blocking=blocking,
                    detail=to_jsonable(detail),
                    started_at=started_at,
                    finished_at=now,
                )
            ).inserted_primary_key[0]
            if found:
                conn.execute(
                    findings.insert(),
                    [
                        {
                            "check_result_id": result_id,
                            "scan_id": scan_id,
                            "fingerprint": f.fingerprint,
                            "check_name": f.check,
                            "severity": f.severity.label,
                            "payload": f.to_dict(),
                            "created_at": now,
                        }
                        for f in found
                    ],
                )
        return result_id

    def record_decision(self, *, action: str, reason: str, run_id: str | None = None, **fields: Any) -> int:
        """Store a gate decision (verdict, refuse, promote, hold, rollback, at_risk, ...) and append
        it to the audit chain in the same transaction, so no decision is ever unaudited."""
        row = dict(
            action=action,
            reason=reason,
            run_id=run_id,
            actor=fields.pop("actor", None) or _actor(),
            at=_now(),
            **fields,
        )
        with self.transaction() as conn:
            decision_id = conn.execute(decisions.insert().values(**row)).inserted_primary_key[0]
            entry = audit.append(
                conn, action, audit.decision_payload(decision_id, row), actor=row["actor"], at=row["at"]
            )
            conn.info[_APPENDED].append(entry)
        return decision_id

    # -- audit --------------------------------------------------------------------------------
    def verify_audit(self) -> AuditVerdict:
        """Check the chain, the head outside the store and that every decision is audited.

        The head is read first, then the tables in one snapshot, so concurrent appends cannot
        look like tampering.
        """
        try:
            head = audit.read_head(self.head_path) if self.head_path is not None else None
        except ValueError as exc:
            return AuditVerdict(False, None, str(exc))
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            elif conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN")  # a read transaction: one WAL snapshot
            rows = conn.execute(sa.select(audit.audit_log).order_by(audit.audit_log.c.seq)).all()
            decided = conn.execute(sa.select(decisions).order_by(decisions.c.id)).all()
        return audit.verify(rows, decided, head, self.head_path)

    # -- reads --------------------------------------------------------------------------------
    def latest_scan(self, kind: str, **keys: str | None) -> dict[str, Any] | None:
        """The newest scan of that kind matching every given key (None matches SQL NULL)."""
        query = sa.select(scans).where(scans.c.kind == kind)
        for k, v in keys.items():
            query = query.where(scans.c[k].is_(None) if v is None else scans.c[k] == v)
        query = query.order_by(scans.c.created_at.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def scan(self, scan_id: str) -> dict[str, Any] | None:
        """One scan's row by id."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(scans).where(scans.c.id == scan_id)).mappings().first()
        return dict(row) if row else None

    def checks_of(self, scan_id: str) -> dict[str, StoredCheck]:
        """The newest result per check of one scan, with its findings."""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.select(check_results)
                    .where(check_results.c.scan_id == scan_id)
                    .order_by(check_results.c.id)
                )
                .mappings()
                .all()
            )
            found = conn.execute(
                sa.select(findings.c.check_result_id, findings.c.payload).where(findings.c.scan_id == scan_id)
            ).all()
        by_result: dict[int, list[Finding]] = {}
        for result_id, payload in found:
            by_result.setdefault(result_id, []).append(Finding.from_dict(payload))
        latest: dict[str, StoredCheck] = {}
        for row in rows:
            latest[row["check_name"]] = StoredCheck(
                scan_id=scan_id,
                check_name=row["check_name"],
                stage=row["stage"],
                status=row["status"],
                blocking=row["blocking"],
                detail=row["detail"],
                findings=by_result.get(row["id"], []),
            )
        return latest

    def list_findings(self, *, model_name: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """Stored findings, newest first, each with the scan it came from."""
        query = (
            sa.select(
                findings.c.payload,
                findings.c.created_at,
                scans.c.id.label("scan_id"),
                scans.c.kind,
                scans.c.model_name,
                scans.c.version,
                scans.c.dataset_name,
            )
            .join(scans, scans.c.id == findings.c.scan_id)
            .order_by(findings.c.id.desc())
            .limit(limit)
        )
        if model_name:
            query = query.where(scans.c.model_name == model_name)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]

    def decisions_for_run(self, run_id: str) -> list[dict[str, Any]]:
        query = sa.select(decisions).where(decisions.c.run_id == run_id).order_by(decisions.c.id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]

    def decisions_for(self, model_name: str, version: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(decisions).where(decisions.c.model_name == model_name).order_by(decisions.c.id)
        if version is not None:
            query = query.where(decisions.c.version == version)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]
