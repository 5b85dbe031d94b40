"""Initial schema: scans, check results, findings, gate decisions.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scans",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
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
    op.create_index("ix_scans_subject", "scans", ["kind", "model_name", "version", "dataset_digest"])
    op.create_table(
        "check_results",
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
    op.create_table(
        "findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "check_result_id", sa.Integer, sa.ForeignKey("check_results.id"), nullable=False, index=True
        ),
        sa.Column("scan_id", sa.String(36), sa.ForeignKey("scans.id"), nullable=False, index=True),
        sa.Column("fingerprint", sa.String(64), nullable=False, index=True),
        sa.Column("check_name", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scan_id", sa.String(36)),
        sa.Column("registry_uri", sa.Text),
        sa.Column("model_name", sa.String(256)),
        sa.Column("version", sa.String(64)),
        sa.Column("dataset_digest", sa.String(64)),
        sa.Column("artifact_digest", sa.String(64)),
        sa.Column("policy_digest", sa.String(64)),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("verdict", sa.String(16)),
        sa.Column("alias", sa.String(64)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("at", TZ, nullable=False),
    )
    op.create_index("ix_decisions_model", "decisions", ["model_name", "version"])


def downgrade() -> None:
    for table in ("decisions", "findings", "check_results", "scans"):
        op.drop_table(table)
