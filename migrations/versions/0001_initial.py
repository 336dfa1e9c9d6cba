"""initial archive schema: requests, audit_events, outbox, archive_records (archive/tables.py as of issue 9)

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Frozen on purpose: plain SQLAlchemy types, no import of archive.tables, so later model changes never rewrite
history. DateTime(timezone=True) is UTCDateTime's storage type; JSON becomes JSONB on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _at(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _s(name: str, length: int, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


REQUEST_INDEXES = ("accepted_at", "breached", "complaint_grade", "customer_id", "escalation_level", "next_deadline",
                   "owner", "policy_id", "priority", "request_type", "stage")


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("id", sa.Integer(), nullable=False),
        _s("request_id", 64),
        _s("ticket", 32, nullable=True),
        _s("customer_id", 64),
        _s("customer_name", 100),
        _s("customer_phone", 32, nullable=True),
        _s("customer_email", 254, nullable=True),
        _s("customer_language", 8),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=True),
        _at("received_at", nullable=False),
        _s("workflow_id", 128),
        _s("policy_id", 64),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        _s("channel", 32),
        _s("stage", 32),
        _s("sub_state", 32),
        _s("request_type", 32, nullable=True),
        _s("category", 64, nullable=True),
        _s("priority", 32, nullable=True),
        _s("complaint_grade", 16, nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        _s("owner", 64, nullable=True),
        _s("complaint_owner", 64, nullable=True),
        _s("department", 64),
        _at("next_deadline"),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.Column("breached_clocks", JSON_DOC, nullable=False),
        _at("accepted_at", nullable=False),
        _at("first_response_at"),
        _at("resolved_at"),
        _at("closed_at"),
        _at("completed_at"),
        _at("updated_at", nullable=False),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("satisfaction", sa.Integer(), nullable=True),
        sa.Column("nps", sa.Integer(), nullable=True),
        sa.Column("first_contact_resolution", sa.Boolean(), nullable=False),
        _s("outcome", 32),
        _at("retention_until"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
        sa.UniqueConstraint("ticket"),
        sqlite_autoincrement=True,  # ticket numbers are never reused
    )
    for column in REQUEST_INDEXES:
        op.create_index(f"ix_requests_{column}", "requests", [column])

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        _s("request_id", 64),
        sa.Column("seq", sa.Integer(), nullable=False),
        _at("at", nullable=False),
        _s("actor_id", 64),
        _s("actor_role", 32),
        _s("action", 64),
        _s("stage", 32),
        sa.Column("detail", JSON_DOC, nullable=False),
        sa.Column("rejected", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "seq", name="uq_audit_request_seq"),
    )
    op.create_index("ix_audit_events_request_id", "audit_events", ["request_id"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        _s("key", 255),
        _s("request_id", 64),
        _s("template", 32),
        _s("audience", 16),
        _s("recipient", 254),
        _s("channel", 16),
        _s("language", 8),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _at("created_at", nullable=False),
        _s("status", 16),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_outbox_request_id", "outbox", ["request_id"])
    op.create_index("ix_outbox_status", "outbox", ["status"])

    op.create_table(
        "archive_records",
        _s("request_id", 64),
        sa.Column("closure", sa.Integer(), nullable=False),
        _s("ticket", 32),
        _s("policy_id", 64),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        _s("stage", 32),
        _at("closed_at", nullable=False),
        _at("retention_until", nullable=False),
        _at("archived_at", nullable=False),
        sa.Column("snapshot", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("request_id", "closure"),
    )
    op.create_index("ix_archive_records_retention_until", "archive_records", ["retention_until"])
    op.create_index("ix_archive_records_ticket", "archive_records", ["ticket"])


def downgrade() -> None:
    # Dropping a table drops its indexes and constraints with it, on SQLite and PostgreSQL alike.
    for table in ("archive_records", "outbox", "audit_events", "requests"):
        op.drop_table(table)
