"""The state one ServiceRequestWorkflow keeps: SLA clocks, escalation ladder, stage timeline, audit buffer.

Deterministic code only: it is driven by the workflow with workflow.now() and never does I/O. Everything that
must reach the archive is buffered here as audit events and notices and flushed by the workflow.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from domain.classify import Classified
    from domain.escalation import Ladder
    from domain.ledger import SlaClock
    from infra import metrics
    from models.actions import Actor
    from models.errors import one_line
    from models.incident import IncidentEvent
    from models.intake import Intake
    from models.policy import PolicyPack
    from models.records import AuditEvent, Notice, PersistBatch, Projection, TemplateName
    from models.status import RequestStatus

TERMINAL_STAGES = ("completed",)
# Archive writes, policy loading and dispatch are short, idempotent and local to the worker: local activities keep
# the history small (one marker each) and retry until the database is back.
LOCAL = {"start_to_close_timeout": timedelta(seconds=30),
         "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))}


SYSTEM = Actor(id="kefu", role="system")
M = TypeVar("M", bound=BaseModel)


async def run_local(s: RequestState, activity: str, arg: Any, summary: str, result_type: type | None = None) -> Any:
    """A lifecycle step's local activity. While one is in flight the archive flusher holds its batch, so a workflow
    task writes the archive once, after its steps have run (docs/performance.md)."""
    s.busy += 1
    try:
        return await workflow.execute_local_activity(activity, arg, result_type=result_type, summary=summary,
                                                     **LOCAL)  # type: ignore[arg-type]
    finally:
        s.busy -= 1


def add_years(moment: datetime, years: int) -> datetime:
    """Retention end (002 §2.4.2): same calendar day `years` later; 29 Feb falls back to 28 Feb."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


class RequestState:
    def __init__(self, intake: Intake, workflow_id: str) -> None:
        self.intake = intake
        self.workflow_id = workflow_id
        self.pack: PolicyPack | None = None
        self.ticket = ""
        self.stage = "received"
        self.sub_state = ""
        self.cls: Classified | None = None
        self.clocks: dict[str, SlaClock] = {}
        self.clock_rev: dict[str, int] = {}
        self.ladder: Ladder | None = None
        self.ladder_rev = 0
        self.owner: str | None = intake.accepted_by
        self.complaint_owner: str | None = None
        self.department = "customer_service"
        self.participants: list[str] = []
        self.timeline: dict[str, datetime] = {}
        self.received_at: datetime | None = None
        self.accepted_at: datetime | None = None
        self.first_response_at: datetime | None = None
        self.resolved_at: datetime | None = None
        self.resolved_by: str | None = None
        self.summary: str | None = None
        self.root_cause: str | None = None
        self.checked = False
        self.extensions = 0
        self.reopen_count = 0
        self.confirmed: bool | None = None
        self.satisfaction: int | None = None
        self.nps: int | None = None
        self.resolved_by_customer: bool | None = None
        self.first_contact_resolution = False
        self.outcome = ""
        self.closed_at: datetime | None = None
        self.completed_at: datetime | None = None
        self.retention_until: datetime | None = None
        self.last_action = ""
        self.rejected_actions = 0
        self.seq = 0
        self.events: list[AuditEvent] = []
        self.notices: list[Notice] = []
        self.notice_counts: dict[str, int] = {}  # notices queued per template, audience and recipient
        self.final_pending = False
        self.busy = 0  # lifecycle local activities in flight (run_local)
        # dispatch (003 §1.1): the agent holding a capacity slot, and who let the case return
        self.team: str | None = None
        self.hold: tuple[str, int] | None = None  # (agent id, assignment attempt) while a slot is held
        self.assign_attempts = 0
        self.returned_by: list[str] = []
        self.dispatch_wanted = False
        self.taken = False  # the assignee accepted (接单)
        self.declined = False
        # incident (SEEDS §11): events applied once each; a linked request closes after the review
        self.incident_id: str | None = intake.incident_id
        self.incident_linked = False
        self.incident_reviewed = False
        self.incident_seen: set[str] = set()
        self.incident_resolution: IncidentEvent | None = None

    # --- transitions -------------------------------------------------------------------------------------------
    def enter(self, stage: str, at: datetime, sub_state: str = "") -> None:
        self.stage = stage
        self.sub_state = sub_state
        self.timeline.setdefault(stage, at)
        metrics.stage_entered(stage, self.pack.id if self.pack else self.intake.policy,
                              self.cls.request_type if self.cls else None)

    def touch_clock(self, name: str) -> None:
        """Tell the clock's watcher to re-read it (pause, resume, stop, extension, retarget)."""
        self.clock_rev[name] = self.clock_rev.get(name, 0) + 1

    def touch_ladder(self) -> None:
        self.ladder_rev += 1

    # --- audit and notices ---------------------------------------------------------------------------------------
    def record(self, at: datetime, actor_id: str, actor_role: str, action: str, rejected: bool = False,
               **detail: Any) -> int:
        """Append an audit event (000 §3.2: time, operator, content); returns its sequence number."""
        seq = self.seq
        self.seq += 1
        self.events.append(AuditEvent(request_id=self.intake.request_id, seq=seq, at=at, actor_id=actor_id,
                                      actor_role=actor_role, action=action, stage=self.stage, detail=detail,
                                      rejected=rejected))
        if rejected:
            self.rejected_actions += 1
        else:
            self.last_action = action
        return seq

    def decode(self, model: type[M], payload: Any, signal: str, now: datetime) -> M | None:
        """A signal cannot answer: a payload that does not validate is recorded as rejected, and nothing else."""
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            self.record(now, "unknown", "unknown", signal, rejected=True,
                        reason=one_line(exc, where="payload", count_more=False))
            return None

    def notify(self, seq: int, template: TemplateName, audience: str, recipient: str, **context: Any) -> None:
        """Queue a notice. Its key (request, template, audience, recipient, n-th such notice) makes it send once
        across activity retries and replays, and also when a failed workflow task's retry numbers the audit events
        differently (a signal ordered first): the n-th progress notice stays the n-th."""
        language = self.intake.customer.language if audience == "customer" else "zh-CN"
        base = {"ticket": self.ticket, "request_type": self.cls.request_type if self.cls else None,
                "priority": self.cls.priority if self.cls else None, "event_seq": seq}
        kind = f"{template}:{audience}:{recipient}"
        self.notice_counts[kind] = self.notice_counts.get(kind, 0) + 1
        self.notices.append(Notice(key=f"{self.intake.request_id}:{kind}:{self.notice_counts[kind]}",
                                   request_id=self.intake.request_id, template=template,
                                   audience=audience,  # type: ignore[arg-type]
                                   recipient=recipient, language=language, context={**base, **context}))

    def take_batch(self, now: datetime) -> PersistBatch | None:
        if not (self.events or self.notices or self.final_pending):
            return None
        batch = PersistBatch(projection=self.projection(now), events=self.events, notices=self.notices,
                             final=self.final_pending)
        self.events, self.notices, self.final_pending = [], [], False
        return batch

    # --- views ---------------------------------------------------------------------------------------------------
    def next_deadline(self, now: datetime) -> datetime | None:
        pending = [c.deadline(now) for c in self.clocks.values() if c.running and c.breached_at is None]
        return min(pending) if pending else None

    def breached_clocks(self) -> list[str]:
        return [name for name, c in self.clocks.items() if c.breached_at is not None]

    def status(self, now: datetime) -> RequestStatus:
        pack, ladder = self.pack, self.ladder
        closure = self.clocks.get("closure")
        return RequestStatus(
            request_id=self.intake.request_id, ticket=self.ticket, workflow_id=self.workflow_id,
            policy_id=pack.id if pack else self.intake.policy, policy_version=pack.version if pack else 0,
            stage=self.stage, sub_state=self.sub_state, channel=self.intake.channel,  # type: ignore[arg-type]
            request_type=self.cls.request_type if self.cls else None,
            category=self.cls.category if self.cls else None,
            priority=self.cls.priority if self.cls else None,
            complaint_grade=self.cls.complaint_grade if self.cls else None,
            department=self.department, participants=list(self.participants),
            escalation_level=ladder.level if ladder else 0,
            escalation_role=ladder.current.role if ladder else "",
            escalations=list(ladder.steps) if ladder else [],
            awaiting_ack=bool(ladder and ladder.awaiting_ack_since),
            owner=self.owner, complaint_owner=self.complaint_owner,
            clocks={name: c.view(now) for name, c in self.clocks.items()},
            timeline=dict(self.timeline),
            expected_completion=closure.deadline(now) if closure else None,
            summary=self.summary, root_cause=self.root_cause,
            requires_check=bool(self.cls and self.cls.requires_check), checked=self.checked,
            extensions=self.extensions, reopen_count=self.reopen_count, confirmed=self.confirmed,
            satisfaction=self.satisfaction, nps=self.nps, resolved_by_customer=self.resolved_by_customer,
            first_contact_resolution=self.first_contact_resolution, outcome=self.outcome,  # type: ignore[arg-type]
            retention_until=self.retention_until, last_action=self.last_action,
            rejected_actions=self.rejected_actions, incident_id=self.incident_id,
            incident_reviewed=self.incident_reviewed, team=self.team, assignment_attempts=self.assign_attempts,
            returned_by=list(self.returned_by),
        )

    def projection(self, now: datetime) -> Projection:
        cls, pack = self.cls, self.pack
        return Projection(
            request_id=self.intake.request_id, ticket=self.ticket, workflow_id=self.workflow_id,
            policy_id=pack.id if pack else self.intake.policy, policy_version=pack.version if pack else 0,
            channel=self.intake.channel, stage=self.stage, sub_state=self.sub_state,
            request_type=cls.request_type if cls else None, category=cls.category if cls else None,
            priority=cls.priority if cls else None, complaint_grade=cls.complaint_grade if cls else None,
            escalation_level=self.ladder.level if self.ladder else 0, owner=self.owner,
            complaint_owner=self.complaint_owner, department=self.department,
            next_deadline=self.next_deadline(now), breached=bool(self.breached_clocks()),
            breached_clocks=self.breached_clocks(), accepted_at=self.accepted_at or now,
            first_response_at=self.first_response_at, resolved_at=self.resolved_at, closed_at=self.closed_at,
            completed_at=self.completed_at, updated_at=now, reopen_count=self.reopen_count,
            satisfaction=self.satisfaction, nps=self.nps, first_contact_resolution=self.first_contact_resolution,
            outcome=self.outcome, retention_until=self.retention_until,
        )

    def details_markdown(self, now: datetime) -> str:
        """Current details for the Web UI: stage, owner, each clock's deadline, last action."""
        lines = [f"**{self.ticket or self.intake.request_id}** · stage **{self.stage}**"
                 + (f" ({self.sub_state})" if self.sub_state else ""),
                 f"owner: {self.owner or '—'} · escalation level {self.ladder.level if self.ladder else 0}"]
        for name, c in self.clocks.items():
            state = "stopped" if c.stopped_at else ("paused" if c.paused else "running")
            flag = " **BREACHED**" if c.breached_at else ""
            lines.append(f"- {name}: due {c.deadline(now).isoformat(timespec='minutes')} ({state}){flag}")
        lines.append(f"last action: {self.last_action or '—'}")
        return "\n".join(lines)

    def expected_completion_text(self, now: datetime) -> str:
        closure = self.clocks.get("closure")
        moment = closure.deadline(now) if closure else now + timedelta(days=1)
        zone = closure.business.zone if closure else None
        return (moment.astimezone(zone) if zone else moment).isoformat(timespec="minutes")
