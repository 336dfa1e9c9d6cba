"""Activity payloads for the archive and the notification outbox, and the rendered message the outbox stores.

Pure data: plain pydantic models and one frozen dataclass, never SQLModel tables. Imports nothing of ours but
other models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, Field

from models.intake import Customer, Language

Audience = Literal["customer", "owner", "escalation"]
# Templates in templates/<language>/<name>.txt.j2
TemplateName = Literal[
    "acknowledgement", "progress", "extension", "escalation", "warning", "resolution", "revisit", "assignment",
    "incident",
]
NoticeChannel = Literal["sms", "email", "internal"]


class Registration(BaseModel):
    """Acceptance: the work order as registered (000 §2.1, 002 §2.1.2)."""

    request_id: str
    workflow_id: str
    policy_id: str
    policy_version: int
    channel: str
    customer: Customer
    description: str
    amount: Decimal | None = None
    received_at: datetime
    accepted_at: datetime


class Registered(BaseModel):
    ticket: str
    created: bool = Field(description="False when the request was registered before (a retry)")


class Rejection(BaseModel):
    """An intake the worker refused (a malformed payload, a workflow id that is not its request's, a channel the
    policy does not serve): archived as a `rejected` row so operators see it; no customer data is kept."""

    request_id: str
    workflow_id: str
    policy_id: str
    channel: str
    reason: str = Field(description="one line naming the field; never the values sent")
    at: datetime


class LogLine(BaseModel):
    """One line of an append-only operation log (000 §3.2): who, when, what, before/after."""

    seq: int = Field(ge=0, description="per request or incident; with its id the idempotency key")
    at: datetime
    actor_id: str
    actor_role: str
    action: str
    detail: dict[str, Any] = Field(default_factory=dict)
    rejected: bool = False


class AuditEvent(LogLine):
    """A request's operation log line."""

    request_id: str
    stage: str


class Notice(BaseModel):
    """A notification to render and put in the outbox; the key makes retries and replays send it once."""

    key: str
    request_id: str
    template: TemplateName
    audience: Audience
    recipient: str = Field(description="'customer' resolves to the registered contact; else an agent or role id")
    language: Language = "zh-CN"
    context: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class RenderedNotice:
    """A notice as the outbox stores it: rendered text, the channel and the real address (never logged in clear)."""

    subject: str
    body: str
    channel: NoticeChannel
    recipient: str


# A notice with its rendered message: what activities hand the archive to queue, and what it reports as newly queued.
Outgoing: TypeAlias = tuple[Notice, RenderedNotice]


class Projection(BaseModel):
    """The request's row in the archive, for list pages and reports (never queried from workflows)."""

    request_id: str
    ticket: str
    workflow_id: str
    policy_id: str
    policy_version: int
    channel: str
    stage: str
    sub_state: str = ""
    request_type: str | None = None
    category: str | None = None
    priority: str | None = None
    complaint_grade: str | None = None
    escalation_level: int = 0
    owner: str | None = None
    complaint_owner: str | None = None
    department: str = "customer_service"
    next_deadline: datetime | None = None
    breached: bool = False
    breached_clocks: list[str] = Field(default_factory=list)
    accepted_at: datetime
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime
    reopen_count: int = 0
    satisfaction: int | None = None
    nps: int | None = None
    first_contact_resolution: bool = False
    outcome: str = ""
    retention_until: datetime | None = None


class PersistBatch(BaseModel):
    """Everything one transition writes, in one activity call: projection upsert, events, notices."""

    projection: Projection
    events: list[AuditEvent] = Field(default_factory=list)
    notices: list[Notice] = Field(default_factory=list)
    final: bool = Field(default=False, description="closed: write the archive record with its retention date")
