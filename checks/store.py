"""Durable store of scans, check results, findings and gate decisions (SQLAlchemy; Alembic schema).

SQLite (WAL, busy timeout) under MLGATE_HOME by default; any SQLAlchemy URL works, so a later
PostgreSQL deployment only changes the URL. Every write is one transaction, so a crash never
leaves a half-written check result.
"""

from __future__ import annotations

import datetime as dt
import getpass
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from checks.findings import Finding

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
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
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
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
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
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
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
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
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


def make_engine(url: str) -> Engine:
    """An engine with SQLite tuned for concurrent writers (WAL, busy timeout)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (a no-op when already there)."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


class FindingsStore:
    """Read and write mlgate's durable records."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        migrate(self.engine)

    # -- writes -------------------------------------------------------------------------------
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
        with self.engine.begin() as conn:
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
        with self.engine.begin() as conn:
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

    def record_decision(self, *, action: str, reason: str, run_id: str | None = None, **fields: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                decisions.insert().values(
                    action=action,
                    reason=reason,
                    run_id=run_id,
                    actor=fields.pop("actor", None) or _actor(),
                    at=_now(),
                    **fields,
                )
            )

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
