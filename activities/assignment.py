"""Assignment activities: hold an agent for a work order, end the hold (001 §4.1, 003 §1.1, 003 §2.2).

Synchronous: the workflow runs them as local activities on the worker's thread pool. Both are idempotent
(archive/directory.py): the same (request_id, attempt) always returns the same agent, and a hold ends once.
"""

from __future__ import annotations

from structlog.contextvars import bound_contextvars
from temporalio import activity

from activities.common import attempt, uninterrupted
from archive.directory import Directory
from infra.logconfig import get_logger
from models.assignment import AssignRequest, AssignResult, Release

log = get_logger(__name__)


class AssignmentActivities:
    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    @activity.defn(name="assign_agent")
    def assign_agent(self, req: AssignRequest) -> AssignResult:
        """Pick and hold the best-ranked agent with room; reason says why nobody was when agent_id is None."""
        with uninterrupted(), bound_contextvars(request_id=req.request_id, attempt=attempt()):
            result = self._directory.assign(req)
            log.info("assignment", strategy=req.strategy, team=req.team, assign_attempt=req.attempt,
                     agent_id=result.agent_id, reason=result.reason, load=result.load, capacity=result.capacity,
                     candidates=result.candidates)
            return result

    @activity.defn(name="release_agent")
    def release_agent(self, rel: Release) -> bool:
        """End the hold; True only for the call that ended it (retries return False and change nothing)."""
        with uninterrupted(), bound_contextvars(request_id=rel.request_id, attempt=attempt()):
            released = self._directory.release(rel)
            log.info("assignment released", agent_id=rel.agent_id, assign_attempt=rel.attempt, reason=rel.reason,
                     released=released)
            return released
