"""Dispatch (派单) for ServiceRequestWorkflow: 001 §4.1-4.2 assignment by type, skill, schedule and capacity; 003 §1.1
the work order is assigned automatically within the policy's limit, and an assignee who does not accept in time
(or declines) loses it to the next candidate. The agent directory and its row locks live in archive/directory.py;
here only the deterministic steps. Mixed into ServiceRequestWorkflow (which provides s, _pack, _publish).
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.ledger import SlaClock
    from models.actions import Actor
    from models.assignment import AssignRequest, AssignResult, Release
    from models.policy import ClockSpec, duration_seconds
    from workflows.request_state import SYSTEM, run_local

if TYPE_CHECKING:
    from models.policy import PolicyPack
    from workflows.request_state import RequestState


class DispatchSteps:
    s: RequestState

    if TYPE_CHECKING:
        def _pack(self) -> PolicyPack: ...
        def _publish(self) -> None: ...

    async def dispatch(self) -> None:
        """001 §4.2 task assignment by type, resources and schedule; 003 §1.1 assigned automatically within the
        policy's limit. The offer waits `accept_within`; then the case returns and goes to the next candidate."""
        s, pack = self.s, self._pack()
        rule = pack.assignment
        assert rule is not None
        team, prefer, waiting = rule.teams.get(s.department), s.owner, ""
        try:
            while s.stage == "handling" and s.dispatch_wanted:
                s.assign_attempts += 1
                attempt = s.assign_attempts
                result = await run_local(s, "assign_agent", self._assign_request(attempt, team, prefer),
                                         f"dispatch to {team or s.department} (attempt {attempt})", AssignResult)
                now = workflow.now()
                if "assignment" not in s.clocks and result.reason != "no_agents":
                    # the limit runs from the start of handling; a center without a directory has none (the
                    # first-response clock covers pick-up from the queue)
                    spec = ClockSpec(target=rule.within, pausable=False, source=rule.source or "003 §1.1")
                    s.clocks["assignment"] = SlaClock.start("assignment", spec, pack.calendar,
                                                            s.timeline.get("handling", now))
                    s.touch_clock("assignment")
                if result.agent_id and (s.stage != "handling" or not s.dispatch_wanted):  # taken meanwhile
                    await self._release_agent(result.agent_id, attempt, "reassigned")
                    return
                if result.agent_id is None:
                    if result.reason != waiting:
                        waiting = result.reason
                        s.record(now, SYSTEM.id, "system", "dispatch_waiting", reason=result.reason,
                                 team=team or s.department, candidates=result.candidates)
                        self._publish()
                    if result.reason == "no_agents":  # no directory for this team: agents take it from the queue
                        return
                    if result.reason == "none_on_duty" and s.returned_by:
                        s.returned_by.clear()  # everyone on duty let it return once: offer it round again
                    with contextlib.suppress(TimeoutError):
                        await workflow.wait_condition(lambda: not s.dispatch_wanted or s.stage != "handling",
                                                      timeout=duration_seconds(rule.retry_every),
                                                      timeout_summary="dispatch retry")
                    continue
                if not await self._offer(result, attempt, prefer):
                    prefer = None
                    continue
                return
        finally:
            s.dispatch_wanted = False

    async def _offer(self, result: AssignResult, attempt: int, before: str | None) -> bool:
        """Offer the case to the chosen agent; False when it came back (declined or the return timer ran out)."""
        s, rule, now = self.s, self._pack().assignment, workflow.now()
        agent = result.agent_id or ""
        s.hold, s.team, s.owner, s.taken, s.declined = (agent, attempt), result.team or s.team, agent, False, False
        s.sub_state = "assigned"
        accept_within = duration_seconds(rule.accept_within)  # type: ignore[union-attr]
        accept_by = (now + timedelta(seconds=accept_within)).isoformat()
        seq = s.record(now, SYSTEM.id, "system", "assign", before=before, after=agent, team=s.team,
                       strategy=rule.strategy, attempt=attempt, load=result.load,  # type: ignore[union-attr]
                       capacity=result.capacity, accept_by=accept_by)
        s.notify(seq, "assignment", "owner", agent, accept_by=accept_by, team=s.team)
        self._publish()
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: s.taken or s.declined or s.owner != agent or s.stage != "handling",
                                          timeout=accept_within, timeout_summary="return timer")
        if s.taken or s.owner != agent or s.stage != "handling":
            return True
        # 退回: the assignee declined or did not accept in time; the next candidate gets it
        why = "declined" if s.declined else f"not accepted within {rule.accept_within}"  # type: ignore[union-attr]
        await self._release("returned")
        s.returned_by.append(agent)
        s.owner, s.sub_state = None, "pending"
        s.record(workflow.now(), SYSTEM.id, "system", "assignment_returned", agent=agent, reason=why,
                 attributed_to=agent)
        self._publish()
        return False

    def _assign_request(self, attempt: int, team: str | None, prefer: str | None) -> AssignRequest:
        s, rule = self.s, self._pack().assignment
        return AssignRequest(
            request_id=s.intake.request_id, attempt=attempt, strategy=rule.strategy,  # type: ignore[union-attr]
            team=team, department=s.department, request_type=s.cls.request_type,  # type: ignore[union-attr]
            category=s.cls.category, language=s.intake.customer.language,  # type: ignore[union-attr]
            channel=s.intake.channel, region=s.intake.region, prefer=prefer, exclude=list(s.returned_by),
            at=workflow.now())

    async def _release(self, reason: str) -> None:
        if self.s.hold:
            agent, attempt = self.s.hold
            self.s.hold = None
            await self._release_agent(agent, attempt, reason)

    async def _release_agent(self, agent: str, attempt: int, reason: str) -> None:
        """The agent's capacity slot is free again (idempotent per request and attempt)."""
        await run_local(self.s, "release_agent", Release(request_id=self.s.intake.request_id, attempt=attempt,
                                                         agent_id=agent, reason=reason),  # type: ignore[arg-type]
                        f"release {agent} ({reason})")

    def _taken(self, now: datetime) -> None:
        """The work order has its handler: the assignment clock stops and dispatch ends (003 §1.1)."""
        s = self.s
        s.taken, s.dispatch_wanted = True, False
        clock = s.clocks.get("assignment")
        if clock and clock.running:
            clock.stop(now)
            s.touch_clock("assignment")

    def do_accept(self, actor: Actor, now: datetime, comment: str) -> None:
        """接单: the assignee takes the offered case."""
        s = self.s
        self._taken(now)
        s.sub_state = "in_progress" if s.first_response_at else "pending"
        s.record(now, actor.id, actor.role, "accept", comment=comment, team=s.team)

    def do_decline(self, actor: Actor, now: datetime, reason: str) -> None:
        self.s.declined = True
        self.s.record(now, actor.id, actor.role, "decline", reason=reason)
