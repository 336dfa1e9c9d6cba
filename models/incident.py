"""Incident (突发事件, SEEDS §11) messages: the IncidentWorkflow's input, updates and query, and the signal it sends
to each linked ServiceRequestWorkflow. Plain pydantic."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from models.actions import Actor
from models.intake import REQUEST_ID_PATTERN
from models.policy import Incidents
from models.records import LogLine, Notice

MAX_LINK = 1000  # request ids per `link` update: one update stays well under the payload limit


def incident_workflow_id(incident_id: str) -> str:
    """Workflow id convention: one IncidentWorkflow per incident id."""
    return f"kefu-inc-{incident_id}"


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Declare(_Msg):
    """Input of IncidentWorkflow: a supervisor declares it, or the complaint detector raises it (auto=True)."""

    incident_id: str = Field(pattern=REQUEST_ID_PATTERN)
    policy: str = Field(default="finance", pattern=r"^[a-z][a-z0-9_]*$")
    level: int = Field(ge=1, le=4, description="1 一级 major … 4 四级 minor (000 §7.2, 001 Ch6)")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    category: str | None = Field(default=None, max_length=64)
    lead: str = Field(min_length=1, max_length=64, description="named lead of the response plan")
    declared_by: Actor
    auto: bool = False
    request_ids: list[str] = Field(default_factory=list, max_length=MAX_LINK, description="linked at once")


class Link(_Msg):
    """Update `link`: requests join the incident (each stays its own request with its own audit trail)."""

    actor: Actor
    request_ids: list[str] = Field(min_length=1, max_length=MAX_LINK)


class Progress(_Msg):
    """Update `update`: progress; linked customers are told once each (003 §6.4)."""

    actor: Actor
    text: str = Field(min_length=1, max_length=2000)
    level: int | None = Field(default=None, ge=1, le=4, description="regrade")


class Resolve(_Msg):
    """Update `resolve`: every linked request moves on to resolution with this summary."""

    actor: Actor
    summary: str = Field(min_length=1, max_length=2000)
    root_cause: str = Field(min_length=1, max_length=1000)


class Review(_Msg):
    """Update `review`: the post-mortem (复盘) that ends the incident."""

    actor: Actor
    findings: str = Field(min_length=1, max_length=4000)
    actions: list[str] = Field(default_factory=list, max_length=50)


class IncidentEvent(_Msg):
    """Signal `incident` to a linked ServiceRequestWorkflow; (incident_id, seq) makes a repeat a no-op."""

    incident_id: str
    seq: int = Field(ge=0)
    kind: Literal["linked", "progress", "resolved", "reviewed"]
    level: int
    title: str
    lead: str
    text: str = ""
    root_cause: str | None = None
    at: datetime


class IncidentStatus(BaseModel):
    incident_id: str
    policy: str
    level: int
    title: str
    category: str | None
    lead: str
    stage: Literal["open", "resolved", "reviewed"]
    auto: bool
    declared_at: datetime
    resolved_at: datetime | None = None
    reviewed_at: datetime | None = None
    review_due: datetime | None = None
    summary: str | None = None
    root_cause: str | None = None
    linked: int = 0
    updates: int = 0
    broadcast_pending: int = Field(default=0, description="events not yet delivered to every linked request")
    last_update_at: datetime | None = None


class ComplaintSeen(BaseModel):
    """Payload of activity `watch_complaints`: one classified request, for the incident detector."""

    request_id: str
    policy: str
    request_type: str
    category: str | None
    customer_id: str
    at: datetime


# --- activity payloads of the incident work (IncidentWorkflow <-> activities/incidents.py) ------------------------

class IncidentAuditEvent(LogLine):
    """One line of the incident's operation log; (incident_id, seq) makes a replayed write a no-op."""

    incident_id: str


class IncidentBatch(BaseModel):
    """Payload of local activity `persist_incident`: projection, audit lines, newly linked requests and the
    notices to the reporting chain and the lead, written in one transaction."""

    projection: IncidentStatus
    updated_at: datetime
    events: list[IncidentAuditEvent] = Field(default_factory=list)
    links: list[str] = Field(default_factory=list, description="request ids linked since the last batch")
    notices: list[Notice] = Field(default_factory=list)


class IncidentDelivery(BaseModel):
    """Payload of activity `broadcast_incident`: these events, in order, to each of these requests."""

    incident_id: str
    events: list[IncidentEvent] = Field(min_length=1)
    request_ids: list[str] = Field(min_length=1)


class DeliveryReport(BaseModel):
    """Result of `broadcast_incident`: requests that took the events, and those that are gone (never started,
    or already completed); a gone request is counted, not an error."""

    delivered: int = 0
    missing: list[str] = Field(default_factory=list)


class CustomerUpdate(BaseModel):
    """Payload of activity `notify_incident_customers`: one notice per distinct customer of these requests."""

    event: IncidentEvent
    request_ids: list[str] = Field(min_length=1)


class IncidentCarry(BaseModel):
    """An incident's state carried into a new run (continue-as-new): a large incident's deliveries and links
    would otherwise grow one history toward Temporal's limits (issue 15). The archive buffer is flushed first."""

    rules: Incidents
    limit: int = Field(description="history events after which the incident continues as new (the pack's)")
    level: int
    lead: str
    stage: Literal["open", "resolved", "reviewed"]
    declared_at: datetime
    resolved_at: datetime | None
    reviewed_at: datetime | None
    review_due: datetime | None
    summary: str | None
    root_cause: str | None
    updates: int
    last_update_at: datetime | None
    nudged_at: datetime | None
    linked: list[str]
    welcomed: int
    broadcasts: list[IncidentEvent]
    sent: int
    event_seq: int
    missing: set[str]
    seq: int
