"""ServiceRequest: one customer-service request (工单) and every rule the manuals put on it. Pure; no temporalio.

The aggregate owns the request's state, its clocks (domain/clock_set.py), its escalation ladder and the audit
events and notices its transitions produce (domain/effects.py). ServiceRequestWorkflow drives it: it calls one
method per lifecycle step, `refusal` and `apply` for agent actions, and handles timers and I/O itself.

    1 受理 accept/registered → 2 分类 classify → 3 处理 begin_handling, apply(...) → 4 办结 report_result,
    result_answered, close → 5 回访 open_survey, survey_result → complete

Every method takes `now` from the caller (workflow.now() in a workflow), so replays compute the same state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from domain.classify import Classified, classify, reclassify
from domain.clock_set import ClockSet
from domain.effects import Effects, Outbox
from domain.escalation import Ladder
from domain.ledger import ClockEvent, SlaClock
from domain.permissions import Situation, check_action
from domain.snapshot import PLAIN, ClockState, Snapshot, classified, ladder, ladder_state, parse_plain, plain_dict
from models.actions import (
    ROLE_RANK,
    Accept,
    Acknowledge,
    Action,
    Actor,
    AskCustomer,
    Assign,
    Check,
    Confirm,
    CustomerReply,
    Decline,
    EscalateRequest,
    Extend,
    Note,
    Reclassify,
    Reevaluate,
    Resolve,
    Respond,
    SurveyAnswer,
    Transfer,
)
from models.assignment import AssignRequest, AssignResult
from models.errors import one_line
from models.incident import IncidentEvent
from models.intake import Channel, Customer, Intake, workflow_id_for
from models.policy import ClockSpec, ComplaintGrade, PolicyPack, duration_seconds
from models.records import Audience, PersistBatch, Projection, Registration, Rejection, TemplateName
from models.status import RequestStatus, Stage

SYSTEM = Actor(id="kefu", role="system")
ACCEPTING: tuple[Stage, ...] = ("received", "accepted", "classified")  # passed within the first workflow task
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class Refused(ValueError):
    """A step the request's rules do not allow; the message names the field and the rule."""


class Metrics(Protocol):
    """Where the aggregate reports what it measured (infra/metrics.py in a worker; nothing in unit tests)."""

    def stage_entered(self, stage: str, policy: str | None, request_type: str | None) -> None: ...
    def breach(self, clock: str, policy: str | None, request_type: str | None) -> None: ...
    def escalation(self, level: int, trigger: str, policy: str | None, request_type: str | None) -> None: ...
    def reopen(self, policy: str | None, request_type: str | None) -> None: ...
    def first_response(self, elapsed: timedelta, policy: str | None, request_type: str | None) -> None: ...
    def resolution(self, elapsed: timedelta, policy: str | None, request_type: str | None) -> None: ...


class NoMetrics:
    def stage_entered(self, stage: str, policy: str | None, request_type: str | None) -> None:
        pass

    def breach(self, clock: str, policy: str | None, request_type: str | None) -> None:
        pass

    def escalation(self, level: int, trigger: str, policy: str | None, request_type: str | None) -> None:
        pass

    def reopen(self, policy: str | None, request_type: str | None) -> None:
        pass

    def first_response(self, elapsed: timedelta, policy: str | None, request_type: str | None) -> None:
        pass

    def resolution(self, elapsed: timedelta, policy: str | None, request_type: str | None) -> None:
        pass


@dataclass
class Dispatch:
    """派单 bookkeeping (003 §1.1): the agent holding a capacity slot, and who let the case return."""

    team: str | None = None
    hold: tuple[str, int] | None = None  # (agent id, assignment attempt) while a slot is held
    attempts: int = 0
    returned_by: list[str] = field(default_factory=list)
    wanted: bool = False
    taken: bool = False  # the assignee accepted (接单)
    declined: bool = False


@dataclass
class IncidentLink:
    """突发事件 (SEEDS §11): events applied once each; a linked request closes after the incident review."""

    id: str | None = None
    linked: bool = False
    reviewed: bool = False
    seen: set[str] = field(default_factory=set)
    resolution: IncidentEvent | None = None  # a resolution that arrived before handling began


@dataclass(frozen=True)
class IntakeCheck:
    """An intake as it arrived: valid (problem None), or refused with a one-line reason naming the field and a
    stand-in intake that carries no customer data, so the run can archive a `rejected` row and fail."""

    intake: Intake
    problem: str | None
    policy: str
    channel: str


def check_intake(raw: Any, workflow_id: str) -> IntakeCheck:
    """Validate an undecoded intake. The run's workflow id must be its request's (kefu-sr-<request_id>): a second
    run naming another request's id must not take over that request's archive row and audit trail (issue 14)."""
    fields = raw if isinstance(raw, dict) else {}
    policy = fields.get("policy") if isinstance(fields.get("policy"), str) else None
    channel = fields.get("channel") if fields.get("channel") in get_args(Channel) else None
    try:
        intake = raw if isinstance(raw, Intake) else Intake.model_validate(raw)
    except ValidationError as exc:
        problem: str | None = f"intake: {one_line(exc, where='payload')}"
    else:
        if workflow_id == workflow_id_for(intake.request_id):
            return IntakeCheck(intake, None, intake.policy, intake.channel)
        problem = (f"intake: request_id {intake.request_id!r} does not belong to workflow id {workflow_id!r} "
                   f"(expected {workflow_id_for(intake.request_id)!r})")
    own_id = re.sub(r"[^A-Za-z0-9._:-]", "-", workflow_id.removeprefix(workflow_id_for("")))[:64] or "invalid"
    stand_in = Intake(request_id=own_id if own_id[0].isalnum() else f"x{own_id[:63]}", channel="web",
                      customer=Customer(id="-", name="-", email="rejected@invalid.invalid"), description="-")
    return IntakeCheck(stand_in, problem, (policy or "unknown")[:64], channel or "unknown")


def add_years(moment: datetime, years: int) -> datetime:
    """Retention end (002 §2.4.2): same calendar day `years` later; 29 Feb falls back to 28 Feb."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


class ServiceRequest:
    def __init__(self, intake: Intake, workflow_id: str, metrics: Metrics | None = None) -> None:
        self.intake = intake
        self.workflow_id = workflow_id
        self.metrics: Metrics = metrics or NoMetrics()
        self._pack: PolicyPack | None = None
        self._cls: Classified | None = None
        self._ladder: Ladder | None = None
        self.ladder_rev = 0  # the ladder's ack timer re-arms when this moves
        self.clocks = ClockSet()
        self.outbox = Outbox(intake.request_id)
        self.dispatch = Dispatch()
        self.incident = IncidentLink(id=intake.incident_id)
        self.ticket = ""
        self.stage: Stage = "received"
        self.sub_state = ""
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
        self.paused_for_confirmation: list[str] = []  # clocks report_result paused until the customer answers

    # --- required state: set by accept and classify, never None afterwards ----------------------------------
    @property
    def pack(self) -> PolicyPack:
        return self._required(self._pack, "the policy is not loaded yet")

    @property
    def cls(self) -> Classified:
        return self._required(self._cls, "not classified yet")

    @property
    def ladder(self) -> Ladder:
        return self._required(self._ladder, "not classified yet")

    def _required(self, value: T | None, missing: str) -> T:
        if value is None:
            raise Refused(f"request {self.intake.request_id}: {missing}")
        return value

    @property
    def labels(self) -> tuple[str, str | None]:
        """Metric labels: policy and request type (never customer data)."""
        return (self._pack.id if self._pack else self.intake.policy, self._cls.request_type if self._cls else None)

    # --- 1 受理 acceptance ---------------------------------------------------------------------------------------
    def accept(self, pack: PolicyPack, now: datetime, started: datetime) -> Registration:
        """Register the work order (000 §2.1, 002 §2.1.2) under the policy version pinned now."""
        if self.intake.channel not in pack.channels:
            raise Refused(f"channel: {self.intake.channel} is not a channel of policy {pack.id}")
        self._pack = pack
        self.accepted_at = now
        # first contact (001 §5.1); a backend clock running ahead must not start a clock in the future
        received = self.received_at = min(self.intake.received_at or started, now)
        self.enter("received", received)
        return Registration(
            request_id=self.intake.request_id, workflow_id=self.workflow_id, policy_id=pack.id,
            policy_version=pack.version, channel=self.intake.channel, customer=self.intake.customer,
            description=self.intake.description, amount=self.intake.amount, received_at=received, accepted_at=now)

    def rejection(self, check: IntakeCheck, reason: str, now: datetime) -> Rejection:
        return Rejection(request_id=self.intake.request_id, workflow_id=self.workflow_id, policy_id=check.policy,
                         channel=check.channel, reason=reason, at=now)

    def registered(self, ticket: str, now: datetime) -> None:
        self.ticket = ticket
        self.enter("accepted", now)
        self.record(now, self.owner or SYSTEM.id, "agent" if self.owner else "system", "accepted", ticket=ticket,
                    channel=self.intake.channel, policy=self.pack.key,
                    received_at=(self.received_at or now).isoformat(), incident_id=self.intake.incident_id)

    # --- 2 分类 classification -----------------------------------------------------------------------------------
    def classify(self, now: datetime) -> None:
        """Type, category, service class and complaint grade from the pack's rules; the clocks follow."""
        pack = self.pack
        cls = self._cls = classify(pack, self.intake)
        self.enter("classified", now)
        for name, spec in self._specs().items():
            if name != "revisit":  # the revisit clock starts at closure
                # 001 §5.1: response time runs from the customer's first contact
                start = (self.received_at or now) if name == "first_response" else now
                self.clocks.start(name, spec, pack.calendar, start)
        self._ladder = Ladder(list(pack.escalation))
        self.ladder_rev += 1
        if cls.request_type == "complaint":
            self.complaint_owner = self.owner  # 首诉负责: the accepting agent owns the complaint (000 §2.5)
        self.department = cls.department or self.department
        seq = self.record(now, SYSTEM.id, "system", "classified", request_type=cls.request_type,
                          category=cls.category, priority=cls.priority, complaint_grade=cls.complaint_grade,
                          rules=list(cls.rules))
        if cls.joint_handling:  # 000 §2.2: funds at risk → the business department at once, handled jointly
            self.participants.append(cls.joint_handling)
            self.record(now, SYSTEM.id, "system", "joint_handling", department=cls.joint_handling)
        if cls.complaint_grade:  # 002 §4.4: a major complaint starts higher up the ladder
            grade = self._grade(cls.complaint_grade)
            self._escalate(grade.start_level, "grade", f"{grade.label} complaint", SYSTEM, now)
        # the acknowledgement carries the ticket number and the expected completion time (002 §2.1.2)
        self.notify(seq, "acknowledgement", "customer", "customer",
                    expected_completion=self.expected_completion_text(now))

    # --- 3 处理 handling ----------------------------------------------------------------------------------------
    def begin_handling(self, now: datetime) -> None:
        """Into handling (003 §2.2 待处理 → 处理中); dispatch is wanted when nobody owns it, or again on a reopened
        round of a case that was dispatched before."""
        self.enter("handling", now, "in_progress" if self.first_response_at else "pending")
        if self.intake.first_contact_answer and not self.first_response_at:
            self._answer_at_first_contact(now)
        if self.incident.resolution and self.stage == "handling":  # resolved before handling began
            self._resolve_by_incident(self.incident.resolution, now)
        self.dispatch.wanted = bool(self.pack.assignment and self.stage == "handling"
                                    and (self.owner is None or self.dispatch.team))

    def _answer_at_first_contact(self, now: datetime) -> None:
        """An inquiry answered at first contact (e.g. by the chatbot) counts toward first-contact resolution."""
        agent = Actor(id=self.owner or f"{self.intake.channel}-bot", role="agent" if self.owner else "system")
        answer = self.intake.first_contact_answer or ""
        self._respond(agent, now, answer)
        self._resolve(agent, now, answer, None, None)
        self.first_contact_resolution = True

    # --- 4 办结 closure -----------------------------------------------------------------------------------------
    def report_result(self, now: datetime, window: int, pause: bool = False) -> None:
        """Report the result; the customer confirms within the window (002 §2.2.1). `pause`: the wait is the
        customer's time, so the pausable clocks (closure) stop counting until the answer (the pack's
        `closure.pause_while_confirming`)."""
        if pause and self.pack.closure.pause_while_confirming:
            self.paused_for_confirmation = self.clocks.pause_pausable(now)
        confirm_by = (now + timedelta(seconds=window)).isoformat()
        seq = self.record(now, SYSTEM.id, "system", "result_reported", confirm_by=confirm_by)
        self.notify(seq, "resolution", "customer", "customer", summary=self.summary, confirm_by=confirm_by)

    def result_answered(self, answer: Confirm | None, now: datetime) -> bool:
        """False when the customer rejected the result: handling again, on the same clocks."""
        if answer is not None and not answer.accepted:
            self.record(now, "customer", "customer", "result_rejected", comment=answer.comment)
            for name in self.paused_for_confirmation:  # the closure clock counts again with the work
                self.clocks.resume(name, now)
            self.paused_for_confirmation = []
            self._reopen_handling(now)
            return False
        self.confirmed = answer is not None
        return True

    def awaits_incident_review(self, now: datetime) -> bool:
        """SEEDS §11: a request linked to an incident closes only after the incident review."""
        if not self.incident.linked or self.incident.reviewed:
            return False
        self.sub_state = "awaiting_incident_review"
        self.record(now, SYSTEM.id, "system", "closure_awaits_incident_review", incident_id=self.incident.id)
        return True

    def close(self, now: datetime, by_customer: bool) -> None:
        self.closed_at = now
        self.clocks.stop_all(now)
        retention = self.retention_until = add_years(now, self.pack.classes[self.cls.priority].retention_years)
        self.enter("closed", now)
        self.outbox.final_pending = True  # the archive keeps the final record with its retention date (002 §2.4.2)
        self.record(now, "customer" if by_customer else SYSTEM.id, "customer" if by_customer else "system", "closed",
                    confirmed_by="customer" if by_customer else "confirmation_window",
                    retention_until=retention.isoformat())

    # --- 5 回访 revisit -----------------------------------------------------------------------------------------
    def open_survey(self, now: datetime) -> None:
        """The survey goes out after the policy's delay (003 §3.4, §4.1)."""
        revisit = self.pack.revisit
        self.enter("revisit", now)
        if spec := self._specs().get("revisit"):
            self.clocks.start("revisit", spec, self.pack.calendar, now)
        until = (now + timedelta(seconds=duration_seconds(revisit.window))).isoformat()
        seq = self.record(now, SYSTEM.id, "system", "survey_sent", survey_until=until)
        self.notify(seq, "revisit", "customer", "customer", survey_until=until, scale_max=revisit.scale_max)

    def survey_result(self, answer: SurveyAnswer | None, now: datetime) -> bool:
        """True when a low score reopens the case (二次服务, 003 §4.1): a new round of handling."""
        revisit = self.pack.revisit
        self.clocks.stop_if_running("revisit", now)
        if answer is None:
            self.outcome = "unreachable"
            self.record(now, SYSTEM.id, "system", "survey_unanswered")
            return False
        self.satisfaction, self.nps, self.resolved_by_customer = answer.score, answer.nps, answer.resolved
        if answer.score >= revisit.reopen_below and answer.resolved:
            self.outcome = "satisfied"
            return False
        if self.reopen_count >= revisit.reopen_cap:
            self.outcome = "reopen_cap_reached"
            self.record(now, SYSTEM.id, "system", "reopen_refused", reason="reopen cap reached", cap=revisit.reopen_cap)
            return False
        self.reopen_count += 1
        self.metrics.reopen(*self.labels)
        self.record(now, SYSTEM.id, "system", "reopened", score=answer.score, resolved=answer.resolved,
                    reopen_count=self.reopen_count)
        self._escalate(self.ladder.level + 1, "revisit", f"dissatisfied revisit (score {answer.score})", SYSTEM, now)
        self._reopen_handling(now, new_round=True)
        return True

    def complete(self, now: datetime) -> None:
        self.completed_at = now
        self.outcome = self.outcome or "completed"
        self.enter("completed", now)
        self.record(now, SYSTEM.id, "system", "completed", outcome=self.outcome, satisfaction=self.satisfaction)

    def _reopen_handling(self, now: datetime, new_round: bool = False) -> None:
        """Back into handling. A new round (二次服务) restarts the handling and closure clocks; a rejected result
        keeps counting on the original ones."""
        self.stage, self.sub_state = "handling", "in_progress"
        self.summary = self.root_cause = self.resolved_by = None
        self.resolved_at = None
        self.checked = False
        self.confirmed = None
        for name in ("handling", "closure"):
            if new_round:
                self.clocks.start(name, self._specs()[name], self.pack.calendar, now)
            else:
                self.clocks.reopen(name, now)

    # --- agents: one entry point, one place for the rules ------------------------------------------------------
    def refusal(self, actor: Actor, action: Action, assume_handling: bool = False) -> str | None:
        """Why `actor` may not take `action` now, or None. Role and stage (domain/permissions.py), then the content
        rules. `assume_handling`: the request is still being accepted, so only the role is checked now (the rest
        once handling begins)."""
        situation = self.situation()
        if assume_handling:
            return check_action(action.kind, actor.id, actor.role, replace(situation, stage="handling"))
        return check_action(action.kind, actor.id, actor.role, situation) or self._content_problem(actor, action)

    def _content_problem(self, actor: Actor, action: Action) -> str | None:
        match action:
            case Resolve(root_cause=root_cause, decision=decision):
                if self.cls.request_type == "complaint" and not root_cause:
                    return "resolve: root_cause is required for a complaint (002 §4.4)"
                if self.cls.request_type == "suggestion" and not decision:
                    return "resolve: decision is required for a suggestion: management decides (001 Ch8)"
                if decision and ROLE_RANK[actor.role] < ROLE_RANK["manager"]:
                    return f"resolve: decision: management decides (001 Ch8); role {actor.role} may not record one"
            case Extend(by=by, customer_notice=notice):
                rules = self.pack.extensions
                if rules.requires_customer_notice and not (notice or "").strip():
                    return "extend: customer_notice is required: tell the customer first (000 §2.2)"
                if self.extensions >= rules.max_count:
                    return (f"extend: the policy allows {rules.max_count} extension(s) and {self.extensions} "
                            "were granted")
                try:
                    seconds = duration_seconds(by)
                except ValueError as exc:
                    return f"extend: by: {exc}"
                if seconds > duration_seconds(rules.max_each):
                    return f"extend: by: at most {rules.max_each} per extension"
            case Reclassify():
                try:
                    self._reclassified(action)
                except ValueError as exc:
                    return f"reclassify: {exc}"
            case Acknowledge() if not self.ladder.awaiting_ack_since:
                return "acknowledge: no escalation awaits acknowledgement"
        return None

    def apply(self, actor: Actor, action: Action, now: datetime, latest: PolicyPack | None = None) -> Effects:
        """Take an action `refusal` allowed; returns the audit events and notices it produced. `latest` is the
        policy's current version, needed by `reevaluate` only."""
        mark = self.outbox.mark()
        match action:
            case Respond():
                self._respond(actor, now, action.message)
            case Note():
                seq = self.record(now, actor.id, actor.role, "note", text=action.text,
                                  customer_visible=action.customer_visible, eta=action.eta)
                if action.customer_visible:  # 003 §2.3: problem, progress, estimated resolution time, next steps
                    self.notify(seq, "progress", "customer", "customer", text=action.text, eta=action.eta)
            case AskCustomer():  # waiting on the customer pauses the pausable clocks (SEEDS §5)
                self.clocks.pause_pausable(now)
                self.sub_state = "waiting_on_customer"
                seq = self.record(now, actor.id, actor.role, "ask_customer", question=action.question)
                self.notify(seq, "progress", "customer", "customer", text=action.question, eta=None)
            case CustomerReply():
                self.clocks.resume_paused(now)
                self.sub_state = "in_progress"
                self.record(now, actor.id, actor.role, "customer_reply", text=action.text)
            case Assign():
                self._assign(actor, now, action.owner)
            case Accept():  # 接单: the assignee takes the offered case
                self._taken(now)
                self.sub_state = "in_progress" if self.first_response_at else "pending"
                self.record(now, actor.id, actor.role, "accept", comment=action.comment, team=self.dispatch.team)
            case Decline():
                self.dispatch.declined = True
                self.record(now, actor.id, actor.role, "decline", reason=action.reason)
            case Transfer():
                self._transfer(actor, now, action)
            case Reclassify():
                self._reclassify(actor, now, action)
            case Extend():
                self._extend(actor, now, action)
            case Acknowledge():
                self.ladder.acknowledge()
                self.ladder_rev += 1
                self.record(now, actor.id, actor.role, "acknowledge", level=self.ladder.level, comment=action.comment)
            case Resolve():
                self._resolve(actor, now, action.summary, action.root_cause, action.decision)
            case Check():  # 001 §4.2 验收: a checker accepts the resolution, or sends it back to handling
                self.record(now, actor.id, actor.role, "check", passed=action.passed, remarks=action.remarks)
                if action.passed:
                    self.checked, self.sub_state = True, ""
                else:
                    self._reopen_handling(now)
            case Reevaluate():
                if latest is None:
                    raise Refused("reevaluate: the policy's current version is needed")
                self._reevaluate(actor, now, action.reason, latest)
        return self.outbox.since(mark)

    def _respond(self, actor: Actor, now: datetime, message: str) -> None:
        """先受理、后处理 (000 §3.1): the first response stops the first-response clock."""
        self._responded(actor, now)
        seq = self.record(now, actor.id, actor.role, "respond", message=message)
        self.notify(seq, "progress", "customer", "customer", text=message, eta=self.expected_completion_text(now))

    def _responded(self, actor: Actor, now: datetime) -> None:
        self.clocks.stop("first_response", now)
        if self.received_at:
            self.metrics.first_response(now - self.received_at, *self.labels)  # 001 §5.1: from first contact
        self.first_response_at = now
        self.owner = self.owner or actor.id
        if self.owner == actor.id:  # the assignee (or whoever took it from the queue) has the case
            self._taken(now)
        if self.cls.request_type == "complaint" and self.complaint_owner is None:
            self.complaint_owner = self.owner  # 首诉负责 (000 §2.5, 001 §4.1)
        self.sub_state = "in_progress"

    def _taken(self, now: datetime) -> None:
        """The work order has its handler: the assignment clock stops and dispatch ends (003 §1.1)."""
        self.dispatch.taken, self.dispatch.wanted = True, False
        self.clocks.stop_if_running("assignment", now)

    def _assign(self, actor: Actor, now: datetime, owner: str) -> None:
        """A lead's assignment is binding: no offer, no return timer (a held dispatch slot is released)."""
        before, self.owner = self.owner, owner
        if self.cls.request_type == "complaint" and self.complaint_owner is None:
            self.complaint_owner = owner
        self._taken(now)
        if self.sub_state == "assigned":
            self.sub_state = "in_progress" if self.first_response_at else "pending"
        self.record(now, actor.id, actor.role, "assign", before=before, after=owner)

    def _transfer(self, actor: Actor, now: datetime, action: Transfer) -> None:
        """003 §3.3: transfer keeps the complaint owner and records both parties; the clocks keep running (the pack's
        `transfer.handling_clock` may restart the handling clock). Without a named receiver, a pack with dispatch
        offers it to the receiving department's team."""
        pack = self.pack
        before, before_owner = self.department, self.owner
        restart = not action.joint and pack.transfer.handling_clock == "restarts"
        if action.joint:
            self.participants.append(action.department)
        else:
            self.department = action.department
            self.sub_state = "transferred"
            if action.to_owner:
                self.owner = action.to_owner
                self._taken(now)
            elif pack.assignment:
                self.dispatch.wanted, self.dispatch.taken = True, False
        if restart:  # the pack gives the receiving department a fresh handling limit
            self.clocks.start("handling", self._specs()["handling"], pack.calendar, now)
        self.record(now, actor.id, actor.role, "transfer", before=before, after=action.department, joint=action.joint,
                    reason=action.reason, from_owner=before_owner,
                    to_owner=action.to_owner if not action.joint else None, owner=self.owner,
                    complaint_owner=self.complaint_owner, handling_clock="restarted" if restart else "keeps_running")

    def _reclassified(self, action: Reclassify) -> Classified:
        return reclassify(self.pack, self.cls, request_type=action.request_type, category=action.category,
                          priority=action.priority, complaint_grade=action.complaint_grade)

    def _reclassify(self, actor: Actor, now: datetime, action: Reclassify) -> None:
        """Targets recompute from the original start, keeping pauses (or restart, per clock in the policy)."""
        before = self.cls
        after = self._cls = self._reclassified(action)
        self.clocks.retarget(self._specs(), self.pack.calendar, now)
        self.record(now, actor.id, actor.role, "reclassify", reason=action.reason,
                    before={"request_type": before.request_type, "priority": before.priority,
                            "complaint_grade": before.complaint_grade},
                    after={"request_type": after.request_type, "priority": after.priority,
                           "complaint_grade": after.complaint_grade})
        if after.complaint_grade and after.complaint_grade != before.complaint_grade:
            grade = self._grade(after.complaint_grade)
            self._escalate(grade.start_level, "grade", f"reclassified as {grade.label}", actor, now)

    def _extend(self, actor: Actor, now: datetime, action: Extend) -> None:
        """000 §2.2: extended only after telling the customer; the notice is recorded with the extension."""
        handling = self.clocks.extend("handling", duration_seconds(action.by))
        self.extensions += 1
        new_deadline = handling.deadline(now).isoformat()
        seq = self.record(now, actor.id, actor.role, "extend", by=action.by, reason=action.reason,
                          customer_notice=action.customer_notice, new_deadline=new_deadline)
        self.notify(seq, "extension", "customer", "customer", new_deadline=new_deadline, reason=action.reason,
                    notice=action.customer_notice)

    def _resolve(self, actor: Actor, now: datetime, summary: str, root_cause: str | None,
                 decision: str | None) -> None:
        self.clocks.stop("handling", now)
        self.summary, self.root_cause = summary, root_cause
        self.resolved_at, self.resolved_by = now, actor.id
        if self.accepted_at:
            self.metrics.resolution(now - self.accepted_at, *self.labels)
        self.enter("resolved", now, "pending_check" if self.cls.requires_check else "")
        self.record(now, actor.id, actor.role, "resolve", summary=summary, root_cause=root_cause, decision=decision)

    def _reevaluate(self, actor: Actor, now: datetime, reason: str, new: PolicyPack) -> None:
        """Move the request to its policy's current version: the clocks keep their start and pauses and take the
        new targets; the ladder takes the new roles."""
        old, priority = self.pack, self.cls.priority
        if new.version == old.version or priority not in new.classes:
            self.record(now, actor.id, actor.role, "reevaluate", rejected=True, reason=reason,
                        why=f"version {new.version} is current" if new.version == old.version
                        else f"class {priority} is gone from version {new.version}")
            return
        self._pack = new
        self.clocks.retarget(self._specs(), new.calendar, now)
        self.ladder.levels = list(new.escalation)
        self.ladder.level = min(self.ladder.level, self.ladder.top)
        self.ladder_rev += 1
        self.record(now, actor.id, actor.role, "reevaluate", reason=reason, before=old.key, after=new.key)

    # --- customers -------------------------------------------------------------------------------------------
    def customer_answered(self, answer: Confirm | SurveyAnswer, now: datetime) -> None:
        """The customer's confirmation (002 §2.2.1) or survey answer (003 §4.2), as given."""
        if isinstance(answer, Confirm):
            self.record(now, "customer", "customer", "confirm", accepted=answer.accepted, comment=answer.comment)
        else:
            self.record(now, "customer", "customer", "survey", score=answer.score, nps=answer.nps,
                        resolved=answer.resolved, comment=answer.comment)

    def survey_refusal(self, answer: SurveyAnswer) -> str | None:
        scale = self.pack.revisit.scale_max
        return f"survey: score {answer.score} is above the scale of {scale}" if answer.score > scale else None

    # --- supervisors: escalation, and the clocks' and ladder's timers -------------------------------------------
    def escalation_refusal(self, request: EscalateRequest) -> str | None:
        """Why this escalation is refused (role, stage, a level not above the current one), or None."""
        actor, ladder = request.actor, self._ladder
        reason = check_action("escalate", actor.id, actor.role, self.situation())
        target = self._escalation_target(request)
        if reason is None and ladder and not ladder.level < target <= ladder.top:
            reason = f"escalate: level {target} is not above level {ladder.level} within 0..{ladder.top}"
        return reason

    def escalate(self, request: EscalateRequest, now: datetime) -> bool:
        """A supervisor raises the request one level or to a named level. A refused one (from signal `escalate`,
        which cannot answer) is recorded as rejected and changes nothing else; False then."""
        if reason := self.escalation_refusal(request):
            self.record(now, request.actor.id, request.actor.role, "escalate", rejected=True, reason=reason)
            return False
        self._escalate(self._escalation_target(request), "signal", request.reason, request.actor, now)
        return True

    def _escalation_target(self, request: EscalateRequest) -> int:
        ladder = self._ladder
        return request.to_level if request.to_level is not None else (ladder.level + 1 if ladder else 1)

    def clock_event(self, clock: SlaClock, event: ClockEvent, now: datetime) -> None:
        """A clock's timer fired: 催办 warning to the owner, or the breach, attributed (000 §5.5), up the ladder."""
        deadline = clock.deadline(now).isoformat()
        self.clocks.mark(clock, event, now)
        if event.kind == "warning":
            seq = self.record(now, SYSTEM.id, "system", "sla_warning", clock=clock.name, fraction=event.fraction,
                              deadline=deadline)
            self.notify(seq, "warning", "owner", self.owner or "queue", clock=clock.name, fraction=event.fraction,
                        deadline=deadline)
            return
        self.metrics.breach(clock.name, *self.labels)
        attributed = self.owner or "unassigned"
        self.record(now, SYSTEM.id, "system", "sla_breach", clock=clock.name, deadline=deadline,
                    attributed_to=attributed)
        self._escalate(self.ladder.level + 1, "breach", f"{clock.name} deadline {deadline} missed", SYSTEM, now,
                       attributed_to=attributed)

    def ack_deadline(self) -> datetime | None:
        return self._ladder.ack_deadline() if self._ladder else None

    def ack_timed_out(self, now: datetime) -> None:
        """The escalated owner did not acknowledge within the policy's ack time: the ladder climbs."""
        rung = self.ladder.current
        self._escalate(rung.level + 1, "ack_timeout", f"{rung.title} did not acknowledge within {rung.ack_within}",
                       SYSTEM, now)

    def _escalate(self, level: int, trigger: str, reason: str, actor: Actor, now: datetime,
                  attributed_to: str | None = None) -> None:
        ladder = self.ladder
        step = ladder.raise_to(level, now, trigger=trigger, reason=reason, actor=actor.id, attributed_to=attributed_to)
        if step is None:
            if level > ladder.level:  # wanted higher, but the ladder is at its top
                self.record(now, actor.id, actor.role, "escalation_at_top", trigger=trigger, reason=reason,
                            level=ladder.level)
            return
        self.ladder_rev += 1
        self.metrics.escalation(step.level, trigger, *self.labels)
        seq = self.record(now, actor.id, actor.role, "escalate", level=step.level, role=step.role, trigger=trigger,
                          reason=reason, attributed_to=attributed_to)
        self.notify(seq, "escalation", "escalation", step.role, level=step.level, title=step.title, reason=reason,
                    trigger=trigger, attributed_to=attributed_to)

    # --- dispatch 派单 (003 §1.1; the loop and its activities are in workflows/dispatch.py) ---------------------
    def assign_request(self, attempt: int, team: str | None, prefer: str | None, now: datetime) -> AssignRequest:
        rule, cls = self.pack.assignment, self.cls
        if rule is None:
            raise Refused(f"policy {self.pack.key} has no assignment section")
        return AssignRequest(
            request_id=self.intake.request_id, attempt=attempt, strategy=rule.strategy, team=team,
            department=self.department, request_type=cls.request_type, category=cls.category,
            language=self.intake.customer.language, channel=self.intake.channel, region=self.intake.region,
            prefer=prefer, exclude=list(self.dispatch.returned_by), at=now)

    def dispatch_answered(self, result: AssignResult, now: datetime) -> None:
        """The assignment limit runs from the start of handling; a center without a directory has none (the
        first-response clock covers pick-up from the queue)."""
        rule = self.pack.assignment
        if rule and "assignment" not in self.clocks and result.reason != "no_agents":
            spec = ClockSpec(target=rule.within, pausable=False, source=rule.source or "003 §1.1")
            self.clocks.start("assignment", spec, self.pack.calendar, self.timeline.get("handling", now))

    def dispatch_waiting(self, result: AssignResult, team: str, now: datetime) -> None:
        self.record(now, SYSTEM.id, "system", "dispatch_waiting", reason=result.reason, team=team,
                    candidates=result.candidates)

    def offer(self, result: AssignResult, attempt: int, before: str | None, accept_by: datetime,
              now: datetime) -> str:
        """Offer the case to the chosen agent, who holds a capacity slot until it is accepted or returns."""
        rule, d = self.pack.assignment, self.dispatch
        agent = result.agent_id or ""
        d.hold, d.team, self.owner, d.taken, d.declined = (agent, attempt), result.team or d.team, agent, False, False
        self.sub_state = "assigned"
        seq = self.record(now, SYSTEM.id, "system", "assign", before=before, after=agent, team=d.team,
                          strategy=rule.strategy if rule else None, attempt=attempt, load=result.load,
                          capacity=result.capacity, accept_by=accept_by.isoformat())
        self.notify(seq, "assignment", "owner", agent, accept_by=accept_by.isoformat(), team=d.team)
        return agent

    def offer_settled(self, agent: str) -> bool:
        return self.dispatch.taken or self.owner != agent or self.stage != "handling"

    def return_reason(self) -> str:
        rule = self.pack.assignment
        return "declined" if self.dispatch.declined else f"not accepted within {rule.accept_within if rule else '?'}"

    def returned(self, agent: str, why: str, now: datetime) -> None:
        """退回: the assignee declined or did not accept in time; the next candidate gets it."""
        self.dispatch.returned_by.append(agent)
        self.owner, self.sub_state = None, "pending"
        self.record(now, SYSTEM.id, "system", "assignment_returned", agent=agent, reason=why, attributed_to=agent)

    # --- incidents 突发事件 (SEEDS §11) ---------------------------------------------------------------------------
    def incident_event(self, event: IncidentEvent, now: datetime) -> bool:
        """An incident's event, applied once per (incident_id, seq) however often it is delivered. False when it
        changed nothing but perhaps a rejected audit line."""
        inc, key = self.incident, f"{event.incident_id}:{event.seq}"
        if key in inc.seen:
            return False
        if inc.id and inc.id != event.incident_id:
            self.record(now, event.lead, "supervisor", f"incident_{event.kind}", rejected=True,
                        reason=f"incident: already linked to incident {inc.id}", incident_id=event.incident_id)
            return False
        inc.seen.add(key)
        inc.id, inc.linked = event.incident_id, True
        detail = {"incident_id": event.incident_id, "seq": event.seq, "level": event.level, "title": event.title}
        if event.kind == "linked":
            self.record(now, event.lead, "supervisor", "incident_linked", lead=event.lead, **detail)
        elif event.kind == "progress":
            self.record(now, event.lead, "supervisor", "incident_update", text=event.text, **detail)
        elif event.kind == "resolved":
            self.record(now, event.lead, "supervisor", "incident_resolved", summary=event.text,
                        root_cause=event.root_cause, **detail)
            if self.stage == "handling":
                self._resolve_by_incident(event, now)
            elif self.stage in ACCEPTING:
                inc.resolution = event  # applied when handling begins
        else:
            inc.reviewed = True
            self.record(now, event.lead, "supervisor", "incident_reviewed", findings=event.text, **detail)
        return True

    def _resolve_by_incident(self, event: IncidentEvent, now: datetime) -> None:
        """Resolving the incident resolves each linked request in handling with the incident's summary."""
        self.incident.resolution = None
        lead = Actor(id=event.lead, role="supervisor")
        if not self.first_response_at:  # the incident's notices answered the customer
            self._responded(lead, now)
        self._resolve(lead, now, event.text, event.root_cause, None)

    def incident_link_failed(self, incident_id: str, reason: str, now: datetime) -> None:
        self.incident.id = None
        self.record(now, SYSTEM.id, "system", "incident_link_failed", incident_id=incident_id, reason=reason)

    def incident_detected(self, incident_id: str, now: datetime) -> None:
        """000 §7.1: a surge of complaints of one category raised (or joined) an incident."""
        self.incident.id = incident_id
        self.record(now, SYSTEM.id, "system", "incident_detected", incident_id=incident_id,
                    category=self.cls.category)

    # --- audit and notices ---------------------------------------------------------------------------------------
    def enter(self, stage: Stage, at: datetime, sub_state: str = "") -> None:
        self.stage = stage
        self.sub_state = sub_state
        self.timeline.setdefault(stage, at)
        self.metrics.stage_entered(stage, *self.labels)

    def record(self, at: datetime, actor_id: str, actor_role: str, action: str, rejected: bool = False,
               **detail: Any) -> int:
        """Append an audit event (000 §3.2: time, operator, content); returns its sequence number."""
        if rejected:
            self.rejected_actions += 1
        else:
            self.last_action = action
        return self.outbox.record(at, actor_id, actor_role, action, self.stage, rejected, detail)

    def notify(self, seq: int, template: TemplateName, audience: Audience, recipient: str, **context: Any) -> None:
        language = self.intake.customer.language if audience == "customer" else "zh-CN"
        base = {"ticket": self.ticket, "request_type": self._cls.request_type if self._cls else None,
                "priority": self._cls.priority if self._cls else None, "event_seq": seq}
        self.outbox.notify(template, audience, recipient, language, {**base, **context})

    def parse_signal(self, model: type[M], payload: Any, signal: str, now: datetime) -> M | None:
        """A signal cannot answer: a payload that does not validate is recorded as rejected, and nothing else."""
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            self.refuse_signal(signal, one_line(exc, where="payload", count_more=False), now)
            return None

    def refuse_signal(self, signal: str, reason: str, now: datetime) -> None:
        """A signal refused before it could be read (bad payload, or no verified principal): who sent it is unknown."""
        self.record(now, "unknown", "unknown", signal, rejected=True, reason=reason)

    def take_batch(self, now: datetime) -> PersistBatch | None:
        taken = self.outbox.take()
        if taken is None:
            return None
        events, notices, final = taken
        return PersistBatch(projection=self.projection(now), events=events, notices=notices, final=final)

    # --- continue-as-new: the state as data ----------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """Everything but the outbox, which must be flushed first (its lines belong to this run's history)."""
        if self.outbox.pending:
            raise Refused(f"request {self.intake.request_id}: flush the archive before continuing as new")
        d, inc = self.dispatch, self.incident
        return Snapshot(pack=self.pack, cls=plain_dict(self.cls), ladder=ladder_state(self.ladder),
                        clocks=[ClockState.of(clock) for clock in self.clocks], seq=self.outbox.seq,
                        notice_counts=dict(self.outbox.notice_counts), dispatch=plain_dict(d),
                        incident={"id": inc.id, "linked": inc.linked, "reviewed": inc.reviewed,
                                  "seen": sorted(inc.seen)},
                        incident_resolution=inc.resolution, fields={name: getattr(self, name) for name in PLAIN})

    @classmethod
    def restore(cls, intake: Intake, workflow_id: str, snap: Snapshot,
                metrics: Metrics | None = None) -> ServiceRequest:
        """The aggregate a continued run resumes with: the same state, audit numbering and notice counts."""
        r = cls(intake, workflow_id, metrics)
        r._pack, r._cls, r._ladder = snap.pack, classified(snap.cls), ladder(snap.ladder)
        for state in snap.clocks:
            r.clocks.adopt(state.clock(snap.pack))
        r.outbox.seq, r.outbox.notice_counts = snap.seq, dict(snap.notice_counts)
        hold = snap.dispatch.get("hold")
        r.dispatch = Dispatch(**{**snap.dispatch, "hold": (hold[0], int(hold[1])) if hold else None})
        r.incident = IncidentLink(id=snap.incident["id"], linked=snap.incident["linked"],
                                  reviewed=snap.incident["reviewed"], seen=set(snap.incident["seen"]),
                                  resolution=snap.incident_resolution)
        for name, value in parse_plain(snap.fields).items():
            setattr(r, name, value)
        return r

    # --- views ---------------------------------------------------------------------------------------------------
    def situation(self) -> Situation:
        return Situation(stage=self.stage, sub_state=self.sub_state, owner=self.owner,
                         responded=self.first_response_at is not None, resolved_by=self.resolved_by,
                         escalation_role=self._ladder.current.role if self._ladder else "")

    def _fields(self, now: datetime) -> dict[str, Any]:
        """Every field `status` and the archive projection show, described once."""
        cls, ladder, closure = self._cls, self._ladder, self.clocks.get("closure")
        return {
            "request_id": self.intake.request_id, "ticket": self.ticket, "workflow_id": self.workflow_id,
            "policy_id": self._pack.id if self._pack else self.intake.policy,
            "policy_version": self._pack.version if self._pack else 0,
            "channel": self.intake.channel, "stage": self.stage, "sub_state": self.sub_state,
            "request_type": cls.request_type if cls else None, "category": cls.category if cls else None,
            "priority": cls.priority if cls else None, "complaint_grade": cls.complaint_grade if cls else None,
            "department": self.department, "participants": list(self.participants),
            "escalation_level": ladder.level if ladder else 0,
            "escalation_role": ladder.current.role if ladder else "",
            "escalations": list(ladder.steps) if ladder else [],
            "awaiting_ack": bool(ladder and ladder.awaiting_ack_since),
            "owner": self.owner, "complaint_owner": self.complaint_owner,
            "clocks": self.clocks.views(now), "timeline": dict(self.timeline),
            "expected_completion": closure.deadline(now) if closure else None,
            # the Web UI's KefuNextDeadline keeps today's meaning (search_values); the archive's counts overdue too
            "next_deadline": self.clocks.next_deadline(now, include_breached=True),
            "breached": bool(self.clocks.breached()),
            "breached_clocks": self.clocks.breached(),
            "accepted_at": self.accepted_at or now, "first_response_at": self.first_response_at,
            "resolved_at": self.resolved_at, "closed_at": self.closed_at, "completed_at": self.completed_at,
            "updated_at": now, "summary": self.summary, "root_cause": self.root_cause,
            "requires_check": bool(cls and cls.requires_check), "checked": self.checked,
            "extensions": self.extensions, "reopen_count": self.reopen_count, "confirmed": self.confirmed,
            "satisfaction": self.satisfaction, "nps": self.nps, "resolved_by_customer": self.resolved_by_customer,
            "first_contact_resolution": self.first_contact_resolution, "outcome": self.outcome,
            "retention_until": self.retention_until, "last_action": self.last_action,
            "rejected_actions": self.rejected_actions, "incident_id": self.incident.id,
            "incident_reviewed": self.incident.reviewed, "team": self.dispatch.team,
            "assignment_attempts": self.dispatch.attempts, "returned_by": list(self.dispatch.returned_by),
        }

    def status(self, now: datetime) -> RequestStatus:
        fields = self._fields(now)
        return RequestStatus.model_validate({name: fields[name] for name in RequestStatus.model_fields})

    def projection(self, now: datetime) -> Projection:
        fields = self._fields(now)
        return Projection.model_validate({name: fields[name] for name in Projection.model_fields})

    def search_values(self, now: datetime) -> dict[str, Any]:
        """What the Web UI filters on (never PII): stage, type, priority, grade, level, owner, policy, breached,
        next deadline; keyed like infra/search.py's attributes."""
        cls = self._cls
        return {
            "KefuStage": self.stage, "KefuRequestType": cls.request_type if cls else None,
            "KefuPriority": cls.priority if cls else None, "KefuComplaintGrade": cls.complaint_grade if cls else None,
            "KefuEscalationLevel": self._ladder.level if self._ladder else 0, "KefuOwner": self.owner,
            "KefuPolicy": self._pack.id if self._pack else None, "KefuBreached": bool(self.clocks.breached()),
            "KefuNextDeadline": self.clocks.next_deadline(now),
        }

    def details_markdown(self, now: datetime) -> str:
        """Current details for the Web UI: stage, owner, each clock's deadline, last action."""
        lines = [f"**{self.ticket or self.intake.request_id}** · stage **{self.stage}**"
                 + (f" ({self.sub_state})" if self.sub_state else ""),
                 f"owner: {self.owner or '—'} · escalation level {self._ladder.level if self._ladder else 0}"]
        for c in self.clocks:
            state = "stopped" if c.stopped_at else ("paused" if c.paused else "running")
            flag = " **BREACHED**" if c.breached_at else ""
            lines.append(f"- {c.name}: due {c.deadline(now).isoformat(timespec='minutes')} ({state}){flag}")
        lines.append(f"last action: {self.last_action or '—'}")
        return "\n".join(lines)

    def expected_completion_text(self, now: datetime) -> str:
        closure = self.clocks.get("closure")
        moment = closure.deadline(now) if closure else now + timedelta(days=1)
        zone = closure.business.zone if closure else None
        return (moment.astimezone(zone) if zone else moment).isoformat(timespec="minutes")

    def _specs(self) -> dict[str, ClockSpec]:
        return self.pack.clocks_for(self.cls.priority, self.intake.channel)

    def _grade(self, name: str) -> ComplaintGrade:
        return next(grade for key, grade in self.pack.complaint_grades.items() if key == name)

