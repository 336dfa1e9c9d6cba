"""Service requests: submit (idempotent by request id), list, open, status, audit trail, act, escalate."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError

from api.bodies import ActBody, EscalateBody, as_caller
from api.deps import IdempotencyKey, Staff, State
from api.errors import FORBIDDEN, NOT_FOUND, ApiError
from api.scope import masked, scope_for, shows_contact
from api.submit import check_intake, submit_once
from api.temporal import act_as, rpc_problem
from archive.directory import Directory
from archive.reads import console_list, get_visible, log_reads
from infra.principal import Principal
from models.actions import ROLE_RANK, Act, EscalateRequest
from models.intake import Intake, workflow_id_for
from models.status import RequestStatus
from workflows.service_request import ServiceRequestWorkflow

router = APIRouter(prefix="/requests", tags=["requests"])


def opened(app: State, caller: Principal, request_id: str, path: str, fields: str) -> dict[str, Any]:
    """The request's archive row if the caller's scope shows it (404 otherwise: its existence is not told), the
    read logged first (000 §6.3)."""
    row = get_visible(app.archive, scope_for(caller, Directory(app.archive.engine)), request_id)
    if row is None:
        raise ApiError(NOT_FOUND, "request_id", f"no request {request_id} you may see")
    log_reads(app.archive, caller.sub, caller.role, [request_id], path, fields)
    return row


@router.post("", status_code=201, response_model=RequestStatus, responses={
    200: {"description": "submitted before with the same content: the existing request"},
    409: {"description": "submitted before with different content"}})
async def submit_request(intake: Intake, app: State, caller: Staff, response: Response) -> RequestStatus:
    """Start a request (docs/integration.md). A retry with the same request id and content returns the existing
    request (200); the same id with other content is a 409 naming the fields."""
    if intake.accepted_by not in (None, caller.sub) and ROLE_RANK[caller.role] < ROLE_RANK["team_lead"]:
        raise ApiError(FORBIDDEN, "accepted_by", f"an agent records only themselves ({caller.sub}) as the one who "
                                                 "took the contact")
    check_intake(intake)
    try:
        status, created = await submit_once(app.client, intake, task_queue=app.task_queue)
    except RPCError as exc:
        raise rpc_problem(exc, "request", workflow_id_for(intake.request_id)) from None
    response.status_code = 201 if created else 200
    return status


@router.get("", summary="List requests (the console's filters), within the caller's scope")
def list_requests(app: State, caller: Staff,
                  stage: str | None = None, type: str | None = None, priority: str | None = None,
                  policy: str | None = None, owner: str | None = None,
                  level: Annotated[int | None, Query(ge=0, description="escalation level at least")] = None,
                  overdue: bool = False,
                  due_within: Annotated[int | None, Query(ge=0, description="minutes")] = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, Any]]:
    """Agents see their own, offered and team's requests, team leads and supervisors their teams' (and the queue;
    supervisors also what is escalated to them), managers all. Contacts are masked unless the role calls customers;
    each row shown in clear is logged."""
    rows = console_list(app.archive, stage=stage, request_type=type, priority=priority, policy_id=policy,
                        owner=owner, level=level, overdue=overdue, due_within=due_within, limit=limit,
                        scope=scope_for(caller, Directory(app.archive.engine)))
    if not shows_contact(caller):
        return [masked(row) for row in rows]
    log_reads(app.archive, caller.sub, caller.role, [row["request_id"] for row in rows], "GET /requests",
              "customer,description")
    return rows


async def live_status(app: State, request_id: str) -> RequestStatus:
    try:
        return await app.client.get_workflow_handle(workflow_id_for(request_id)).query(ServiceRequestWorkflow.status)
    except RPCError as exc:
        raise rpc_problem(exc, "request", workflow_id_for(request_id)) from None


@router.get("/{request_id}", summary="One request: its registration (the customer's contact) and live status")
async def open_request(request_id: str, app: State, caller: Staff) -> dict[str, Any]:
    row = await run_in_threadpool(opened, app, caller, request_id, "GET /requests/{id}", "customer,description")
    try:
        status: RequestStatus | None = await live_status(app, request_id)
    except ApiError:
        status = None  # the run is gone (retention) or Temporal is down: the archive still answers
    return {"request": row, "status": status.model_dump(mode="json") if status else None}


@router.get("/{request_id}/status", response_model=RequestStatus)
async def request_status(request_id: str, app: State, caller: Staff) -> RequestStatus:
    """The workflow's `status` query (no personal data: not logged)."""
    if await run_in_threadpool(get_visible, app.archive, scope_for(caller, Directory(app.archive.engine)),
                               request_id) is None:
        raise ApiError(NOT_FOUND, "request_id", f"no request {request_id} you may see")
    return await live_status(app, request_id)


@router.get("/{request_id}/audit", summary="The request's audit trail (000 §3.2)")
def audit_trail(request_id: str, app: State, caller: Staff) -> list[dict[str, Any]]:
    opened(app, caller, request_id, "GET /requests/{id}/audit", "audit")
    return app.archive.audit_trail(request_id)


@router.post("/{request_id}/act", response_model=RequestStatus)
async def act(request_id: str, body: ActBody, app: State, caller: Staff, key: IdempotencyKey = None
              ) -> RequestStatus:
    """Update `act` as the caller: a refusal (role, stage, skipped step, missing root cause, …) is a 422 with the
    workflow's reason and changes nothing."""
    return await act_as(app.client, caller, workflow_id_for(request_id), "act", as_caller(body, Act, caller),
                        RequestStatus, key)


@router.post("/{request_id}/escalate", response_model=RequestStatus)
async def escalate(request_id: str, body: EscalateBody, app: State, caller: Staff, key: IdempotencyKey = None
                   ) -> RequestStatus:
    """Update `escalation` as the caller (supervisor and above); a refusal is a 422 saying why."""
    return await act_as(app.client, caller, workflow_id_for(request_id), "escalation",
                        as_caller(body, EscalateRequest, caller), RequestStatus, key)

