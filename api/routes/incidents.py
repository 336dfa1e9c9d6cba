"""Incidents (突发事件, SEEDS §11; docs/incidents.md): declare, link, update, resolve, review, show, list.

Declaring starts the incident's workflow (supervisor and above, 000 §7.2); the others are its updates, sent as the
caller, so the workflow's own rules decide (the lead or a supervisor) and a refusal is a 422 with its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from temporalio.service import RPCError

from api.bodies import DeclareBody, LinkBody, ProgressBody, ResolveBody, ReviewBody, as_caller
from api.declare import declare_incident
from api.deps import IdempotencyKey, Staff, State, at_least
from api.temporal import act_as, rpc_problem
from archive.incidents import list_incidents
from infra.principal import Principal
from models.incident import Declare, IncidentStatus, Link, Progress, Resolve, Review, incident_workflow_id
from workflows.incident import IncidentWorkflow

router = APIRouter(prefix="/incidents", tags=["incidents"])
Declarer = Annotated[Principal, Depends(at_least("supervisor", "declare an incident"))]


@router.post("", status_code=201, response_model=IncidentStatus)
async def declare(body: DeclareBody, app: State, caller: Declarer) -> IncidentStatus:
    """Declare an incident; an incident id is declared once (409 after)."""
    declaration = as_caller(body, Declare, caller, field="declared_by")
    handle = await declare_incident(app.client, declaration, task_queue=app.task_queue)
    return await _status(app, declaration.incident_id, handle.id)


@router.get("")
def incidents(app: State, caller: Staff, stage: Literal["open", "resolved", "reviewed"] | None = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, Any]]:
    """Incidents from the archive, newest first."""
    return list_incidents(app.archive, stage=stage, limit=limit)


@router.get("/{incident_id}", response_model=IncidentStatus)
async def show(incident_id: str, app: State, caller: Staff) -> IncidentStatus:
    return await _status(app, incident_id, incident_workflow_id(incident_id))


async def _status(app: State, incident_id: str, workflow_id: str) -> IncidentStatus:
    try:
        return await app.client.get_workflow_handle(workflow_id).query(IncidentWorkflow.status)
    except RPCError as exc:
        raise rpc_problem(exc, "incident", workflow_id) from None


UPDATES: dict[str, tuple[type[BaseModel], type[BaseModel], str]] = {
    "link": (LinkBody, Link, "Link requests; each keeps its own audit trail."),
    "update": (ProgressBody, Progress, "Progress: each linked customer is told once (003 §6.4); `level` regrades."),
    "resolve": (ResolveBody, Resolve, "Every linked request moves on to resolution with this summary."),
    "review": (ReviewBody, Review, "The post-mortem (复盘); linked requests may close afterwards."),
}


def update_route(name: str, body_type: type[BaseModel], message: type[BaseModel]) -> Callable[..., Any]:
    """The route of the incident's update `name`, sent as the caller (a refusal is a 422 with its reason)."""

    async def send(incident_id: str, body: BaseModel, app: State, caller: Staff, key: IdempotencyKey = None
                   ) -> IncidentStatus:
        return await act_as(app.client, caller, incident_workflow_id(incident_id), name,
                            as_caller(body, message, caller), IncidentStatus, key, what="incident")

    send.__annotations__["body"] = body_type  # the body's schema in OpenAPI, validated by FastAPI
    return send


for _name, (_body, _message, _summary) in UPDATES.items():
    router.add_api_route(f"/{{incident_id}}/{_name}", update_route(_name, _body, _message), methods=["POST"],
                         response_model=IncidentStatus, summary=_summary, name=_name)
