"""access log: access_log (archive/access_tables.py), one row per read of a request's personal data (000 §6.3)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

Revises 0004 (the audit chain; written against 0003 and re-chained when both landed).
Frozen on purpose: plain SQLAlchemy types, no import of archive.access_tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "access_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("actor_role", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=128), nullable=False),
        sa.Column("fields", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_access_log_at", "access_log", ["at"])
    op.create_index("ix_access_log_request_id", "access_log", ["request_id"])


def downgrade() -> None:
    op.drop_table("access_log")
