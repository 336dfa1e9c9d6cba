"""Incident links for ServiceRequestWorkflow (突发事件, SEEDS §11): each complaint stays its own request, linked to
the incident; the incident's resolution resolves it and it closes after the incident review. The IncidentWorkflow
(workflows/incident.py) delivers its events by signal `incident`. Mixed into ServiceRequestWorkflow.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():

    from models.actions import Actor
    from models.incident import ComplaintSeen, IncidentEvent, incident_workflow_id
    from workflows.request_state import SYSTEM, run_local

if TYPE_CHECKING:
    from models.policy import PolicyPack
    from workflows.request_state import RequestState


class IncidentLinkSteps:
    s: RequestState

    if TYPE_CHECKING:
        def _pack(self) -> PolicyPack: ...
        def _publish(self) -> None: ...
        def _responded(self, actor: Actor, now: datetime) -> None: ...
        def do_resolve(self, actor: Actor, now: datetime, summary: str, root_cause: str | None,
                       decision: str | None) -> None: ...

    @workflow.signal
    def incident(self, payload: Any) -> None:
        """An incident's event reaches each linked request; (incident_id, seq) applies it once however often it
        is delivered. The customer hears of progress from the incident itself, once per customer."""
        s, now = self.s, workflow.now()
        event = s.decode(IncidentEvent, payload, "incident", now)
        if event is None:
            return
        key = f"{event.incident_id}:{event.seq}"
        if key in s.incident_seen:
            return
        if s.incident_id and s.incident_id != event.incident_id:
            s.record(now, event.lead, "supervisor", f"incident_{event.kind}", rejected=True,
                     reason=f"incident: already linked to incident {s.incident_id}", incident_id=event.incident_id)
            return
        s.incident_seen.add(key)
        s.incident_id, s.incident_linked = event.incident_id, True
        detail = {"incident_id": event.incident_id, "seq": event.seq, "level": event.level, "title": event.title}
        if event.kind == "linked":
            s.record(now, event.lead, "supervisor", "incident_linked", lead=event.lead, **detail)
        elif event.kind == "progress":
            s.record(now, event.lead, "supervisor", "incident_update", text=event.text, **detail)
        elif event.kind == "resolved":
            s.record(now, event.lead, "supervisor", "incident_resolved", summary=event.text,
                     root_cause=event.root_cause, **detail)
            if s.stage == "handling":
                self._resolve_by_incident(event)
            elif s.stage in ("received", "accepted", "classified"):
                s.incident_resolution = event  # applied when handling begins
        else:
            s.incident_reviewed = True
            s.record(now, event.lead, "supervisor", "incident_reviewed", findings=event.text, **detail)
        self._publish()

    def _resolve_by_incident(self, event: IncidentEvent) -> None:
        """Resolving the incident resolves each linked request in handling with the incident's summary."""
        s, now = self.s, workflow.now()
        s.incident_resolution = None
        lead = Actor(id=event.lead, role="supervisor")
        if not s.first_response_at:  # the incident's notices answered the customer
            self._responded(lead, now)
        self.do_resolve(lead, now, summary=event.text, root_cause=event.root_cause, decision=None)

    async def _link_incident(self, incident_id: str) -> None:
        """Tell the incident about a request submitted with its id; it answers with signal `incident`."""
        s = self.s
        try:
            await workflow.get_external_workflow_handle(incident_workflow_id(incident_id)).signal(
                "link_request", s.intake.request_id)
        except FailureError as exc:
            s.incident_id = None
            s.record(workflow.now(), SYSTEM.id, "system", "incident_link_failed", incident_id=incident_id,
                     reason=str(exc).splitlines()[0][:200] if str(exc) else "incident not found")

    async def watch_for_incident(self) -> None:
        """000 §7.1: a surge of complaints of one category from many customers raises (or joins) an incident."""
        s, pack = self.s, self._pack()
        auto = pack.incidents.auto if pack.incidents else None
        if not auto or s.incident_id or s.cls is None or s.cls.request_type not in auto.request_types:
            return
        seen = ComplaintSeen(request_id=s.intake.request_id, policy=pack.id, request_type=s.cls.request_type,
                             category=s.cls.category, customer_id=s.intake.customer.id, at=workflow.now())
        found = await run_local(s, "watch_complaints", seen, "incident detector")
        if found and not s.incident_id:
            s.incident_id = str(found)
            s.record(workflow.now(), SYSTEM.id, "system", "incident_detected", incident_id=s.incident_id,
                     category=s.cls.category)
            self._publish()
