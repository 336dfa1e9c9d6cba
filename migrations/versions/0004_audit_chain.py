"""audit chain: insert-only audit lines with revisions, hash chains, audit_heads (archive/audit_chain.py)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

audit_events gains revision (a seq's further lines, never written over), task_at (the writing workflow task's
time), prev_hash and hash; its unique key becomes (request_id, seq, revision). incident_events gains prev_hash and
hash. audit_heads records each chain's length and last hash. Rows written before are chained here, in the order
they were written (id), so `kefu audit verify` holds on an upgraded archive (002 §2.4.3).

Frozen like the others (plain SQLAlchemy types, no import of the tables), except the hash itself: it comes from
archive.audit_chain, whose definition of a row's content and hash never changes (every stored chain depends on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from archive import audit_chain

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# each chained operation log: its table and what audit_chain hashes of it
LOGS = {"audit_events": audit_chain.REQUEST_LOG, "incident_events": audit_chain.INCIDENT_LOG}
# the types the hashed columns are read back with (the hash covers values, not their storage)
TYPES: dict[str, Any] = {"id": sa.Integer(), "seq": sa.Integer(), "revision": sa.Integer(),
                         "at": sa.DateTime(timezone=True), "detail": JSON_DOC, "rejected": sa.Boolean()}


def _hash_columns() -> list[sa.Column]:
    return [sa.Column("prev_hash", sa.String(length=64), nullable=True),
            sa.Column("hash", sa.String(length=64), nullable=True)]


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("task_at", sa.DateTime(timezone=True), nullable=True))
        for column in _hash_columns():
            batch.add_column(column)
    with op.batch_alter_table("incident_events") as batch:
        for column in _hash_columns():
            batch.add_column(column)
    op.create_table(
        "audit_heads",
        sa.Column("log", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("log", "owner_id"),
    )
    op.execute(sa.text("UPDATE audit_events SET revision = 0"))
    for table, log in LOGS.items():
        _backfill(table, log)
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("revision", existing_type=sa.Integer(), nullable=False)
        batch.drop_constraint("uq_audit_request_seq", type_="unique")
        batch.create_unique_constraint("uq_audit_request_seq_revision", ["request_id", "seq", "revision"])


def _backfill(name: str, log: audit_chain.Log) -> None:
    """Chain the rows already there, per owner in id order, and record each chain's head."""
    conn = op.get_bind()
    owner, columns = log.owner, ["id", *log.content]
    table = sa.table(name, *(sa.column(c, TYPES.get(c)) for c in columns), sa.column("prev_hash"), sa.column("hash"))
    heads = sa.table("audit_heads", sa.column("log"), sa.column("owner_id"), sa.column("lines"), sa.column("hash"))
    rows = conn.execute(sa.select(*(table.c[c] for c in columns)).order_by(table.c[owner], table.c.id)).mappings()
    chains: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        chains.setdefault(row[owner], []).append(dict(row))
    for owner_id, lines in chains.items():
        sealed, head = audit_chain.seal(log, audit_chain.EMPTY, lines)
        conn.execute(sa.update(table).where(table.c.id == sa.bindparam("row_id"))
                     .values(prev_hash=sa.bindparam("prev"), hash=sa.bindparam("digest")),
                     [{"row_id": s["id"], "prev": s["prev_hash"], "digest": s["hash"]} for s in sealed])
        conn.execute(sa.insert(heads).values(log=log.name, owner_id=owner_id, lines=head.lines, hash=head.hash))


def downgrade() -> None:
    superseded = op.get_bind().execute(sa.text("SELECT count(*) FROM audit_events WHERE revision > 0")).scalar()
    if superseded:  # the old key (request_id, seq) cannot hold them, and kefu never deletes an audit line
        raise RuntimeError(f"audit_events: {superseded} superseded lines (revision > 0) do not fit the key of 0003; "
                           "not downgraded")
    op.drop_table("audit_heads")
    with op.batch_alter_table("incident_events") as batch:
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_constraint("uq_audit_request_seq_revision", type_="unique")
        batch.create_unique_constraint("uq_audit_request_seq", ["request_id", "seq"])
        for column in ("hash", "prev_hash", "task_at", "revision"):
            batch.drop_column(column)
