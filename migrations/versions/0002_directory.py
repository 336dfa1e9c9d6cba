"""agent directory: agents, agent_teams, assignments (archive/directory_tables.py)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Frozen like 0001: plain SQLAlchemy types, no import of archive.directory_tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _at(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _s(name: str, length: int, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _int(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "agents",
        _s("id", 64),
        _s("name", 100),
        _s("team", 64),
        _s("department", 64),
        _s("role", 32),
        _s("region", 64, nullable=True),
        _int("level"),
        _int("capacity"),
        _int("open_cases"),
        sa.Column("skills", JSON_DOC, nullable=False),
        sa.Column("shift", JSON_DOC, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _at("created_at", nullable=False),
        _at("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint("open_cases >= 0", name="ck_agents_open_cases"),
    )
    op.create_index("ix_agents_team", "agents", ["team"])
    op.create_index("ix_agents_department", "agents", ["department"])

    op.create_table(
        "agent_teams",
        _s("team", 80),
        _s("rr_cursor", 64, nullable=True),
        sa.PrimaryKeyConstraint("team"),
    )

    op.create_table(
        "assignments",
        _s("request_id", 64),
        _int("attempt"),
        _s("agent_id", 64),
        _s("team", 64),
        _s("status", 16),
        _s("reason", 32, nullable=True),
        _at("assigned_at", nullable=False),
        _at("released_at"),
        sa.PrimaryKeyConstraint("request_id", "attempt"),
    )
    op.create_index("ix_assignments_agent_status", "assignments", ["agent_id", "status"])


def downgrade() -> None:
    for table in ("assignments", "agent_teams", "agents"):
        op.drop_table(table)
