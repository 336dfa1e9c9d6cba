"""Incident tables (突发事件, SEEDS §11): the incident projection, its append-only operation log, the requests
linked to it, and the complaint sightings the detector counts (000 §7.1 a surge of complaints).

Only archive/ uses them; they are never workflow or activity payloads. Imports archive/tables.py only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from archive.tables import LogRowBase, at_field


class IncidentRow(SQLModel, table=True):
    """One incident: the IncidentWorkflow's projection for `kefu incident list` (a read model)."""

    __tablename__ = "incidents"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(unique=True, max_length=64)
    policy: str = Field(max_length=64)
    level: int = Field(index=True)
    title: str = Field(max_length=200)
    category: str | None = Field(default=None, max_length=64)
    lead: str = Field(max_length=64)
    stage: str = Field(index=True, max_length=16)
    auto: bool = False
    declared_at: datetime = at_field(index=True, nullable=False)
    resolved_at: datetime | None = at_field()
    reviewed_at: datetime | None = at_field()
    review_due: datetime | None = at_field()
    summary: str | None = Field(default=None, sa_type=Text)
    root_cause: str | None = Field(default=None, sa_type=Text)
    linked: int = 0
    updates: int = 0
    last_update_at: datetime | None = at_field()
    updated_at: datetime = at_field(nullable=False)


class IncidentEventRow(LogRowBase, table=True):
    """The incident's operation log (000 §3.2)."""

    __tablename__ = "incident_events"
    __table_args__ = (UniqueConstraint("incident_id", "seq", name="uq_incident_event_seq"),)

    incident_id: str = Field(index=True, max_length=64)


class IncidentLinkRow(SQLModel, table=True):
    """A request linked to an incident; each request keeps its own audit trail (SEEDS §11)."""

    __tablename__ = "incident_links"
    __table_args__ = (UniqueConstraint("incident_id", "request_id", name="uq_incident_link"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(index=True, max_length=64)
    request_id: str = Field(index=True, max_length=64)
    linked_at: datetime = at_field(nullable=False)


class ComplaintSighting(SQLModel, table=True):
    """One classified complaint seen by the detector (000 §7.1); request_id makes a retried sighting a no-op."""

    __tablename__ = "complaint_sightings"
    __table_args__ = (Index("ix_complaint_sightings_window", "policy_id", "category", "seen_at"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(unique=True, max_length=64)
    policy_id: str = Field(max_length=64)
    category: str = Field(max_length=64, description="'' when the request has no category")
    request_type: str = Field(max_length=32)
    customer_id: str = Field(max_length=64)
    seen_at: datetime = at_field(nullable=False)


TABLES: list[Table] = [IncidentRow.__table__, IncidentEventRow.__table__, IncidentLinkRow.__table__,  # type: ignore[list-item]
                       ComplaintSighting.__table__]
