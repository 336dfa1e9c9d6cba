"""Incident activities (突发事件, SEEDS §11): deliver the incident's events to linked requests, tell their customers,
archive the incident's audit trail, and detect a surge of complaints (000 §7.1).

Every one is idempotent: a request drops a repeated (incident_id, seq); notices, audit lines, links and sightings
are INSERT … ON CONFLICT DO NOTHING (archive/incidents.py). Retries and replays are therefore safe. Notices are
built and rendered here, before the archive's transaction; the newly queued ones are logged once it has committed.
Imports the archive, models, policies, infra.logconfig and the notifier beside it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from datetime import UTC, timedelta
from typing import Any

from structlog.contextvars import bound_contextvars
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.common import attempt, uninterrupted
from activities.notify import Notifier
from archive import incidents as store
from archive.store import Archive
from infra.logconfig import get_logger
from infra.principal import SYSTEM, acting_as
from models.actions import Actor
from models.incident import (
    MAX_LINK,
    ComplaintSeen,
    CustomerUpdate,
    Declare,
    DeliveryReport,
    IncidentBatch,
    IncidentDelivery,
    IncidentEvent,
    incident_workflow_id,
)
from models.intake import workflow_id_for
from models.policy import duration_seconds
from models.records import Notice, Outgoing
from policies.loader import PolicyError, get_pack

log = get_logger(__name__)
SIGNAL = "incident"  # ServiceRequestWorkflow's signal taking an IncidentEvent


def auto_incident_id(seen: ComplaintSeen) -> str:
    """One detected incident per policy, category and UTC day: auto-<policy>-<category>-<YYYY-MM-DD>."""
    return f"auto-{seen.policy}-{seen.category or 'none'}-{seen.at.astimezone(UTC):%Y-%m-%d}"[:64]


def customer_notice(event: IncidentEvent, contact: Mapping[str, Any]) -> Notice:
    """003 §6.4: a customer hears of each incident event once, however many linked requests they have (key
    incident:<incident>:<seq>:<customer>), about the request `contact` is (archive/incidents.py first_contacts)."""
    return Notice(
        key=f"incident:{event.incident_id}:{event.seq}:{contact['customer_id']}", request_id=contact["request_id"],
        template="incident", audience="customer", recipient="customer", language=contact["customer_language"],
        context={"incident_id": event.incident_id, "title": event.title, "kind": event.kind, "text": event.text})


class IncidentActivities:
    def __init__(self, client: Client, archive: Archive, notifier: Notifier, concurrency: int | None = None) -> None:
        self._client = client
        self._archive = archive
        self._notifier = notifier
        # signals in flight per broadcast call (KEFU_BROADCAST_CONCURRENCY; the dev server takes ~50 at once)
        self._concurrency = concurrency or int(os.environ.get("KEFU_BROADCAST_CONCURRENCY", "32"))

    @activity.defn(name="broadcast_incident")
    async def broadcast_incident(self, delivery: IncidentDelivery) -> DeliveryReport:
        """Signal the events, in order, to every request (in parallel, at most `concurrency` at once). Heartbeats
        how many leading requests are done; a retry starts from there (a repeat is dropped by the request)."""
        ids = delivery.request_ids
        details = activity.info().heartbeat_details
        start = int(details[0]) if details else 0
        missing: list[str] = list(details[1]) if len(details) > 1 else []
        done = [False] * len(ids)
        prefix = start
        gate = asyncio.Semaphore(self._concurrency)

        async def one(index: int) -> None:
            nonlocal prefix
            handle = self._client.get_workflow_handle(workflow_id_for(ids[index]))
            async with gate:
                for event in delivery.events:
                    try:
                        with acting_as(SYSTEM):  # the engine's own signature: role system
                            await handle.signal(SIGNAL, event)
                    except RPCError as exc:
                        if exc.status != RPCStatusCode.NOT_FOUND:
                            raise
                        missing.append(ids[index])  # never started, or completed already: counted, not fatal
                        break
            done[index] = True
            while prefix < len(ids) and done[prefix]:
                prefix += 1
            activity.heartbeat(prefix, sorted(set(missing)))

        with bound_contextvars(incident_id=delivery.incident_id, attempt=attempt()):
            async with asyncio.TaskGroup() as group:
                for index in range(start, len(ids)):
                    group.create_task(one(index))
            report = DeliveryReport(delivered=len(ids) - len(set(missing)), missing=sorted(set(missing)))
            log.info("incident events delivered", events=[e.seq for e in delivery.events], requests=len(ids),
                     resumed_at=start, missing=len(report.missing))
            return report

    @activity.defn(name="notify_incident_customers")
    def notify_incident_customers(self, update: CustomerUpdate) -> int:
        """One notice per distinct customer of these requests (003 §6.4); returns how many were newly queued."""
        with uninterrupted(), bound_contextvars(incident_id=update.event.incident_id, attempt=attempt()):
            rendered: list[Outgoing] = []
            for contact in store.first_contacts(self._archive, update.request_ids):
                notice = customer_notice(update.event, contact)
                rendered.append((notice, self._notifier.render(notice, contact)))
            return self._notifier.queued_all(store.queue_customer_notices(self._archive, rendered))

    @activity.defn(name="persist_incident")
    def persist_incident(self, batch: IncidentBatch) -> int:
        """The incident's projection, audit lines, links and internal notices; returns the notices newly queued."""
        with uninterrupted(), bound_contextvars(incident_id=batch.projection.incident_id, attempt=attempt()):
            contact = {"ticket": batch.projection.incident_id}  # internal notices: the incident stands in for a ticket
            rendered = self._notifier.render_all(batch.notices, contact)
            queued = self._notifier.queued_all(store.persist_incident(self._archive, batch, rendered))
            log.info("incident persisted", stage=batch.projection.stage, events=len(batch.events),
                     links=len(batch.links), notices_queued=queued)
            return queued

    @activity.defn(name="watch_complaints")
    async def watch_complaints(self, seen: ComplaintSeen) -> str | None:
        """Record a classified request; when complaints of its policy and category come from `auto.customers`
        distinct customers within `auto.window`, raise (or join) the day's incident (000 §7.1). Returns the
        incident id this request is linked to, or None."""
        try:
            pack = get_pack(seen.policy)
        except PolicyError:
            return None
        auto = pack.incidents.auto if pack.incidents else None
        if auto is None or seen.request_type not in auto.request_types:
            return None
        since = seen.at - timedelta(seconds=duration_seconds(auto.window))
        customers, request_ids = await asyncio.to_thread(store.record_complaint, self._archive, seen, since, MAX_LINK)
        if customers < auto.customers:
            return None
        incident_id = auto_incident_id(seen)
        declare = Declare(
            incident_id=incident_id, policy=seen.policy, level=auto.level, lead=auto.lead, auto=True,
            category=seen.category, request_ids=request_ids, declared_by=Actor(id="kefu", role="system"),
            title=f"complaint surge: {seen.category or seen.request_type} ({customers} customers within {auto.window})")
        try:
            # signal-with-start: raise the incident, or join it when another request raised it first
            await self._client.start_workflow(
                "IncidentWorkflow", declare, id=incident_workflow_id(incident_id),
                task_queue=activity.info().task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, start_signal="link_request",
                start_signal_args=[seen.request_id], static_summary=f"incident {incident_id} (auto)")
        except WorkflowAlreadyStartedError:
            return None  # today's incident was reviewed and closed: this complaint stands alone
        with bound_contextvars(request_id=seen.request_id, incident_id=incident_id):
            log.info("complaint linked to incident", customers=customers)
        return incident_id
