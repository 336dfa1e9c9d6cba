"""ServiceRequestWorkflow: one customer service request (工单), walking the manuals' lifecycle in order.

    1 受理 acceptance → 2 分类 classification → 3 处理 handling → 4 办结 closure → 5 回访 revisit
    (a dissatisfied revisit or a rejected result goes back to handling; 002 §3.4: no stage is ever skipped)

Handling starts with dispatch when the pack has an assignment section (003 §1.1: assigned automatically within
its limit; an assignee who does not accept in time loses the case to the next candidate). A request linked to an
incident (SEEDS §11) is resolved by the incident's resolution and closes after the incident review.

Every SLA clock has one durable timer (its next warning or its breach), re-armed only when that clock changes.
All I/O happens in activities; this file holds deterministic code only.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():

    from domain.classify import classify, reclassify
    from domain.escalation import Ladder
    from domain.ledger import ClockEvent, SlaClock
    from domain.permissions import Situation, check_action
    from infra import metrics
    from models import search
    from models.actions import Act, Actor, Confirm, EscalateRequest, SurveyAnswer
    from models.intake import Intake
    from models.policy import PolicyPack, duration_seconds
    from models.records import Registered, Registration
    from models.status import RequestStatus
    from workflows.dispatch import DispatchSteps
    from workflows.incident_link import IncidentLinkSteps
    from workflows.request_state import LOCAL, SYSTEM, RequestState, add_years, run_local

CLOCKS = ("first_response", "handling", "closure", "revisit", "assignment")  # one timer task each
ACCEPTING = ("received", "accepted", "classified")  # stages passed within the first workflow task


@workflow.defn(name="ServiceRequestWorkflow")
class ServiceRequestWorkflow(DispatchSteps, IncidentLinkSteps):
    @workflow.init
    def __init__(self, intake: Intake) -> None:
        self.s = RequestState(intake, workflow.info().workflow_id)
        self.done = False
        self.awaiting: str | None = None  # "confirm" or "survey" while the customer's answer is due
        self.confirmation: Confirm | None = None
        self.answer: SurveyAnswer | None = None
        self.published: dict[str, Any] = {}

    @workflow.run
    async def run(self, intake: Intake) -> RequestStatus:
        # The lifecycle runs beside the archive flusher and one timer task per clock; a bug in any of them fails
        # the workflow task (visible, retried after a fix) instead of dying silently in the background.
        tasks = [asyncio.create_task(self.lifecycle()), asyncio.create_task(self.flush_to_archive()),
                 *(asyncio.create_task(self.watch_clock(name)) for name in CLOCKS),
                 asyncio.create_task(self.watch_ladder())]
        await workflow.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task.done() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return self.s.status(workflow.now())

    async def lifecycle(self) -> None:
        await self.accept()
        self.classify()
        await self.watch_for_incident()
        while True:
            await self.handle()
            if not await self.close():
                continue  # the customer rejected the result or the checker refused it: handle again
            if not await self.revisit():
                break  # satisfied, unreachable, or reopen cap reached
        self.complete()
        self.done = True

    # --- 1 受理 acceptance ---------------------------------------------------------------------------------------
    async def accept(self) -> None:
        """Register the work order (000 §2.1, 002 §2.1.2) under the policy version pinned now."""
        s = self.s
        s.pack = await run_local(s, "load_policy", s.intake.policy, f"load policy pack {s.intake.policy}", PolicyPack)
        if s.intake.channel not in s.pack.channels:
            raise ApplicationError(f"channel: {s.intake.channel} is not a channel of policy {s.pack.id}",
                                   type="InvalidIntake", non_retryable=True)
        now = workflow.now()
        s.accepted_at = now
        # first contact (001 §5.1); a backend clock running ahead must not start a clock in the future
        s.received_at = min(s.intake.received_at or workflow.info().start_time, now)
        s.enter("received", s.received_at)
        registration = Registration(
            request_id=s.intake.request_id, workflow_id=s.workflow_id, policy_id=s.pack.id,
            policy_version=s.pack.version, channel=s.intake.channel, customer=s.intake.customer,
            description=s.intake.description, amount=s.intake.amount,
            received_at=s.received_at, accepted_at=now)
        registered = await run_local(s, "register_request", registration,
                                     f"register work order {s.intake.request_id}", Registered)
        s.ticket = registered.ticket
        s.enter("accepted", now)
        s.record(now, s.owner or SYSTEM.id, "agent" if s.owner else "system", "accepted", ticket=s.ticket,
                 channel=s.intake.channel, policy=s.pack.key, received_at=registration.received_at.isoformat(),
                 incident_id=s.intake.incident_id)
        if s.intake.incident_id:  # SEEDS §11: each complaint is its own request, linked to the incident
            await self._link_incident(s.intake.incident_id)

    # --- 2 分类 classification -----------------------------------------------------------------------------------
    def classify(self) -> None:
        """Type, category, service class and complaint grade from the pack's rules; the clocks follow."""
        s, pack, now = self.s, self._pack(), workflow.now()
        s.cls = classify(pack, s.intake)
        s.enter("classified", now)
        for name, spec in pack.clocks_for(s.cls.priority, s.intake.channel).items():
            if name != "revisit":  # the revisit clock starts at closure
                # 001 §5.1: response time runs from the customer's first contact
                start = s.received_at if name == "first_response" else now
                s.clocks[name] = SlaClock.start(name, spec, pack.calendar, start)
                s.touch_clock(name)
        s.ladder = Ladder(list(pack.escalation))
        s.touch_ladder()
        if s.cls.request_type == "complaint":
            s.complaint_owner = s.owner  # 首诉负责: the accepting agent owns the complaint (000 §2.5)
        s.department = s.cls.department or s.department
        seq = s.record(now, SYSTEM.id, "system", "classified", request_type=s.cls.request_type,
                       category=s.cls.category, priority=s.cls.priority, complaint_grade=s.cls.complaint_grade,
                       rules=list(s.cls.rules))
        if s.cls.joint_handling:  # 000 §2.2: funds at risk → the business department at once, handled jointly
            s.participants.append(s.cls.joint_handling)
            s.record(now, SYSTEM.id, "system", "joint_handling", department=s.cls.joint_handling)
        if s.cls.complaint_grade:  # 002 §4.4: a major complaint starts higher up the ladder
            grade = pack.complaint_grades[s.cls.complaint_grade]  # type: ignore[index]
            self._escalate(grade.start_level, "grade", f"{grade.label} complaint", SYSTEM)
        # the acknowledgement carries the ticket number and the expected completion time (002 §2.1.2)
        s.notify(seq, "acknowledgement", "customer", "customer",
                 expected_completion=s.expected_completion_text(now))
        self._publish()

    # --- 3 处理 handling ----------------------------------------------------------------------------------------
    async def handle(self) -> None:
        """Wait for the agents' actions (update `act`) until the request is resolved."""
        s, now = self.s, workflow.now()
        s.enter("handling", now, "in_progress" if s.first_response_at else "pending")  # 003 §2.2 待处理 → 处理中
        if s.intake.first_contact_answer and not s.first_response_at:
            self._answer_at_first_contact(now)
        if s.incident_resolution and s.stage == "handling":  # the incident was resolved before handling began
            self._resolve_by_incident(s.incident_resolution)
        # dispatch on the first round when nobody owns it; again on a reopened round when it was dispatched before
        s.dispatch_wanted = bool(self._pack().assignment and s.stage == "handling" and (s.owner is None or s.team))
        self._publish()
        while True:
            if s.hold and (s.hold[0] != s.owner or s.dispatch_wanted):  # reassigned by hand, or transferred
                await self._release("reassigned" if s.hold[0] != s.owner else "transferred")
            if s.dispatch_wanted:
                await self.dispatch()
                continue
            await workflow.wait_condition(lambda: s.stage == "resolved" or s.dispatch_wanted
                                          or (s.hold is not None and s.hold[0] != s.owner))
            if s.stage == "resolved":
                break
        await self._release("resolved")

    def _answer_at_first_contact(self, now: datetime) -> None:
        """An inquiry answered at first contact (e.g. by the chatbot) counts toward first-contact resolution."""
        s = self.s
        agent = Actor(id=s.owner or f"{s.intake.channel}-bot", role="agent" if s.owner else "system")
        answer = s.intake.first_contact_answer or ""
        self.do_respond(agent, now, message=answer)
        self.do_resolve(agent, now, summary=answer, root_cause=None, decision=None)
        s.first_contact_resolution = True

    # --- 4 办结 closure -----------------------------------------------------------------------------------------
    async def close(self) -> bool:
        """Report the result; close only after the customer confirms or the window passes (002 §2.2.1)."""
        s, pack = self.s, self._pack()
        if s.cls and s.cls.requires_check:  # 001 §4.2 a checker's acceptance comes first
            await workflow.wait_condition(lambda: s.checked or s.stage != "resolved")
            if s.stage != "resolved":
                return False
        window = duration_seconds(pack.closure.confirmation_window)
        now = workflow.now()
        confirm_by = now + timedelta(seconds=window)
        seq = s.record(now, SYSTEM.id, "system", "result_reported", confirm_by=confirm_by.isoformat())
        s.notify(seq, "resolution", "customer", "customer", summary=s.summary, confirm_by=confirm_by.isoformat())
        answer = await self._await_customer("confirm", window, "confirmation window")
        now = workflow.now()
        if isinstance(answer, Confirm) and not answer.accepted:
            s.record(now, "customer", "customer", "result_rejected", comment=answer.comment)
            self._reopen_handling(now)
            return False
        s.confirmed = answer is not None
        if s.incident_linked and not s.incident_reviewed:  # SEEDS §11: closed after the incident review
            s.sub_state = "awaiting_incident_review"
            s.record(now, SYSTEM.id, "system", "closure_awaits_incident_review", incident_id=s.incident_id)
            self._publish()
            await workflow.wait_condition(lambda: s.incident_reviewed)
            now = workflow.now()
        s.closed_at = now
        for clock in s.clocks.values():
            if clock.running or clock.paused:
                clock.stop(now)
        for name in s.clocks:
            s.touch_clock(name)
        s.retention_until = add_years(now, pack.classes[s.cls.priority].retention_years)  # type: ignore[union-attr]
        s.enter("closed", now)
        s.final_pending = True  # the archive keeps the final record with its retention date (002 §2.4.2)
        s.record(now, "customer" if answer else SYSTEM.id, "customer" if answer else "system", "closed",
                 confirmed_by="customer" if answer else "confirmation_window",
                 retention_until=s.retention_until.isoformat())
        self._publish()
        return True

    # --- 5 回访 revisit -----------------------------------------------------------------------------------------
    async def revisit(self) -> bool:
        """Survey after the policy's delay; a low score reopens the case (003 §3.4, §4.1 二次服务)."""
        s, pack = self.s, self._pack()
        await workflow.sleep(duration_seconds(pack.revisit.delay), summary="revisit delay")
        now = workflow.now()
        s.enter("revisit", now)
        revisit_spec = pack.clocks_for(s.cls.priority, s.intake.channel).get("revisit")  # type: ignore[union-attr]
        if revisit_spec:
            s.clocks["revisit"] = SlaClock.start("revisit", revisit_spec, pack.calendar, now)
            s.touch_clock("revisit")
        window = duration_seconds(pack.revisit.window)
        until = now + timedelta(seconds=window)
        seq = s.record(now, SYSTEM.id, "system", "survey_sent", survey_until=until.isoformat())
        s.notify(seq, "revisit", "customer", "customer", survey_until=until.isoformat(),
                 scale_max=pack.revisit.scale_max)
        self._publish()
        answer = await self._await_customer("survey", window, "survey window")
        now = workflow.now()
        if "revisit" in s.clocks and s.clocks["revisit"].running:
            s.clocks["revisit"].stop(now)
            s.touch_clock("revisit")
        if not isinstance(answer, SurveyAnswer):
            s.outcome = "unreachable"
            s.record(now, SYSTEM.id, "system", "survey_unanswered")
            return False
        s.satisfaction, s.nps, s.resolved_by_customer = answer.score, answer.nps, answer.resolved
        if answer.score >= pack.revisit.reopen_below and answer.resolved:
            s.outcome = "satisfied"
            return False
        if s.reopen_count >= pack.revisit.reopen_cap:
            s.outcome = "reopen_cap_reached"
            s.record(now, SYSTEM.id, "system", "reopen_refused", reason="reopen cap reached",
                     cap=pack.revisit.reopen_cap)
            return False
        s.reopen_count += 1
        metrics.reopen(*self._labels())
        s.record(now, SYSTEM.id, "system", "reopened", score=answer.score, resolved=answer.resolved,
                 reopen_count=s.reopen_count)
        self._escalate(s.ladder.level + 1, "revisit", f"dissatisfied revisit (score {answer.score})",  # type: ignore[union-attr]
                       SYSTEM)
        self._reopen_handling(now, new_round=True)
        return True

    def complete(self) -> None:
        s, now = self.s, workflow.now()
        s.completed_at = now
        s.outcome = s.outcome or "completed"
        s.enter("completed", now)
        s.record(now, SYSTEM.id, "system", "completed", outcome=s.outcome, satisfaction=s.satisfaction)
        self._publish()

    def _reopen_handling(self, now: datetime, new_round: bool = False) -> None:
        """Back into handling. A new round (二次服务) restarts the handling and closure clocks; a rejected result
        keeps counting on the original ones."""
        s, pack = self.s, self._pack()
        s.stage, s.sub_state = "handling", "in_progress"
        s.summary = s.root_cause = s.resolved_by = None
        s.resolved_at = None
        s.checked = False
        s.confirmed = None
        for name in ("handling", "closure"):
            if new_round:
                spec = pack.clocks_for(s.cls.priority, s.intake.channel)[name]  # type: ignore[union-attr]
                s.clocks[name] = SlaClock.start(name, spec, pack.calendar, now)
            else:
                s.clocks[name].reopen(now)
            s.touch_clock(name)
        self._publish()

    async def _await_customer(self, what: str, window: int, summary: str) -> Confirm | SurveyAnswer | None:
        self.confirmation = self.answer = None
        self.awaiting = what
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: (self.confirmation or self.answer) is not None,
                                          timeout=window, timeout_summary=summary)
        self.awaiting = None
        return self.confirmation or self.answer

    # --- agents: update `act` -----------------------------------------------------------------------------------
    @workflow.update
    async def act(self, act: Act) -> RequestStatus:
        a = act.action
        if self.s.stage in ACCEPTING:  # it arrived while the request was being accepted: act once handling begins
            await workflow.wait_condition(lambda: self.s.stage not in ACCEPTING)
            if reason := self._refusal(act):
                raise ApplicationError(reason, type="ActionRefused", non_retryable=True)
        if a.kind == "reevaluate":
            await self.do_reevaluate(act.actor, a.reason)
        else:
            getattr(self, f"do_{a.kind}")(act.actor, workflow.now(), **a.model_dump(exclude={"kind"}))
        self._publish()
        return self.s.status(workflow.now())

    @act.validator
    def validate_act(self, act: Act) -> None:
        _require(act, Act, "act")
        if self.s.stage in ACCEPTING:  # the first workflow task is still running: the role is checked now, the
            handling = replace(self._situation(), stage="handling")  # rest once handling begins (act above)
            reason = check_action(act.action.kind, act.actor.id, act.actor.role, handling)
        else:
            reason = self._refusal(act)
        if reason:
            raise ValueError(reason)

    def _refusal(self, act: Act) -> str | None:
        return check_action(act.action.kind, act.actor.id, act.actor.role, self._situation()) or \
            self._content_problem(act)

    def _content_problem(self, act: Act) -> str | None:
        s, a, pack = self.s, act.action, self._pack()
        if a.kind == "resolve":
            if s.cls and s.cls.request_type == "complaint" and not a.root_cause:
                return "resolve: root_cause is required for a complaint (002 §4.4)"
            if s.cls and s.cls.request_type == "suggestion" and not a.decision:
                return "resolve: decision is required for a suggestion: management decides (001 Ch8)"
        if a.kind == "extend":
            rules = pack.extensions
            if rules.requires_customer_notice and not (a.customer_notice or "").strip():
                return "extend: customer_notice is required: tell the customer first (000 §2.2)"
            if s.extensions >= rules.max_count:
                return f"extend: the policy allows {rules.max_count} extension(s) and {s.extensions} were granted"
            try:
                seconds = duration_seconds(a.by)
            except ValueError as exc:
                return f"extend: by: {exc}"
            if seconds > duration_seconds(rules.max_each):
                return f"extend: by: at most {rules.max_each} per extension"
        if a.kind == "reclassify" and s.cls:
            try:
                reclassify(pack, s.cls, request_type=a.request_type, category=a.category, priority=a.priority,
                           complaint_grade=a.complaint_grade)
            except ValueError as exc:
                return f"reclassify: {exc}"
        if a.kind == "acknowledge" and not (s.ladder and s.ladder.awaiting_ack_since):
            return "acknowledge: no escalation awaits acknowledgement"
        return None

    def do_respond(self, actor: Actor, now: datetime, message: str) -> None:
        """先受理、后处理 (000 §3.1): the first response stops the first-response clock."""
        s = self.s
        self._responded(actor, now)
        seq = s.record(now, actor.id, actor.role, "respond", message=message)
        s.notify(seq, "progress", "customer", "customer", text=message, eta=s.expected_completion_text(now))

    def _responded(self, actor: Actor, now: datetime) -> None:
        s = self.s
        s.clocks["first_response"].stop(now)
        s.touch_clock("first_response")
        if s.received_at:
            metrics.first_response(now - s.received_at, *self._labels())  # 001 §5.1: from first contact
        s.first_response_at = now
        s.owner = s.owner or actor.id
        if s.owner == actor.id:  # the assignee (or whoever took it from the queue) has the case
            self._taken(now)
        if s.cls and s.cls.request_type == "complaint" and s.complaint_owner is None:
            s.complaint_owner = s.owner  # 首诉负责 (000 §2.5, 001 §4.1)
        s.sub_state = "in_progress"

    def do_note(self, actor: Actor, now: datetime, text: str, customer_visible: bool, eta: str | None) -> None:
        seq = self.s.record(now, actor.id, actor.role, "note", text=text, customer_visible=customer_visible, eta=eta)
        if customer_visible:  # 003 §2.3: problem, progress, estimated resolution time, next steps
            self.s.notify(seq, "progress", "customer", "customer", text=text, eta=eta)

    def do_ask_customer(self, actor: Actor, now: datetime, question: str) -> None:
        s = self.s
        for name, clock in s.clocks.items():
            if clock.spec.pausable and clock.running:
                clock.pause(now)
                s.touch_clock(name)
        s.sub_state = "waiting_on_customer"
        seq = s.record(now, actor.id, actor.role, "ask_customer", question=question)
        s.notify(seq, "progress", "customer", "customer", text=question, eta=None)

    def do_customer_reply(self, actor: Actor, now: datetime, text: str) -> None:
        s = self.s
        for name, clock in s.clocks.items():
            if clock.paused:
                clock.resume(now)
                s.touch_clock(name)
        s.sub_state = "in_progress"
        s.record(now, actor.id, actor.role, "customer_reply", text=text)

    def do_assign(self, actor: Actor, now: datetime, owner: str) -> None:
        """A lead's assignment is binding: no offer, no return timer (a held dispatch slot is released)."""
        s = self.s
        before, s.owner = s.owner, owner
        if s.cls and s.cls.request_type == "complaint" and s.complaint_owner is None:
            s.complaint_owner = owner
        self._taken(now)
        if s.sub_state == "assigned":
            s.sub_state = "in_progress" if s.first_response_at else "pending"
        s.record(now, actor.id, actor.role, "assign", before=before, after=owner)

    def do_transfer(self, actor: Actor, now: datetime, department: str, reason: str, joint: bool,
                    to_owner: str | None) -> None:
        """003 §3.3: transfer keeps the complaint owner and records both parties; the clocks keep running (the pack's
        `transfer.handling_clock` may restart the handling clock). Without a named receiver, a pack with dispatch
        offers it to the receiving department's team."""
        s, pack = self.s, self._pack()
        before, before_owner = s.department, s.owner
        restart = not joint and pack.transfer.handling_clock == "restarts"
        if joint:
            s.participants.append(department)
        else:
            s.department = department
            s.sub_state = "transferred"
            if to_owner:
                s.owner = to_owner
                self._taken(now)
            elif pack.assignment:
                s.dispatch_wanted, s.taken = True, False
        if restart:  # the pack gives the receiving department a fresh handling limit
            spec = pack.clocks_for(s.cls.priority, s.intake.channel)["handling"]  # type: ignore[union-attr]
            s.clocks["handling"] = SlaClock.start("handling", spec, pack.calendar, now)
            s.touch_clock("handling")
        s.record(now, actor.id, actor.role, "transfer", before=before, after=department, joint=joint, reason=reason,
                 from_owner=before_owner, to_owner=to_owner if not joint else None, owner=s.owner,
                 complaint_owner=s.complaint_owner, handling_clock="restarted" if restart else "keeps_running")

    def do_reclassify(self, actor: Actor, now: datetime, reason: str, **changes: Any) -> None:
        """Targets recompute from the original start, keeping pauses (or restart, per clock in the policy)."""
        s, pack = self.s, self._pack()
        before = s.cls
        s.cls = reclassify(pack, before, **changes)  # type: ignore[arg-type]
        for name, spec in pack.clocks_for(s.cls.priority, s.intake.channel).items():
            if name in s.clocks:
                s.clocks[name].reclassify(spec, pack.calendar, now)
                s.touch_clock(name)
        s.record(now, actor.id, actor.role, "reclassify", reason=reason,
                 before={"request_type": before.request_type, "priority": before.priority,  # type: ignore[union-attr]
                         "complaint_grade": before.complaint_grade},  # type: ignore[union-attr]
                 after={"request_type": s.cls.request_type, "priority": s.cls.priority,
                        "complaint_grade": s.cls.complaint_grade})
        if s.cls.complaint_grade and s.cls.complaint_grade != getattr(before, "complaint_grade", None):
            grade = pack.complaint_grades[s.cls.complaint_grade]  # type: ignore[index]
            self._escalate(grade.start_level, "grade", f"reclassified as {grade.label}", actor)

    def do_extend(self, actor: Actor, now: datetime, by: str, reason: str, customer_notice: str | None) -> None:
        """000 §2.2: extended only after telling the customer; the notice is recorded with the extension."""
        s = self.s
        handling = s.clocks["handling"]
        handling.extend(duration_seconds(by))
        s.touch_clock("handling")
        s.extensions += 1
        new_deadline = handling.deadline(now)
        seq = s.record(now, actor.id, actor.role, "extend", by=by, reason=reason, customer_notice=customer_notice,
                       new_deadline=new_deadline.isoformat())
        s.notify(seq, "extension", "customer", "customer", new_deadline=new_deadline.isoformat(), reason=reason,
                 notice=customer_notice)

    def do_acknowledge(self, actor: Actor, now: datetime, comment: str) -> None:
        self.s.ladder.acknowledge()  # type: ignore[union-attr]
        self.s.touch_ladder()
        self.s.record(now, actor.id, actor.role, "acknowledge", level=self.s.ladder.level,  # type: ignore[union-attr]
                      comment=comment)

    def do_resolve(self, actor: Actor, now: datetime, summary: str, root_cause: str | None,
                   decision: str | None) -> None:
        s = self.s
        s.clocks["handling"].stop(now)
        s.touch_clock("handling")
        s.summary, s.root_cause = summary, root_cause
        s.resolved_at, s.resolved_by = now, actor.id
        if s.accepted_at:
            metrics.resolution(now - s.accepted_at, *self._labels())
        s.enter("resolved", now, "pending_check" if s.cls and s.cls.requires_check else "")
        s.record(now, actor.id, actor.role, "resolve", summary=summary, root_cause=root_cause, decision=decision)

    def do_check(self, actor: Actor, now: datetime, passed: bool, remarks: str) -> None:
        """001 §4.2 验收: a checker accepts the resolution, or sends it back to handling."""
        s = self.s
        s.record(now, actor.id, actor.role, "check", passed=passed, remarks=remarks)
        if passed:
            s.checked, s.sub_state = True, ""
        else:
            self._reopen_handling(now)

    async def do_reevaluate(self, actor: Actor, reason: str) -> None:
        """Move the request to its policy's current version: the clocks keep their start and pauses and take the
        new targets; the ladder takes the new roles."""
        s, old = self.s, self._pack()
        new = await run_local(s, "load_policy", old.id, f"reload policy pack {old.id}", PolicyPack)
        now = workflow.now()
        if new.version == old.version or s.cls is None or s.cls.priority not in new.classes:
            s.record(now, actor.id, actor.role, "reevaluate", rejected=True, reason=reason,
                     why=f"version {new.version} is current" if new.version == old.version
                     else f"class {s.cls.priority if s.cls else None} is gone from version {new.version}")
            return
        s.pack = new
        for name, spec in new.clocks_for(s.cls.priority, s.intake.channel).items():
            if name in s.clocks:
                s.clocks[name].reclassify(spec, new.calendar, now)
                s.touch_clock(name)
        s.ladder.levels = list(new.escalation)  # type: ignore[union-attr]
        s.ladder.level = min(s.ladder.level, s.ladder.top)  # type: ignore[union-attr]
        s.touch_ladder()
        s.record(now, actor.id, actor.role, "reevaluate", reason=reason, before=old.key, after=new.key)

    # --- customers: updates `confirm` and `survey` ----------------------------------------------------------------
    @workflow.update
    def confirm(self, confirmation: Confirm) -> RequestStatus:
        self.confirmation = confirmation
        self.s.record(workflow.now(), "customer", "customer", "confirm", accepted=confirmation.accepted,
                      comment=confirmation.comment)
        return self.s.status(workflow.now())

    @confirm.validator
    def validate_confirm(self, confirmation: Confirm) -> None:
        _require(confirmation, Confirm, "confirm")
        if self.awaiting != "confirm":
            raise ValueError(f"confirm: no result awaits confirmation (stage {self.s.stage})")

    @workflow.update
    def survey(self, answer: SurveyAnswer) -> RequestStatus:
        self.answer = answer
        self.s.record(workflow.now(), "customer", "customer", "survey", score=answer.score, nps=answer.nps,
                      resolved=answer.resolved, comment=answer.comment)
        return self.s.status(workflow.now())

    @survey.validator
    def validate_survey(self, answer: SurveyAnswer) -> None:
        _require(answer, SurveyAnswer, "survey")
        if self.awaiting != "survey":
            raise ValueError(f"survey: no survey is open (stage {self.s.stage})")
        if answer.score > self._pack().revisit.scale_max:
            raise ValueError(f"survey: score {answer.score} is above the scale of {self._pack().revisit.scale_max}")

    # --- supervisors: signal `escalate` ---------------------------------------------------------------------------
    @workflow.signal
    def escalate(self, payload: Any) -> None:
        """A supervisor raises the request one level or to a named level. A signal cannot answer, so a refused
        one is recorded as rejected and changes nothing else."""
        s, now = self.s, workflow.now()
        request = s.decode(EscalateRequest, payload, "escalate", now)
        if request is None:
            return
        actor = request.actor
        reason = check_action("escalate", actor.id, actor.role, self._situation())
        target = request.to_level if request.to_level is not None else (s.ladder.level + 1 if s.ladder else 1)
        if reason is None and s.ladder and (target <= s.ladder.level or target > s.ladder.top):
            reason = f"escalate: level {target} is not above level {s.ladder.level} within 0..{s.ladder.top}"
        if reason:
            s.record(now, actor.id, actor.role, "escalate", rejected=True, reason=reason)
            return
        self._escalate(target, "signal", request.reason, actor)
        self._publish()

    # --- operators: query `status` ---------------------------------------------------------------------------------
    @workflow.query
    def status(self) -> RequestStatus:
        return self.s.status(workflow.now())

    # --- timers: one per clock, plus the escalation ack timer -------------------------------------------------------
    async def watch_clock(self, name: str) -> None:
        """Sleep until this clock's next warning or breach; re-arm whenever the clock changes."""
        s = self.s
        while not self.done:
            rev = s.clock_rev.get(name, 0)
            clock = s.clocks.get(name)
            now = workflow.now()
            event = clock.next_event(now) if clock else None
            if not await self._sleep_unless(lambda rev=rev: self.done or s.clock_rev.get(name, 0) != rev,
                                            event.at if event else None, f"{name} {event.kind if event else ''}"):
                continue
            if clock and event:
                self._on_clock_event(clock, event)

    async def watch_ladder(self) -> None:
        """An escalated owner who does not acknowledge within the policy's ack time lets the ladder climb."""
        s = self.s
        while not self.done:
            rev = s.ladder_rev
            due = s.ladder.ack_deadline() if s.ladder else None
            if not await self._sleep_unless(lambda rev=rev: self.done or s.ladder_rev != rev, due,
                                            "escalation ack"):
                continue
            rung = s.ladder.current  # type: ignore[union-attr]
            self._escalate(rung.level + 1, "ack_timeout", f"{rung.title} did not acknowledge within {rung.ack_within}",
                           SYSTEM)
            self._publish()

    async def _sleep_unless(self, changed: Any, until: datetime | None, summary: str) -> bool:
        """True when `until` arrives first; False when `changed` became true (or nothing is due)."""
        if until is None:
            await workflow.wait_condition(changed)
            return False
        delay = (until - workflow.now()).total_seconds()
        if delay > 0:
            try:
                await workflow.wait_condition(changed, timeout=delay, timeout_summary=summary.strip())
                return False
            except TimeoutError:
                pass
        return not self.done

    def _on_clock_event(self, clock: SlaClock, event: ClockEvent) -> None:
        s, now = self.s, workflow.now()
        deadline = clock.deadline(now).isoformat()
        if event.kind == "warning":  # 催办: remind the owner before the deadline
            clock.mark_warned(event.fraction or 0.0)
            seq = s.record(now, SYSTEM.id, "system", "sla_warning", clock=clock.name, fraction=event.fraction,
                           deadline=deadline)
            s.notify(seq, "warning", "owner", s.owner or "queue", clock=clock.name, fraction=event.fraction,
                     deadline=deadline)
        else:  # breach: recorded, attributed to the handler (000 §5.5), and the ladder climbs
            clock.mark_breached(now)
            metrics.breach(clock.name, *self._labels())
            attributed = s.owner or "unassigned"
            s.record(now, SYSTEM.id, "system", "sla_breach", clock=clock.name, deadline=deadline,
                     attributed_to=attributed)
            self._escalate(s.ladder.level + 1, "breach", f"{clock.name} deadline {deadline} missed",  # type: ignore[union-attr]
                           SYSTEM, attributed_to=attributed)
        s.touch_clock(clock.name)
        self._publish()

    def _escalate(self, level: int, trigger: str, reason: str, actor: Actor, attributed_to: str | None = None) -> None:
        s, now = self.s, workflow.now()
        step = s.ladder.raise_to(level, now, trigger=trigger, reason=reason, actor=actor.id,  # type: ignore[union-attr]
                                 attributed_to=attributed_to)
        if step is None:
            if level > s.ladder.level:  # type: ignore[union-attr]  # wanted higher, but the ladder is at its top
                s.record(now, actor.id, actor.role, "escalation_at_top", trigger=trigger, reason=reason,
                         level=s.ladder.level)  # type: ignore[union-attr]
            return
        s.touch_ladder()
        metrics.escalation(step.level, trigger, *self._labels())
        seq = s.record(now, actor.id, actor.role, "escalate", level=step.level, role=step.role, trigger=trigger,
                       reason=reason, attributed_to=attributed_to)
        s.notify(seq, "escalation", "escalation", step.role, level=step.level, title=step.title, reason=reason,
                 trigger=trigger, attributed_to=attributed_to)

    # --- archive, search attributes, current details ----------------------------------------------------------------
    async def flush_to_archive(self) -> None:
        """Write buffered audit events, notices and the projection in order, one activity per batch."""
        s = self.s
        while True:
            # nothing before the work order is registered (a signal can arrive before acceptance)
            await workflow.wait_condition(
                lambda: bool(s.ticket) and (self.done or bool(s.events or s.notices or s.final_pending)))
            if workflow.patched("flush-once-per-task"):
                # let the steps this change woke run first (an update that resolves wakes the closure step), and
                # their local activities finish: then one write carries the whole workflow task's changes
                await asyncio.sleep(0)
                await workflow.wait_condition(lambda: s.busy == 0)
            batch = s.take_batch(workflow.now())
            if batch is None:
                return
            summary = (f"archive {len(batch.events)} event(s), {len(batch.notices)} notice(s)"
                       f"{', final record' if batch.final else ''} · stage {batch.projection.stage}")
            await workflow.execute_local_activity("persist", batch, summary=summary, **LOCAL)  # type: ignore[arg-type]

    def _publish(self) -> None:
        """Keep the Web UI current: search attributes (never PII) and the run's current details."""
        s, now = self.s, workflow.now()
        values: dict[str, Any] = {
            search.STAGE.name: s.stage, search.REQUEST_TYPE.name: s.cls.request_type if s.cls else None,
            search.PRIORITY.name: s.cls.priority if s.cls else None,
            search.COMPLAINT_GRADE.name: s.cls.complaint_grade if s.cls else None,
            search.ESCALATION_LEVEL.name: s.ladder.level if s.ladder else 0, search.OWNER.name: s.owner,
            search.POLICY.name: s.pack.id if s.pack else None, search.BREACHED.name: bool(s.breached_clocks()),
            search.NEXT_DEADLINE.name: s.next_deadline(now),
        }
        changed = [key for key in search.ALL if values[key.name] != self.published.get(key.name)]
        if changed:
            workflow.upsert_search_attributes([
                key.value_set(values[key.name]) if values[key.name] is not None else key.value_unset()
                for key in changed])
            self.published.update({key.name: values[key.name] for key in changed})
        workflow.set_current_details(s.details_markdown(now))

    def _situation(self) -> Situation:
        s = self.s
        return Situation(stage=s.stage, sub_state=s.sub_state, owner=s.owner, responded=s.first_response_at is not None,
                         resolved_by=s.resolved_by, escalation_role=s.ladder.current.role if s.ladder else "")

    def _labels(self) -> tuple[str | None, str | None]:
        """Metric labels: policy and request type (never customer data)."""
        s = self.s
        return (s.pack.id if s.pack else s.intake.policy, s.cls.request_type if s.cls else None)

    def _pack(self) -> PolicyPack:
        if self.s.pack is None:
            raise ApplicationError("policy not loaded yet", non_retryable=True)
        return self.s.pack


def _require(payload: object, model: type, update: str) -> None:
    """A payload that did not decode into its model (null, bytes, a list) is refused before the handler runs."""
    if not isinstance(payload, model):
        fields = ", ".join(model.model_fields)  # type: ignore[attr-defined]
        raise ValueError(f"{update}: the payload must be an object with fields {fields}, got {type(payload).__name__}")
