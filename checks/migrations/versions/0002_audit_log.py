"""Audit trail: a hash-chained log of gate decisions, waivers and promotions.

Existing decisions are appended in id order, so every decision, old or new, is in the chain.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    from checks import audit

    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        # a second entry after the same predecessor would be a fork: refuse it outright
        sa.UniqueConstraint("prev_hash", name="uq_audit_log_prev_hash"),
        sa.UniqueConstraint("hash", name="uq_audit_log_hash"),
    )
    decisions = sa.table(
        "decisions",
        sa.column("id", sa.Integer),
        sa.column("at", TZ),
        *(sa.column(name, sa.Text) for name in audit.DECISION_FIELDS),
    )
    conn = op.get_bind()
    for row in conn.execute(sa.select(decisions).order_by(decisions.c.id)).mappings().all():
        audit.append(
            conn,
            row["action"],
            {**audit.decision_payload(row["id"], row), "backfilled": True},
            actor=row["actor"],
            at=row["at"],
        )


def downgrade() -> None:
    op.drop_table("audit_log")
