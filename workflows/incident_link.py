"""Incident steps of ServiceRequestWorkflow (突发事件, SEEDS §11): each complaint stays its own request, linked to
the incident. IncidentWorkflow (workflows/incident.py) delivers its events by signal `incident`; the rules for
applying them are in domain/request.py. Deterministic code only.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.incidents import IncidentActivities
    from domain.request import ServiceRequest
    from models.incident import ComplaintSeen, incident_workflow_id
    from workflows.common import LocalSteps


async def link_incident(request: ServiceRequest, incident_id: str) -> None:
    """Tell the incident about a request submitted with its id; it answers with signal `incident`."""
    try:
        await workflow.get_external_workflow_handle(incident_workflow_id(incident_id)).signal(
            "link_request", request.intake.request_id)
    except FailureError as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else "incident not found"
        request.incident_link_failed(incident_id, reason, workflow.now())


async def watch_for_incident(request: ServiceRequest, steps: LocalSteps, publish: Callable[[], None]) -> None:
    """000 §7.1: a surge of complaints of one category from many customers raises (or joins) an incident."""
    pack, cls = request.pack, request.cls
    auto = pack.incidents.auto if pack.incidents else None
    if not auto or request.incident.id or cls.request_type not in auto.request_types:
        return
    seen = ComplaintSeen(request_id=request.intake.request_id, policy=pack.id, request_type=cls.request_type,
                         category=cls.category, customer_id=request.intake.customer.id, at=workflow.now())
    found = await steps.run(IncidentActivities.watch_complaints, seen, "incident detector")
    if found and not request.incident.id:
        request.incident_detected(str(found), workflow.now())
        publish()
