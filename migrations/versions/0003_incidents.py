"""incidents: incidents, incident_events, incident_links, complaint_sightings (archive/incident_tables.py)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Frozen on purpose: plain SQLAlchemy types, no import of archive.incident_tables, so later model changes never
rewrite history. DateTime(timezone=True) is UTCDateTime's storage type; JSON becomes JSONB on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _at(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _s(name: str, length: int, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "incidents",
        _id(),
        _s("incident_id", 64),
        _s("policy", 64),
        sa.Column("level", sa.Integer(), nullable=False),
        _s("title", 200),
        _s("category", 64, nullable=True),
        _s("lead", 64),
        _s("stage", 16),
        sa.Column("auto", sa.Boolean(), nullable=False),
        _at("declared_at", nullable=False),
        _at("resolved_at"),
        _at("reviewed_at"),
        _at("review_due"),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("root_cause", sa.Text(), nullable=True),
        sa.Column("linked", sa.Integer(), nullable=False),
        sa.Column("updates", sa.Integer(), nullable=False),
        _at("last_update_at"),
        _at("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id"),
    )
    for column in ("declared_at", "level", "stage"):
        op.create_index(f"ix_incidents_{column}", "incidents", [column])

    op.create_table(
        "incident_events",
        _id(),
        _s("incident_id", 64),
        sa.Column("seq", sa.Integer(), nullable=False),
        _at("at", nullable=False),
        _s("actor_id", 64),
        _s("actor_role", 32),
        _s("action", 64),
        sa.Column("detail", JSON_DOC, nullable=False),
        sa.Column("rejected", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "seq", name="uq_incident_event_seq"),
    )
    op.create_index("ix_incident_events_incident_id", "incident_events", ["incident_id"])

    op.create_table(
        "incident_links",
        _id(),
        _s("incident_id", 64),
        _s("request_id", 64),
        _at("linked_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "request_id", name="uq_incident_link"),
    )
    op.create_index("ix_incident_links_incident_id", "incident_links", ["incident_id"])
    op.create_index("ix_incident_links_request_id", "incident_links", ["request_id"])

    op.create_table(
        "complaint_sightings",
        _id(),
        _s("request_id", 64),
        _s("policy_id", 64),
        _s("category", 64),
        _s("request_type", 32),
        _s("customer_id", 64),
        _at("seen_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
    )
    op.create_index("ix_complaint_sightings_window", "complaint_sightings", ["policy_id", "category", "seen_at"])


def downgrade() -> None:
    # Dropping a table drops its indexes and constraints with it, on SQLite and PostgreSQL alike.
    for table in ("complaint_sightings", "incident_links", "incident_events", "incidents"):
        op.drop_table(table)
