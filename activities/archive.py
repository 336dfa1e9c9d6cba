"""Archive activities: register the work order, persist one transition (projection, audit, outbox, archive).

Synchronous: the worker runs them on its activity_executor thread pool. Both are idempotent (archive/store.py),
so Temporal's retries and workflow replays are safe. A transition's notices are rendered here, for the contact the
archive reads, before the archive's transaction; the newly queued ones are logged once it has committed.
Imports the archive, models, infra.logconfig and the notifier beside it.
"""

from __future__ import annotations

from structlog.contextvars import bound_contextvars
from temporalio import activity

from activities.common import attempt, uninterrupted
from activities.notify import Notifier
from archive.store import Archive
from infra.logconfig import get_logger
from models.records import Outgoing, PersistBatch, Registered, Registration, Rejection

log = get_logger(__name__)


class ArchiveActivities:
    def __init__(self, archive: Archive, notifier: Notifier) -> None:
        self._archive = archive
        self._notifier = notifier

    @activity.defn(name="register_request")
    def register_request(self, reg: Registration) -> Registered:
        """Acceptance: the work order gets its ticket (002 §2.1.2)."""
        with uninterrupted(), bound_contextvars(request_id=reg.request_id, attempt=attempt()):
            registered = self._archive.register(reg)
            log.info("request registered", ticket=registered.ticket, created=registered.created)
            return registered

    @activity.defn(name="reject_intake")
    def reject_intake(self, rejection: Rejection) -> bool:
        """A refused intake leaves a `rejected` row; one log line naming the field, never the values."""
        with uninterrupted(), bound_contextvars(request_id=rejection.request_id, attempt=attempt()):
            written = self._archive.reject(rejection)
            log.warning("intake rejected", workflow_id=rejection.workflow_id, reason=rejection.reason,
                        written=written)
            return written

    @activity.defn(name="persist")
    def persist(self, batch: PersistBatch) -> int:
        """One transition's writes in one transaction; returns the number of notices newly queued."""
        projection = batch.projection
        with uninterrupted(), bound_contextvars(request_id=projection.request_id, attempt=attempt()):
            queued = self._notifier.queued_all(self._archive.persist(batch, self._render(batch)))
            log.info(
                "transition persisted",
                stage=projection.stage,
                events=len(batch.events),
                notices_queued=queued,
                final=batch.final,
            )
            return queued

    def _render(self, batch: PersistBatch) -> list[Outgoing]:
        """The batch's notices with their messages (a template missing a context key raises, nothing is written)."""
        if not batch.notices:
            return []
        return self._notifier.render_all(batch.notices, self._archive.notice_contact(batch))
