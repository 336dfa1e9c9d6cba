"""Starting a request, idempotently by its id (docs/integration.md): what `kefu submit` and `POST /requests` share.

`submit` starts the workflow (id-conflict USE_EXISTING, id-reuse REJECT_DUPLICATE), so a retried submission
reaches the same workflow and sends no second acknowledgement. `submit_once` also compares the content with the
intake the workflow was started with: the same content returns the existing request; different content is a 409
naming the fields that differ (never their values).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import BAD_INPUT, CONFLICT, ApiError
from infra import temporal_env
from models.intake import Intake, workflow_id_for
from models.status import RequestStatus
from policies.loader import PolicyError, get_pack
from workflows.service_request import ServiceRequestWorkflow


def check_intake(intake: Intake) -> None:
    """What the intake's model cannot know: its policy exists and offers its channel and type."""
    try:
        pack = get_pack(intake.policy)
    except PolicyError as exc:
        raise ApiError(BAD_INPUT, "policy", str(exc).removeprefix("policy: ")) from exc
    if intake.channel not in pack.channels:
        raise ApiError(BAD_INPUT, "channel", f"{intake.channel} is not a channel of policy {pack.id} "
                                             f"({', '.join(pack.channels)})")
    if intake.type_hint and intake.type_hint not in pack.request_types:
        raise ApiError(BAD_INPUT, "type_hint", f"{intake.type_hint} is not a request type of policy {pack.id}")


async def submit(client: Client, intake: Intake, wait_for_ticket: bool = True,
                 task_queue: str = temporal_env.TASK_QUEUE) -> tuple[WorkflowHandle, RequestStatus | None]:
    """Start the request's workflow; a retried submission reaches the same workflow (no second acknowledgement).
    Returns the handle and, unless told not to wait, the status once the ticket is registered."""
    workflow_id = workflow_id_for(intake.request_id)
    try:
        handle = await client.start_workflow(
            ServiceRequestWorkflow.run, intake, id=workflow_id, task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"{intake.request_id} · {intake.channel} · {intake.policy}",
            static_details=f"Service request {intake.request_id} received on {intake.channel} under policy "
                           f"{intake.policy}; type hint {intake.type_hint or '—'}.",
        )
    except WorkflowAlreadyStartedError:
        # finished already: report what it became
        handle = client.get_workflow_handle_for(ServiceRequestWorkflow.run, workflow_id)
    if not wait_for_ticket:
        return handle, None
    return handle, await wait_for_status(handle, lambda st: bool(st.ticket))


async def wait_for_status(handle: WorkflowHandle, ready: Callable[[RequestStatus], bool],
                          timeout: float = 20.0) -> RequestStatus:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = await handle.query(ServiceRequestWorkflow.status)
        if ready(status) or asyncio.get_running_loop().time() > deadline:
            return status
        await asyncio.sleep(0.1)


async def started_intake(client: Client, workflow_id: str) -> Intake | None:
    """The intake the workflow was started with (its first history event), or None when there is no workflow."""
    try:
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events(page_size=1):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [intake] = await client.data_converter.decode(payloads, [Intake])
            return intake  # type: ignore[no-any-return]
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return None


def differences(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Field paths whose values differ between two JSON dumps (names only, never the values)."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [path for key in sorted(before.keys() | after.keys())
                for path in differences(before.get(key), after.get(key), f"{prefix}{key}.")]
    return [] if before == after else [prefix.rstrip(".")]


async def submit_once(client: Client, intake: Intake,
                      task_queue: str = temporal_env.TASK_QUEUE) -> tuple[RequestStatus, bool]:
    """(status once registered, whether this call created the request). The same id with different content than
    the workflow was started with, before this call or by a concurrent one, is a 409."""
    workflow_id = workflow_id_for(intake.request_id)
    existing = await started_intake(client, workflow_id)
    created = existing is None
    if created:
        handle, _ = await submit(client, intake, wait_for_ticket=False, task_queue=task_queue)
        existing = await started_intake(client, workflow_id)  # a concurrent submission may have won the start
    else:
        handle = client.get_workflow_handle(workflow_id)
    changed = differences(existing.model_dump(mode="json"), intake.model_dump(mode="json")) if existing else []
    if changed:
        raise ApiError(CONFLICT, "request_id", f"{intake.request_id} was submitted before with different content "
                                               f"({', '.join(changed)}); send a new request_id for a new request")
    return await wait_for_status(handle, lambda st: bool(st.ticket)), created
