"""ServiceRequestWorkflow: one customer service request (工单), walking the manuals' lifecycle in order.

    1 受理 acceptance → 2 分类 classification → 3 处理 handling → 4 办结 closure → 5 回访 revisit
    (a dissatisfied revisit or a rejected result goes back to handling; 002 §3.4: no stage is ever skipped)

The request's rules live in the ServiceRequest aggregate (domain/request.py); this class only orchestrates: the
lifecycle top to bottom, the message handlers that call the aggregate, one durable timer per SLA clock and one for
the escalation ladder, and the activities. Handling starts with dispatch when the pack has an assignment section
(workflows/dispatch.py); a request linked to an incident closes after the incident review (workflows/
incident_link.py). Deterministic code only; all I/O happens in activities.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from activities.archive import ArchiveActivities
    from activities.policy import load_policy
    from domain.request import ACCEPTING, Refused, ServiceRequest, check_intake
    from domain.snapshot import Snapshot
    from infra import metrics, search
    from models.actions import Act, Confirm, EscalateRequest, Reevaluate, SurveyAnswer
    from models.incident import IncidentEvent
    from models.policy import duration_seconds
    from models.status import RequestStatus
    from workflows.common import LocalSteps, local, require, run_tasks, timer
    from workflows.dispatch import Dispatcher
    from workflows.incident_link import link_incident, watch_for_incident
    from workflows.principals import signal_refusal

M = TypeVar("M", bound=BaseModel)
CLOCKS = ("first_response", "handling", "closure", "revisit", "assignment")  # one timer task each


@workflow.defn(name="ServiceRequestWorkflow")
class ServiceRequestWorkflow:
    @workflow.init
    def __init__(self, intake: Any, carried: Any = None) -> None:
        # The intake arrives undecoded and is validated here: a malformed one (from any SDK) fails this run at once
        # with the field named, instead of failing its workflow task forever (issue 15).
        self.intake = check_intake(intake, workflow.info().workflow_id)
        wid = workflow.info().workflow_id
        # `carried`: the state of the run this one continues (continue-as-new while handling)
        self.resumed = carried is not None and self.intake.problem is None
        self.r = (ServiceRequest.restore(self.intake.intake, wid, Snapshot.model_validate(carried), metrics)
                  if self.resumed else ServiceRequest(self.intake.intake, wid, metrics))
        self.steps = LocalSteps()
        self.dispatcher = Dispatcher(self.r, self.steps, self._publish)
        self.done = False
        self.awaiting: str | None = None  # "confirm" or "survey" while the customer's answer is due
        self.confirmation: Confirm | None = None
        self.answer: SurveyAnswer | None = None
        self.published: dict[str, Any] = {}
        self.flushing = False

    @workflow.run
    async def run(self, intake: Any, carried: Any = None) -> RequestStatus:
        if self.intake.problem:
            await self.reject(self.intake.problem)
        await run_tasks(self.lifecycle(), self.flush_to_archive(), *(self.watch_clock(name) for name in CLOCKS),
                        self.watch_ladder())
        return self.r.status(workflow.now())

    async def lifecycle(self) -> None:
        if not self.resumed:
            await self.accept()
            self.r.classify(workflow.now())
            self._publish()
            await watch_for_incident(self.r, self.steps, self._publish)
        while True:
            await self.handle(resumed=self.resumed)
            self.resumed = False
            if not await self.close():
                continue  # the customer rejected the result or the checker refused it: handle again
            if not await self.revisit():
                break  # satisfied, unreachable, or reopen cap reached
        self.r.complete(workflow.now())
        self._publish()
        self.done = True

    # --- 1 受理 acceptance ---------------------------------------------------------------------------------------
    async def accept(self) -> None:
        """Register the work order (000 §2.1, 002 §2.1.2) under the policy version pinned now."""
        r = self.r
        pack = await self.steps.run(load_policy, r.intake.policy, f"load policy pack {r.intake.policy}")
        try:
            registration = r.accept(pack, workflow.now(), workflow.info().start_time)
        except Refused as exc:
            await self.reject(str(exc))
        registered = await self.steps.run(ArchiveActivities.register_request, registration,
                                          f"register work order {r.intake.request_id}")
        r.registered(registered.ticket, workflow.now())
        if r.intake.incident_id:  # SEEDS §11: each complaint is its own request, linked to the incident
            await link_incident(r, r.intake.incident_id)

    async def reject(self, reason: str) -> NoReturn:
        """A refused intake: a `rejected` archive row (no customer data), then the run fails, not retried."""
        rejection = self.r.rejection(self.intake, reason, workflow.now())
        await self.steps.run(ArchiveActivities.reject_intake, rejection, f"reject intake: {reason[:60]}")
        raise ApplicationError(reason, type="InvalidIntake", non_retryable=True)

    # --- 3 处理 handling ----------------------------------------------------------------------------------------
    async def handle(self, resumed: bool = False) -> None:
        """Wait for the agents' actions (update `act`) until the request is resolved. A long case continues as a new
        run while it waits here, with its state (`resumed`: this run is that continuation)."""
        r, d = self.r, self.r.dispatch
        if not resumed:
            r.begin_handling(workflow.now())
        self._publish()
        while True:
            if d.hold and (d.hold[0] != r.owner or d.wanted):  # reassigned by hand, or transferred
                await self.dispatcher.release("reassigned" if d.hold[0] != r.owner else "transferred")
            if d.wanted:
                await self.dispatcher.run()
                continue
            await workflow.wait_condition(lambda: r.stage == "resolved" or d.wanted
                                          or (d.hold is not None and d.hold[0] != r.owner) or self._history_full())
            if r.stage == "resolved":
                break
            if self._history_full():
                await self._continue_as_new()
        await self.dispatcher.release("resolved")

    def _history_full(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or \
            info.get_current_history_length() >= self.r.pack.continue_as_new_after

    async def _continue_as_new(self) -> NoReturn:
        """Bounded history (issue 15): once the archive has every line and no handler is running, the request
        continues as a new run with its state; clocks and ladder re-arm from it."""
        await workflow.wait_condition(lambda: not self.r.outbox.pending and not self.flushing and self.steps.idle
                                      and workflow.all_handlers_finished())
        workflow.continue_as_new(args=[self.r.intake, self.r.snapshot()])

    # --- 4 办结 closure -----------------------------------------------------------------------------------------
    async def close(self) -> bool:
        """Report the result; close only after the customer confirms or the window passes (002 §2.2.1)."""
        r = self.r
        if r.cls.requires_check:  # 001 §4.2 a checker's acceptance comes first
            await workflow.wait_condition(lambda: r.checked or r.stage != "resolved")
            if r.stage != "resolved":
                self.confirmation = None  # an early answer was about the result the checker sent back
                return False
        window = duration_seconds(r.pack.closure.confirmation_window)
        # new runs: the wait for the customer's answer is not the handler's time (issue 15; older runs as they ran)
        r.report_result(workflow.now(), window, pause=workflow.patched("confirmation-pauses-closure"))
        await self._await_customer("confirm", window, "confirmation window")
        confirmation, self.confirmation = self.confirmation, None
        if not r.result_answered(confirmation, workflow.now()):
            self._publish()
            return False
        if r.awaits_incident_review(workflow.now()):  # SEEDS §11: closed after the incident review
            self._publish()
            await workflow.wait_condition(lambda: r.incident.reviewed)
        r.close(workflow.now(), by_customer=confirmation is not None)
        self._publish()
        return True

    # --- 5 回访 revisit -----------------------------------------------------------------------------------------
    async def revisit(self) -> bool:
        """Survey after the policy's delay; a low score reopens the case (003 §3.4, §4.1 二次服务)."""
        r = self.r
        await workflow.sleep(duration_seconds(r.pack.revisit.delay), summary="revisit delay")
        r.open_survey(workflow.now())
        self._publish()
        await self._await_customer("survey", duration_seconds(r.pack.revisit.window), "survey window")
        answer, self.answer = self.answer, None
        if not r.survey_result(answer, workflow.now()):
            return False
        self._publish()
        return True

    async def _await_customer(self, what: str, window: int, summary: str) -> None:
        """The customer's answer, or the window's end. An answer that came early (below) is taken at once."""
        self.awaiting = what
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: (self.confirmation or self.answer) is not None,
                                          timeout=window, timeout_summary=summary)
        self.awaiting = None

    # --- agents: update `act` -----------------------------------------------------------------------------------
    @workflow.update
    async def act(self, payload: Any) -> RequestStatus:
        r, act = self.r, require(payload, Act, "act")
        if r.stage in ACCEPTING:  # it arrived while the request was being accepted: act once handling begins
            await workflow.wait_condition(lambda: r.stage not in ACCEPTING)
            if reason := r.refusal(act.actor, act.action):
                raise ApplicationError(reason, type="ActionRefused", non_retryable=True)
        latest = None
        if isinstance(act.action, Reevaluate):  # the policy's current version, to move the request onto
            latest = await self.steps.run(load_policy, r.pack.id, f"reload policy pack {r.pack.id}")
        r.apply(act.actor, act.action, workflow.now(), latest)
        self._publish()
        return r.status(workflow.now())

    @act.validator
    def validate_act(self, payload: Any) -> None:
        self._open()
        act = require(payload, Act, "act")
        if reason := self.r.refusal(act.actor, act.action, assume_handling=self.r.stage in ACCEPTING):
            raise ValueError(reason)

    # --- customers: updates `confirm` and `survey` ----------------------------------------------------------------
    @workflow.update
    def confirm(self, payload: Any) -> RequestStatus:
        """002 §2.2.1: the customer confirms the reported result, or rejects it (handling again)."""
        return self._customer_answered(require(payload, Confirm, "confirm"))

    @confirm.validator
    def validate_confirm(self, payload: Any) -> None:
        self._customer_may_answer("confirm", require(payload, Confirm, "confirm"), "no result awaits confirmation")

    @workflow.update
    def survey(self, payload: Any) -> RequestStatus:
        answer = self.answer = require(payload, SurveyAnswer, "survey")
        return self._customer_answered(answer)

    @survey.validator
    def validate_survey(self, payload: Any) -> None:
        """003 §4.2: a score within the pack's scale, while the survey is open."""
        self._customer_may_answer("survey", require(payload, SurveyAnswer, "survey"), "no survey is open")

    def _customer_may_answer(self, what: str, answer: Confirm | SurveyAnswer, closed: str) -> None:
        """Open while the question waits; also just before it opens (issue 15: a worker that died after sending the
        question retries the step, and the customer's answer can arrive with or before it): a confirmation once
        the request is resolved, a survey answer once it is closed. Each is taken once."""
        self._open()
        given = self.confirmation if what == "confirm" else self.answer
        opening = self.r.stage == ("resolved" if what == "confirm" else "closed")
        if given is not None:
            raise ValueError(f"{what}: already answered (stage {self.r.stage})")
        if self.awaiting != what and not (opening and self.awaiting is None):
            raise ValueError(f"{what}: {closed} (stage {self.r.stage})")
        if isinstance(answer, SurveyAnswer) and (reason := self.r.survey_refusal(answer)):
            raise ValueError(reason)

    def _customer_answered(self, answer: Confirm | SurveyAnswer) -> RequestStatus:
        if isinstance(answer, Confirm):
            self.confirmation = answer
        self.r.customer_answered(answer, workflow.now())
        return self.r.status(workflow.now())

    # --- supervisors: signal `escalate`; incidents: signal `incident` ------------------------------------------------
    @workflow.signal
    def escalate(self, payload: Any) -> None:
        """A supervisor raises the request one level or to a named level (refused ones are recorded as such)."""
        self._on_signal(EscalateRequest, payload, "escalate", self.r.escalate)

    @workflow.update
    def escalation(self, payload: Any) -> RequestStatus:
        """The same as signal `escalate`, but a refusal comes back to the caller (and writes nothing)."""
        self.r.escalate(require(payload, EscalateRequest, "escalation"), workflow.now())
        self._publish()
        return self.r.status(workflow.now())

    @escalation.validator
    def validate_escalation(self, payload: Any) -> None:
        self._open()
        if reason := self.r.escalation_refusal(require(payload, EscalateRequest, "escalation")):
            raise ValueError(reason)

    @workflow.signal
    def incident(self, payload: Any) -> None:
        """An incident's event reaches each linked request; the customer hears of progress from the incident."""
        self._on_signal(IncidentEvent, payload, "incident", self.r.incident_event)

    def _on_signal(self, model: type[M], payload: Any, name: str, apply: Callable[[M, datetime], bool]) -> None:
        """A signal cannot answer: a payload that does not validate is recorded as rejected by the aggregate."""
        if self.intake.problem:  # the run is failing: its intake was refused
            return
        now = workflow.now()
        message = self.r.parse_signal(model, payload, name, now)
        if message is not None and (refusal := signal_refusal()):  # no verified principal: recorded, nothing else
            self.r.refuse_signal(name, refusal, now)
        elif message is not None and apply(message, now):
            self._publish()

    def _open(self) -> None:
        if self.intake.problem:
            raise ValueError(f"{self.intake.problem} (the request was refused)")

    # --- operators: query `status` ---------------------------------------------------------------------------------
    @workflow.query
    def status(self) -> RequestStatus:
        return self.r.status(workflow.now())

    # --- timers: one per clock, plus the escalation ack timer -------------------------------------------------------
    async def watch_clock(self, name: str) -> None:
        """Sleep until this clock's next warning or breach; re-arm whenever the clock changes."""
        clocks = self.r.clocks
        while not self.done:
            rev, clock = clocks.rev(name), clocks.get(name)
            event = clock.next_event(workflow.now()) if clock else None
            if not await timer(lambda rev=rev: self.done or clocks.rev(name) != rev,
                               event.at if event else None, f"{name} {event.kind if event else ''}"):
                continue
            if clock and event:
                self.r.clock_event(clock, event, workflow.now())
                self._publish()

    async def watch_ladder(self) -> None:
        """An escalated owner who does not acknowledge within the policy's ack time lets the ladder climb."""
        r = self.r
        while not self.done:
            rev = r.ladder_rev
            if await timer(lambda rev=rev: self.done or r.ladder_rev != rev, r.ack_deadline(), "escalation ack"):
                r.ack_timed_out(workflow.now())
                self._publish()

    # --- archive, search attributes, current details ----------------------------------------------------------------
    async def flush_to_archive(self) -> None:
        """Write buffered audit events, notices and the projection in order, one activity per batch."""
        r = self.r
        while True:
            # nothing before the work order is registered (a signal can arrive before acceptance)
            await workflow.wait_condition(lambda: bool(r.ticket) and (self.done or r.outbox.pending))
            if workflow.patched("flush-once-per-task"):
                # let the steps this change woke run first (an update that resolves wakes the closure step), and
                # their local activities finish: then one write carries the whole workflow task's changes
                await asyncio.sleep(0)
                await workflow.wait_condition(lambda: self.steps.idle)
            batch = r.take_batch(workflow.now())
            if batch is None:
                return
            summary = (f"archive {len(batch.events)} event(s), {len(batch.notices)} notice(s)"
                       f"{', final record' if batch.final else ''} · stage {batch.projection.stage}")
            self.flushing = True
            await local(ArchiveActivities.persist, batch, summary)
            self.flushing = False

    def _publish(self) -> None:
        """Keep the Web UI current: search attributes (never PII) and the run's current details."""
        now = workflow.now()
        values = self.r.search_values(now)
        changed = [key for key in search.ALL if values[key.name] != self.published.get(key.name)]
        if changed:
            workflow.upsert_search_attributes([
                key.value_set(values[key.name]) if values[key.name] is not None else key.value_unset()
                for key in changed])
            self.published.update({key.name: values[key.name] for key in changed})
        workflow.set_current_details(self.r.details_markdown(now))

