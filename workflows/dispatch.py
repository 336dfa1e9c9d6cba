"""Dispatch (派单) steps of ServiceRequestWorkflow: 001 §4.1-4.2 assignment by type, skill, schedule and capacity;
003 §1.1 the work order is assigned automatically within the policy's limit, and an assignee who does not accept in
time (or declines) loses it to the next candidate.

The agent directory and its row locks live in archive/directory.py (activities/assignment.py); the request's rules
in domain/request.py. Here only the deterministic loop: offer, return timer, retry. Deterministic code only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.assignment import AssignmentActivities
    from domain.request import ServiceRequest
    from models.assignment import AssignResult, Release, ReleaseReason
    from models.policy import Assignment, duration_seconds
    from workflows.common import LocalSteps


class Dispatcher:
    def __init__(self, request: ServiceRequest, steps: LocalSteps, publish: Callable[[], None]) -> None:
        self.r = request
        self.steps = steps
        self.publish = publish

    async def run(self) -> None:
        """Offer the case until someone takes it. The offer waits `accept_within`; then the case returns and goes
        to the next candidate. Every candidate full: retry every `retry_every`. No directory: the queue."""
        r, d = self.r, self.r.dispatch
        rule = r.pack.assignment
        if rule is None:  # the pack has no dispatch (e.g. reevaluated onto a version without it): the queue
            d.wanted = False
            return
        team, prefer, waiting = rule.teams.get(r.department), r.owner, ""
        try:
            while r.stage == "handling" and d.wanted:
                d.attempts += 1
                attempt = d.attempts
                result = await self.steps.run(
                    AssignmentActivities.assign_agent, r.assign_request(attempt, team, prefer, workflow.now()),
                    f"dispatch to {team or r.department} (attempt {attempt})")
                now = workflow.now()
                r.dispatch_answered(result, now)
                if result.agent_id and (r.stage != "handling" or not d.wanted):  # taken meanwhile
                    await self.release_agent(result.agent_id, attempt, "reassigned")
                    return
                if result.agent_id is None:
                    if result.reason != waiting:
                        waiting = result.reason
                        r.dispatch_waiting(result, team or r.department, now)
                        self.publish()
                    if result.reason == "no_agents":  # no directory for this team: agents take it from the queue
                        return
                    if result.reason == "none_on_duty" and d.returned_by:
                        d.returned_by.clear()  # everyone on duty let it return once: offer it round again
                    with contextlib.suppress(TimeoutError):
                        await workflow.wait_condition(lambda: not d.wanted or r.stage != "handling",
                                                      timeout=duration_seconds(rule.retry_every),
                                                      timeout_summary="dispatch retry")
                    continue
                if not await self._offer(rule, result, attempt, prefer):
                    prefer = None
                    continue
                return
        finally:
            d.wanted = False

    async def _offer(self, rule: Assignment, result: AssignResult, attempt: int, before: str | None) -> bool:
        """Offer the case to the chosen agent; False when it came back (declined or the return timer ran out)."""
        r = self.r
        accept_within = duration_seconds(rule.accept_within)
        agent = r.offer(result, attempt, before, workflow.now() + timedelta(seconds=accept_within), workflow.now())
        self.publish()
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: r.offer_settled(agent) or r.dispatch.declined,
                                          timeout=accept_within, timeout_summary="return timer")
        if r.offer_settled(agent):
            return True
        why = r.return_reason()
        await self.release("returned")
        r.returned(agent, why, workflow.now())
        self.publish()
        return False

    async def release(self, reason: ReleaseReason) -> None:
        """The held capacity slot, if any, is free again."""
        if hold := self.r.dispatch.hold:
            self.r.dispatch.hold = None
            await self.release_agent(*hold, reason)

    async def release_agent(self, agent: str, attempt: int, reason: ReleaseReason) -> None:
        """Idempotent per request and attempt (archive/directory.py)."""
        await self.steps.run(AssignmentActivities.release_agent,
                             Release(request_id=self.r.intake.request_id, attempt=attempt, agent_id=agent,
                                     reason=reason),
                             f"release {agent} ({reason})")
