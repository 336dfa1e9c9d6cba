"""What query `status` returns: the full state of one request, and the lifecycle's stage names. Pure pydantic;
imports nothing of ours."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, Field

# DESIGN lifecycle: received → accepted → classified → handling → resolved → closed → revisit → completed.
Stage = Literal["received", "accepted", "classified", "handling", "resolved", "closed", "revisit", "completed"]
STAGES: tuple[Stage, ...] = get_args(Stage)
TERMINAL_STAGES: frozenset[Stage] = frozenset({"completed"})  # no clock runs any more (closed still has revisit)
# 003 §2.2 names 待处理 pending → 处理中 in progress → 已解决 resolved; the rest are ours.
# "assigned": offered to an agent who has not accepted yet; "awaiting_incident_review": confirmed, closes after review.
SubState = Literal["pending", "assigned", "in_progress", "waiting_on_customer", "transferred", "pending_check",
                   "awaiting_incident_review", ""]


class ClockView(BaseModel):
    name: str
    calendar: str
    target_seconds: int
    started_at: datetime
    deadline: datetime
    provisional: bool = Field(default=False, description="the deadline counts days past the calendar's known "
                              "schedule (statutory holidays only, no 调休) and may move when it is loaded")
    stopped_at: datetime | None = None
    paused: bool = False
    paused_seconds: int = 0
    consumed_seconds: int = 0
    breached: bool = False
    breached_at: datetime | None = None
    warnings_sent: list[float] = Field(default_factory=list)
    extended_seconds: int = 0


class EscalationStep(BaseModel):
    level: int
    role: str
    title: str
    at: datetime
    trigger: Literal["grade", "breach", "signal", "ack_timeout", "revisit", "customer_rejected"]
    reason: str
    actor: str
    attributed_to: str | None = Field(default=None, description="handler who breached (000 §5.5)")


class RequestStatus(BaseModel):
    request_id: str
    ticket: str
    workflow_id: str
    policy_id: str
    policy_version: int
    stage: Stage
    sub_state: SubState = ""
    channel: str
    request_type: str | None = None
    category: str | None = None
    priority: str | None = None
    complaint_grade: str | None = None
    department: str = "customer_service"
    participants: list[str] = Field(default_factory=list)
    escalation_level: int = 0
    escalation_role: str = ""
    escalations: list[EscalationStep] = Field(default_factory=list)
    awaiting_ack: bool = False
    owner: str | None = None
    complaint_owner: str | None = None
    clocks: dict[str, ClockView] = Field(default_factory=dict)
    timeline: dict[str, datetime] = Field(default_factory=dict, description="stage → first time entered")
    expected_completion: datetime | None = None
    summary: str | None = None
    root_cause: str | None = None
    requires_check: bool = False
    checked: bool = False
    extensions: int = 0
    reopen_count: int = 0
    confirmed: bool | None = None
    satisfaction: int | None = None
    nps: int | None = None
    resolved_by_customer: bool | None = None
    first_contact_resolution: bool = False
    outcome: Literal["", "completed", "unreachable", "satisfied", "reopen_cap_reached"] = ""
    retention_until: datetime | None = None
    last_action: str = ""
    rejected_actions: int = 0
    incident_id: str | None = None
    incident_reviewed: bool = False
    team: str | None = Field(default=None, description="team the case was dispatched to (003 §1.1)")
    assignment_attempts: int = 0
    returned_by: list[str] = Field(default_factory=list, description="assignees who let the case return")
