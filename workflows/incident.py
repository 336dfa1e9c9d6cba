"""IncidentWorkflow: one incident (突发事件, SEEDS §11), following the manuals' flow in order.

    1 detect & report at once → 2 grade → 3 named lead → 4 handle, keep customers updated → 5 resolve → 6 review
    (000 §7.1–7.2, 001 Ch6; customers told by SMS/phone, 003 §6.4)

Each customer complaint stays its own ServiceRequestWorkflow, linked here. Every linked request gets the incident's
events in order, exactly once in effect: the events are kept in one ordered list and a single delivery task sends
them with activity `broadcast_incident` (signal `incident`; a request drops a repeated (incident_id, seq)).
Deterministic code only; every write goes through activities.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.incidents import IncidentActivities
    from activities.policy import load_policy
    from domain.request import SYSTEM
    from models.actions import Actor
    from models.incident import (
        MAX_LINK,
        CustomerUpdate,
        Declare,
        IncidentAuditEvent,
        IncidentBatch,
        IncidentCarry,
        IncidentDelivery,
        IncidentEvent,
        IncidentStatus,
        Link,
        Progress,
        Resolve,
        Review,
    )
    from models.intake import REQUEST_ID_PATTERN
    from models.policy import Incidents, duration_seconds
    from models.records import Notice
    from workflows.common import RETRY, local, require, run_tasks, timer

# Delivery to linked requests: a regular activity (it may run for minutes with 1,000 requests), heartbeating its
# progress so a retry resumes where the last attempt stopped.
BROADCAST_TIMEOUT, BROADCAST_HEARTBEAT = timedelta(minutes=10), timedelta(seconds=10)
NOTIFY_TIMEOUT = timedelta(minutes=2)
CHUNK = 250  # request ids per activity call: bounded payloads and history whatever the number of links
MAX_LINKED = 10 * MAX_LINK
DECLARE_ROLES = ("supervisor", "manager", "system")  # who declares, links, resolves and reviews (000 §7.2)
REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


@workflow.defn(name="IncidentWorkflow")
class IncidentWorkflow:
    @workflow.init
    def __init__(self, declare: Any, carried: Any = None) -> None:
        # with the optional second argument the SDK hands the first one over undecoded
        self.d = declare = declare if isinstance(declare, Declare) else Declare.model_validate(declare)
        self.rules: Incidents | None = None  # the pack's incidents section, loaded first thing in run()
        self.limit = 0  # continue as new past this many history events (the pack's), once known
        self.level, self.lead = declare.level, declare.lead
        self.stage = "open"
        self.declared_at = workflow.now()
        self.resolved_at: datetime | None = None
        self.reviewed_at: datetime | None = None
        self.review_due: datetime | None = None
        self.summary: str | None = None
        self.root_cause: str | None = None
        self.updates = 0
        self.last_update_at: datetime | None = None
        self.nudged_at: datetime | None = None  # last progress reminder
        self.progress_rev = 0
        # linked requests, in link order; [0:welcomed] have had their `linked` event and every broadcast[0:sent]
        self.linked: list[str] = []
        self.linked_set: set[str] = set()
        self.welcomed = 0
        self.broadcasts: list[IncidentEvent] = []  # progress, resolved, reviewed: the ordered event list
        self.sent = 0
        self.event_seq = 0  # IncidentEvent.seq: what a request deduplicates on
        self.missing: set[str] = set()
        # archive buffer, flushed by flush_to_archive
        self.seq = 0
        self.audit: list[IncidentAuditEvent] = []
        self.notices: list[Notice] = []
        self.new_links: list[str] = []
        self.flushing = False
        self.done = False
        self.resumed = carried is not None
        if self.resumed:  # this run continues an earlier one: its state, not a new declaration
            state = IncidentCarry.model_validate(carried)
            for name in IncidentCarry.model_fields:
                setattr(self, name, getattr(state, name))
            self.linked_set = set(self.linked)
            return
        # 1 detect: recorded at once, with the requests the declaration names
        self.record(declare.declared_by, "declared", level=declare.level, title=declare.title,
                    category=declare.category, lead=declare.lead, auto=declare.auto, policy=declare.policy,
                    description=declare.description)
        self._link(declare.request_ids, declare.declared_by, "declare")

    @workflow.run
    async def run(self, declare: Any, carried: Any = None) -> IncidentStatus:
        await run_tasks(self.lifecycle(), self.flush_to_archive(), self.deliver(), self.remind_progress(),
                        self.remind_review(), self.continue_when_full())
        return self.status()

    async def lifecycle(self) -> None:
        if not self.resumed:
            await self.report()
            self.activate_plan()
        await workflow.wait_condition(lambda: self.stage != "open")  # 4 handle (updates `update`, `link`)
        await workflow.wait_condition(lambda: self.stage == "reviewed")  # 5 resolved → 6 review (复盘)
        # 7 complete once every linked request has every event and the archive has every line
        await workflow.wait_condition(self._idle)
        self.done = True

    async def continue_when_full(self) -> None:
        """Bounded history (issue 15): with every event delivered, every line archived and no handler running, a
        large incident continues as a new run with its state."""
        await workflow.wait_condition(lambda: self.done or (self.limit > 0 and self._idle() and (
            workflow.info().is_continue_as_new_suggested()
            or workflow.info().get_current_history_length() >= self.limit)))
        if self.done:
            return
        carry = IncidentCarry.model_validate({name: getattr(self, name) for name in IncidentCarry.model_fields})
        workflow.continue_as_new(args=[self.d, carry])

    def _idle(self) -> bool:
        return self._drained() and not self._unflushed() and not self.flushing and workflow.all_handlers_finished()

    # --- 1 detect & report at once ---------------------------------------------------------------------------------
    async def report(self) -> None:
        """Tell every role of the level's reporting chain at once (000 §7.1 第一时间上报, 001 Ch6)."""
        pack = await local(load_policy, self.d.policy, f"load policy pack {self.d.policy}")
        if pack.incidents is None:
            raise ApplicationError(f"policy: pack {pack.key} has no incidents section; add one to declare incidents",
                                   type="NoIncidentPolicy", non_retryable=True)
        self.rules, self.limit = pack.incidents, pack.continue_as_new_after
        level = self.rules.levels[self.level]
        seq = self.record(SYSTEM, "reported", level=self.level, label=level.label, report_to=list(level.report_to),
                          report_within=level.report_within)
        self._tell_chain(seq, "declared", self.d.description or self.d.title)

    # --- 2 grade, 3 named lead ----------------------------------------------------------------------------------
    def activate_plan(self) -> None:
        """The response plan starts under the declared level with its named lead (regrade: update `update`)."""
        rules = self._rules()
        self.record(SYSTEM, "plan_activated", level=self.level, label=rules.levels[self.level].label, lead=self.lead,
                    update_every=rules.levels[self.level].update_every)

    # --- 4 handle: updates `link` and `update`, signal `link_request` ------------------------------------------
    @workflow.update
    def link(self, link: Link) -> IncidentStatus:
        self._link(link.request_ids, link.actor, "link")
        return self.status()

    @link.validator
    def validate_link(self, link: Link) -> None:
        require(link, Link, "link")
        self._may(link.actor, DECLARE_ROLES, "link requests")
        if self.stage == "reviewed":
            raise ValueError(f"stage: incident {self.d.incident_id} is reviewed; it takes no more links")
        bad = next((r for r in link.request_ids if not REQUEST_ID.fullmatch(r)), None)
        if bad is not None:
            raise ValueError(f"request_ids: {bad!r} is not a request id")
        if len(self.linked_set | set(link.request_ids)) > MAX_LINKED:
            raise ValueError(f"request_ids: an incident links at most {MAX_LINKED} requests")

    @workflow.signal
    def link_request(self, request_id: Any) -> None:
        """Sent by a request submitted with `incident_id`. A signal cannot answer: a refused one is recorded."""
        if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
            self.record(SYSTEM, "link", rejected=True,
                        reason=f"request_id: {str(request_id)[:80]!r} is not a request id")
        elif request_id not in self.linked_set and len(self.linked) >= MAX_LINKED:
            self.record(SYSTEM, "link", rejected=True, request_id=request_id,
                        reason=f"request_ids: an incident links at most {MAX_LINKED} requests")
        else:
            self._link([request_id], SYSTEM, "request")

    @workflow.update(name="update")
    async def progress(self, progress: Progress) -> IncidentStatus:
        """The lead's progress; every linked customer hears of it once (003 §6.4). A new level regrades."""
        await workflow.wait_condition(lambda: self.rules is not None)
        actor, rules = progress.actor, self._rules()
        self.updates += 1
        self.last_update_at = workflow.now()
        self.progress_rev += 1
        if progress.level is not None and progress.level != self.level:  # 2 grade: reassessed (000 §7.2)
            before, self.level = self.level, progress.level
            seq = self.record(actor, "regraded", before=before, after=self.level,
                              label=rules.levels[self.level].label, report_to=list(rules.levels[self.level].report_to))
            self._tell_chain(seq, "progress", f"{rules.levels[before].label} → {rules.levels[self.level].label}: "
                                              f"{progress.text}")
        self.record(actor, "progress", text=progress.text, level=self.level)
        self._broadcast("progress", progress.text)
        return self.status()

    @progress.validator
    def validate_progress(self, progress: Progress) -> None:
        require(progress, Progress, "update")
        if progress.actor.id != self.lead:
            self._may(progress.actor, DECLARE_ROLES, f"post progress (the lead {self.lead} may too)")
        self._in_stage("open", "update")

    # --- 5 resolve ------------------------------------------------------------------------------------------
    @workflow.update
    async def resolve(self, resolve: Resolve) -> IncidentStatus:
        """Every linked request moves to resolved with this summary and root cause."""
        await workflow.wait_condition(lambda: self.rules is not None)
        now = workflow.now()
        self.stage, self.resolved_at = "resolved", now
        self.summary, self.root_cause = resolve.summary, resolve.root_cause
        self.review_due = now + timedelta(seconds=duration_seconds(self._rules().review_within))
        self._announce(resolve.actor, "resolved", resolve.summary, resolve.root_cause, summary=resolve.summary,
                       root_cause=resolve.root_cause, review_due=self.review_due.isoformat())
        return self.status()

    @resolve.validator
    def validate_resolve(self, resolve: Resolve) -> None:
        self._lead_may(resolve, Resolve, "resolve", "open")

    # --- 6 review (复盘) --------------------------------------------------------------------------------------
    @workflow.update
    def review(self, review: Review) -> IncidentStatus:
        """The post-mortem; linked requests may close once it is in."""
        self.stage, self.reviewed_at = "reviewed", workflow.now()
        self._announce(review.actor, "reviewed", review.findings, None, findings=review.findings,
                       actions=list(review.actions))
        return self.status()

    @review.validator
    def validate_review(self, review: Review) -> None:
        self._lead_may(review, Review, "review", "resolved")

    # --- query `status` -------------------------------------------------------------------------------------
    @workflow.query
    def status(self) -> IncidentStatus:
        d = self.d
        return IncidentStatus(
            incident_id=d.incident_id, policy=d.policy, level=self.level, title=d.title, category=d.category,
            lead=self.lead, stage=self.stage, auto=d.auto,  # type: ignore[arg-type]
            declared_at=self.declared_at, resolved_at=self.resolved_at, reviewed_at=self.reviewed_at,
            review_due=self.review_due, summary=self.summary, root_cause=self.root_cause, linked=len(self.linked),
            updates=self.updates, broadcast_pending=len(self.broadcasts) - self.sent
            + (1 if self.welcomed < len(self.linked) else 0), last_update_at=self.last_update_at)

    # --- timers ---------------------------------------------------------------------------------------------
    async def remind_progress(self) -> None:
        """The lead posts progress at least every `update_every` of the level; otherwise a reminder goes out."""
        await workflow.wait_condition(lambda: self.rules is not None or self.stage != "open")
        while self.stage == "open":
            rev = self.progress_rev
            every = duration_seconds(self._rules().levels[self.level].update_every)
            since = max(t for t in (self.declared_at, self.last_update_at, self.nudged_at) if t is not None)
            if await timer(lambda rev=rev: self.progress_rev != rev or self.stage != "open",
                                 since + timedelta(seconds=every), "progress update due"):
                self.nudged_at = workflow.now()
                seq = self.record(SYSTEM, "progress_overdue", lead=self.lead,
                                  last_update_at=self.last_update_at.isoformat() if self.last_update_at else None)
                self._tell(seq, "owner", self.lead, "reminder",
                           f"no progress posted within {self._rules().levels[self.level].update_every}")

    async def remind_review(self) -> None:
        """After resolution, the review is due within `review_within`; a reminder goes to the lead otherwise."""
        await workflow.wait_condition(lambda: self.stage != "open")
        due = self.review_due
        while self.stage == "resolved" and due is not None:
            if await timer(lambda: self.stage != "resolved", due, "review due"):
                seq = self.record(SYSTEM, "review_overdue", lead=self.lead, review_due=due.isoformat())
                self._tell(seq, "owner", self.lead, "reminder", f"review (复盘) due {due.isoformat()} is not in")
                due = workflow.now() + timedelta(seconds=duration_seconds(self._rules().review_within))


    # --- delivery to linked requests -------------------------------------------------------------------------
    async def deliver(self) -> None:
        """One task, one pass at a time: new links first get `linked` (plus resolved/reviewed if already so), then
        every pending event goes to every welcomed request, in list order. Each request sees each event once."""
        while True:
            await workflow.wait_condition(lambda: self.done or not self._drained())
            if self.done:
                return
            if self.welcomed < len(self.linked):
                end = len(self.linked)
                fresh = self.linked[self.welcomed:end]
                catch_up = [e for e in self.broadcasts[:self.sent] if e.kind in ("resolved", "reviewed")]
                await self._send([self._event("linked", self.summary or self.d.title), *catch_up], fresh)
                self.welcomed = end
            if self.sent < len(self.broadcasts):
                end = len(self.broadcasts)
                events, audience = self.broadcasts[self.sent:end], self.linked[:self.welcomed]
                if audience:
                    await self._send(events, audience)
                    for event in events:
                        if event.kind == "progress":
                            await self._tell_customers(event, audience)
                self.sent = end

    async def _send(self, events: list[IncidentEvent], request_ids: list[str]) -> None:
        chunks = [request_ids[i:i + CHUNK] for i in range(0, len(request_ids), CHUNK)]
        kinds = "+".join(e.kind for e in events)
        reports = await asyncio.gather(*(
            workflow.execute_activity_method(
                IncidentActivities.broadcast_incident,
                IncidentDelivery(incident_id=self.d.incident_id, events=events, request_ids=ids),
                summary=f"{kinds} to {len(ids)} request(s)", start_to_close_timeout=BROADCAST_TIMEOUT,
                heartbeat_timeout=BROADCAST_HEARTBEAT, retry_policy=RETRY)
            for ids in chunks))
        missing = sorted({r for report in reports for r in report.missing} - self.missing)
        if missing:  # counted, not fatal: a request that never started or has completed
            self.missing.update(missing)
            self.record(SYSTEM, "broadcast_missing", events=[e.seq for e in events], count=len(missing),
                        request_ids=missing[:50])

    async def _tell_customers(self, event: IncidentEvent, request_ids: list[str]) -> None:
        for i in range(0, len(request_ids), CHUNK):
            await workflow.execute_activity_method(
                IncidentActivities.notify_incident_customers,
                CustomerUpdate(event=event, request_ids=request_ids[i:i + CHUNK]),
                summary=f"tell customers: {event.kind} #{event.seq}", start_to_close_timeout=NOTIFY_TIMEOUT,
                retry_policy=RETRY)

    def _drained(self) -> bool:
        return self.welcomed == len(self.linked) and self.sent == len(self.broadcasts)

    def _event(self, kind: str, text: str, root_cause: str | None = None) -> IncidentEvent:
        seq, self.event_seq = self.event_seq, self.event_seq + 1
        return IncidentEvent(incident_id=self.d.incident_id, seq=seq, kind=kind, level=self.level,  # type: ignore[arg-type]
                             title=self.d.title, lead=self.lead, text=text, root_cause=root_cause, at=workflow.now())

    def _broadcast(self, kind: str, text: str, root_cause: str | None = None) -> None:
        self.broadcasts.append(self._event(kind, text, root_cause))

    def _link(self, request_ids: list[str], actor: Actor, via: str) -> None:
        fresh = [r for r in dict.fromkeys(request_ids) if r not in self.linked_set]
        if not fresh:
            return
        self.linked += fresh
        self.linked_set.update(fresh)
        self.new_links += fresh
        self.record(actor, "linked", via=via, count=len(fresh), total=len(self.linked), request_ids=fresh[:50])

    # --- archive ----------------------------------------------------------------------------------------------
    def record(self, actor: Actor, action: str, rejected: bool = False, **detail: Any) -> int:
        """Append to the incident's operation log (000 §3.2); returns the line's sequence number."""
        seq, self.seq = self.seq, self.seq + 1
        self.audit.append(IncidentAuditEvent(incident_id=self.d.incident_id, seq=seq, at=workflow.now(),
                                             actor_id=actor.id, actor_role=actor.role, action=action, detail=detail,
                                             rejected=rejected))
        return seq

    def _announce(self, actor: Actor, kind: str, text: str, root_cause: str | None, /, **detail: Any) -> None:
        """Recorded, sent to every linked request, and told to the level's reporting chain."""
        seq = self.record(actor, kind, **detail)
        self._broadcast(kind, text, root_cause)
        self._tell_chain(seq, kind, text)

    def _tell_chain(self, seq: int, kind: str, text: str) -> None:
        for role in self._rules().levels[self.level].report_to:
            self._tell(seq, "escalation", role, kind, text)

    def _tell(self, seq: int, audience: str, recipient: str, kind: str, text: str) -> None:
        incident_id = self.d.incident_id
        self.notices.append(Notice(
            key=f"incident:{incident_id}:{seq}:to:{recipient}", request_id=incident_id, template="incident",
            audience=audience, recipient=recipient,  # type: ignore[arg-type]
            context={"ticket": incident_id, "incident_id": incident_id, "title": self.d.title, "kind": kind,
                     "text": text}))

    async def flush_to_archive(self) -> None:
        """Audit lines, links, notices and the projection, one local activity per batch (idempotent writes)."""
        while True:
            await workflow.wait_condition(lambda: self.done or self._unflushed())
            if not self._unflushed():
                return
            batch = IncidentBatch(projection=self.status(), updated_at=workflow.now(), events=self.audit,
                                  links=self.new_links, notices=self.notices)
            self.audit, self.notices, self.new_links = [], [], []
            self.flushing = True
            await local(IncidentActivities.persist_incident, batch, f"archive {len(batch.events)} event(s), "
                        f"{len(batch.links)} link(s), {len(batch.notices)} notice(s) · {self.stage}")
            self.flushing = False

    def _unflushed(self) -> bool:
        return bool(self.audit or self.notices or self.new_links)

    # --- checks -----------------------------------------------------------------------------------------------
    def _may(self, actor: Actor, roles: tuple[str, ...], what: str) -> None:
        if actor.role not in roles:
            raise ValueError(f"actor.role: {actor.role} may not {what} (needs {', '.join(roles)})")

    def _lead_may(self, payload: Resolve | Review, model: type, update: str, stage: str) -> None:
        """The incident's resolve and review: by a supervisor and above, in the stage the flow has reached."""
        require(payload, model, update)
        self._may(payload.actor, DECLARE_ROLES, f"{update} the incident")
        self._in_stage(stage, update)

    def _in_stage(self, stage: str, update: str) -> None:
        if self.stage != stage:
            raise ValueError(f"stage: {update} needs an incident that is {stage}; "
                             f"{self.d.incident_id} is {self.stage}")

    def _rules(self) -> Incidents:
        if self.rules is None:
            raise ApplicationError("incident policy not loaded yet", non_retryable=True)
        return self.rules

