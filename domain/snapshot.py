"""A request's state as data, to carry it into a new run (continue-as-new) intact. Pure; no temporalio.

A long complaint with thousands of notes would otherwise grow one workflow history toward Temporal's limits
(51,200 events, 50 MB). The workflow continues as new while handling waits, with this snapshot; the new run
restores the aggregate and waits on, its clocks and ladder re-armed from the restored state (issue 15).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from domain.calendar import business_calendar, calendar_for
from domain.classify import Classified
from domain.escalation import Ladder
from domain.ledger import Pause, SlaClock
from models.incident import IncidentEvent
from models.policy import ClockSpec, EscalationLevel, PolicyPack
from models.status import EscalationStep


class ClockState(BaseModel):
    name: str
    spec: ClockSpec
    target: float
    started_at: datetime
    pauses: list[tuple[datetime, datetime | None]] = Field(default_factory=list)
    stopped_at: datetime | None = None
    extended: float = 0.0
    warned: list[float] = Field(default_factory=list)
    breached_at: datetime | None = None

    @classmethod
    def of(cls, clock: SlaClock) -> ClockState:
        return cls(name=clock.name, spec=clock.spec, target=clock.target, started_at=clock.started_at,
                   pauses=[(p.start, p.end) for p in clock.pauses], stopped_at=clock.stopped_at,
                   extended=clock.extended, warned=list(clock.warned), breached_at=clock.breached_at)

    def clock(self, pack: PolicyPack) -> SlaClock:
        return SlaClock(name=self.name, spec=self.spec, calendar=calendar_for(pack.calendar, self.spec.calendar),
                        business=business_calendar(pack.calendar), target=self.target, started_at=self.started_at,
                        pauses=[Pause(start, end) for start, end in self.pauses], stopped_at=self.stopped_at,
                        extended=self.extended, warned=list(self.warned), breached_at=self.breached_at)


class LadderState(BaseModel):
    levels: list[EscalationLevel]
    level: int
    awaiting_ack_since: datetime | None = None
    steps: list[EscalationStep] = Field(default_factory=list)


class Snapshot(BaseModel):
    """Everything ServiceRequest holds between workflow tasks, but the outbox (flushed before a run continues)."""

    pack: PolicyPack
    cls: dict[str, Any]
    ladder: LadderState
    clocks: list[ClockState]
    seq: int
    notice_counts: dict[str, int]
    dispatch: dict[str, Any]
    incident: dict[str, Any]
    incident_resolution: IncidentEvent | None = None
    fields: dict[str, Any] = Field(description="the aggregate's plain fields (stage, owner, timeline, …)")


PLAIN = ("ticket", "stage", "sub_state", "owner", "complaint_owner", "department", "participants", "timeline",
         "received_at", "accepted_at", "first_response_at", "resolved_at", "resolved_by", "summary", "root_cause",
         "checked", "extensions", "reopen_count", "confirmed", "satisfaction", "nps", "resolved_by_customer",
         "first_contact_resolution", "outcome", "closed_at", "completed_at", "retention_until", "last_action",
         "rejected_actions", "paused_for_confirmation")
DATETIMES = ("received_at", "accepted_at", "first_response_at", "resolved_at", "closed_at", "completed_at",
             "retention_until")


def classified(data: dict[str, Any]) -> Classified:
    return Classified(**{**data, "rules": tuple(data.get("rules", ()))})


def ladder(state: LadderState) -> Ladder:
    return Ladder(levels=list(state.levels), level=state.level, awaiting_ack_since=state.awaiting_ack_since,
                  steps=list(state.steps))


def ladder_state(value: Ladder) -> LadderState:
    return LadderState(levels=value.levels, level=value.level, awaiting_ack_since=value.awaiting_ack_since,
                       steps=value.steps)


def plain_dict(value: Any) -> dict[str, Any]:
    return asdict(value)


def parse_plain(fields: dict[str, Any]) -> dict[str, Any]:
    """Datetimes come back from JSON as text."""
    out = dict(fields)
    for name in DATETIMES:
        if isinstance(out.get(name), str):
            out[name] = datetime.fromisoformat(out[name])
    out["timeline"] = {stage: datetime.fromisoformat(at) if isinstance(at, str) else at
                       for stage, at in (out.get("timeline") or {}).items()}
    return out
