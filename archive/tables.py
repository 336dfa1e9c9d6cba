"""Archive tables (SQLModel) of the request and the shared column types and log-row base of the other archive
tables. Only archive/ uses them; they are never workflow or activity payloads. Imports nothing of ours.

Records are truthful and never modified or deleted at will (002 §2.4.3): audit lines, queued notices and archive
records are insert-only; only the request projection row is updated in place (it is a read model, rebuilt from
the workflow's state on every transition), and audit_heads, which records where each audit chain ends
(archive/audit_chain.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Index, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

JSONDoc = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (stored as naive UTC text) and PostgreSQL (timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: archive times are timezone-aware")
        value = value.astimezone(UTC)
        # SQLite keeps no offset: store UTC wall time so text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def at_field(*, index: bool = False, nullable: bool = True) -> Any:
    """A UTCDateTime column."""
    return Field(default=None, sa_type=UTCDateTime, index=index, nullable=nullable)


class RequestRow(SQLModel, table=True):
    """One service request: the registration (000 §2.1, 002 §2.1.2) and the current projection for list pages.

    `id` is the surrogate key and the ticket counter (SQLite autoincrements only an INTEGER PRIMARY KEY);
    request_id (the backend's id) and ticket are unique.
    """

    __tablename__ = "requests"
    __table_args__ = {"sqlite_autoincrement": True}  # ticket numbers are never reused

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(unique=True, max_length=64)
    ticket: str | None = Field(default=None, unique=True, max_length=32)
    # Registration: written once by register().
    customer_id: str = Field(index=True, max_length=64)  # retrievable by customer number (002 §2.4.3)
    customer_name: str = Field(max_length=100)
    customer_phone: str | None = Field(default=None, max_length=32)
    customer_email: str | None = Field(default=None, max_length=254)
    customer_language: str = Field(default="zh-CN", max_length=8)
    description: str = Field(sa_type=Text)
    amount: Decimal | None = Field(default=None, max_digits=18, decimal_places=2)
    received_at: datetime = at_field(nullable=False)
    # Projection: every models.records.Projection field, rewritten by persist() (tests/unit/test_tables.py).
    workflow_id: str = Field(max_length=128)
    policy_id: str = Field(index=True, max_length=64)
    policy_version: int
    channel: str = Field(max_length=32)
    stage: str = Field(index=True, max_length=32)
    sub_state: str = Field(default="", max_length=32)
    request_type: str | None = Field(default=None, index=True, max_length=32)
    category: str | None = Field(default=None, max_length=64)
    priority: str | None = Field(default=None, index=True, max_length=32)
    complaint_grade: str | None = Field(default=None, index=True, max_length=16)
    escalation_level: int = Field(default=0, index=True)
    owner: str | None = Field(default=None, index=True, max_length=64)
    complaint_owner: str | None = Field(default=None, max_length=64)
    department: str = Field(default="customer_service", max_length=64)
    next_deadline: datetime | None = at_field(index=True)
    breached: bool = Field(default=False, index=True)
    breached_clocks: list[str] = Field(default_factory=list, sa_type=JSONDoc)
    accepted_at: datetime = at_field(index=True, nullable=False)
    first_response_at: datetime | None = at_field()
    resolved_at: datetime | None = at_field()
    closed_at: datetime | None = at_field()
    completed_at: datetime | None = at_field()
    updated_at: datetime = at_field(nullable=False)
    reopen_count: int = 0
    satisfaction: int | None = None
    nps: int | None = None
    first_contact_resolution: bool = False
    outcome: str = Field(default="", max_length=32)
    retention_until: datetime | None = at_field()


class LogRowBase(SQLModel):
    """The operation-log columns (000 §3.2) of audit_events and incident_events: who, when, what (detail holds the
    before/after) and whether it was refused. Not a table: each log adds its owner's id, unique with seq, so a
    replayed write is a no-op. The rows of models.records.LogLine."""

    id: int | None = Field(default=None, primary_key=True)
    seq: int
    at: datetime = at_field(nullable=False)
    actor_id: str = Field(max_length=64)
    actor_role: str = Field(max_length=32)
    action: str = Field(max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDoc)
    rejected: bool = False
    # The hash chain (archive/audit_chain.py): NULL only on a row kefu did not write.
    prev_hash: str | None = Field(default=None, max_length=64)
    hash: str | None = Field(default=None, max_length=64)


class AuditRow(LogRowBase, table=True):
    """A request's operation log (000 §3.2), with the stage the request was in.

    Insert-only. A seq normally has one line (revision 0). A workflow task that wrote lines and then failed
    (its history discarded) may be retried with other lines under the same seqs: each such line is a further
    revision, and the trail shows the one the newest task wrote (task_at), the others kept as superseded."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("request_id", "seq", "revision", name="uq_audit_request_seq_revision"),)

    request_id: str = Field(index=True, max_length=64)
    stage: str = Field(max_length=32)
    revision: int = 0
    task_at: datetime | None = at_field()  # the writing workflow task's time (its batch's updated_at)


class AuditHead(SQLModel, table=True):
    """Where each audit chain ends (log 'request' or 'incident', the owner's id): its length and last hash, so
    lines removed from its end, or appended outside kefu, are found. Updated in the transaction that appends."""

    __tablename__ = "audit_heads"

    log: str = Field(primary_key=True, max_length=16)
    owner_id: str = Field(primary_key=True, max_length=64)
    lines: int
    hash: str = Field(max_length=64)


class OutboxRow(SQLModel, table=True):
    """The send queue: rendered messages with the real address; a sender marks them off (status)."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=255)
    request_id: str = Field(index=True, max_length=64)
    template: str = Field(max_length=32)
    audience: str = Field(max_length=16)
    recipient: str = Field(max_length=254)
    channel: str = Field(max_length=16)
    language: str = Field(max_length=8)
    subject: str = Field(sa_type=Text)
    body: str = Field(sa_type=Text)
    created_at: datetime = at_field(nullable=False)
    status: str = Field(default="queued", index=True, max_length=16)


class ArchiveRecord(SQLModel, table=True):
    """The final record of one closure (000 §1.2 every step archived; 002 §6.3 retention).

    A request that is reopened and closed again gets a second record: closure = reopen_count + 1, so earlier
    records stay as they were and a retried write of the same closure is a no-op.
    """

    __tablename__ = "archive_records"
    __table_args__ = (Index("ix_archive_records_retention_until", "retention_until"),)

    request_id: str = Field(primary_key=True, max_length=64)
    closure: int = Field(primary_key=True)
    ticket: str = Field(index=True, max_length=32)
    policy_id: str = Field(max_length=64)
    policy_version: int
    stage: str = Field(max_length=32)
    closed_at: datetime = at_field(nullable=False)
    retention_until: datetime = at_field(nullable=False)
    archived_at: datetime = at_field(nullable=False)
    snapshot: dict[str, Any] = Field(sa_type=JSONDoc)
