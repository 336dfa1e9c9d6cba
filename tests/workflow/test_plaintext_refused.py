"""With encryption on, a client without the key cannot get customer data past the worker in clear (issue 15).

A sender using the plain pydantic converter (another system that skipped the codec) talks to an encrypting worker
on the time-skipping server. Its start fails the workflow at once, with no workflow task failed and retried; its
update is refused to it with a readable reason and leaves nothing in history or the archive; its signal is dropped.
A request in progress carries on untouched.
"""

from __future__ import annotations

import asyncio
import secrets

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from archive.store import Archive
from cli.main import submit
from models.actions import Act
from models.intake import workflow_id_for
from tests.polling import PATIENCE, task_failures
from tests.workflow.helpers import act, escalate, intake, status
from tests.workflow.test_encryption import encrypted_worker
from workflows.service_request import ServiceRequestWorkflow

REFUSAL = "payload is not encrypted (encoding json/plain) and kefu requires encryption"


def plain_client(env: WorkflowEnvironment) -> Client:
    """A client without the codec, whatever keys this machine has."""
    return Client(**{**env.client.config(), "data_converter": pydantic_data_converter})


async def failed_tasks(handle: WorkflowHandle) -> int:
    return len(task_failures(await handle.fetch_history()))


async def test_a_plaintext_start_fails_its_workflow_at_once(ts_env: WorkflowEnvironment, archive: Archive,
                                                            task_queue: str) -> None:
    request = intake(request_id=f"clear-{secrets.token_hex(4)}")
    wid = workflow_id_for(request.request_id)
    async with encrypted_worker(ts_env, archive, task_queue, [wid]) as client:
        await plain_client(ts_env).start_workflow(ServiceRequestWorkflow.run, request, id=wid, task_queue=task_queue)
        handle = client.get_workflow_handle(wid)
        with pytest.raises(WorkflowFailureError) as info:
            await asyncio.wait_for(handle.result(), timeout=PATIENCE)
        assert await failed_tasks(handle) == 0  # failed, not retried forever
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "PlaintextPayload" and cause.non_retryable
    assert REFUSAL in cause.message and "王小明" not in cause.message
    assert archive.get(request.request_id) is None  # never registered


async def test_a_plaintext_update_is_refused_to_its_sender_and_not_stored(ts_env: WorkflowEnvironment,
                                                                         archive: Archive, task_queue: str) -> None:
    request = intake(request_id=f"upd-{secrets.token_hex(4)}")
    wid = workflow_id_for(request.request_id)
    async with encrypted_worker(ts_env, archive, task_queue, [wid]) as client:
        handle, _ = await submit(client, request, task_queue=task_queue)
        sender = plain_client(ts_env).get_workflow_handle(wid)
        reply = Act.model_validate({"actor": {"id": "agent-li", "role": "agent"},
                                    "action": {"kind": "respond", "message": "您好 王小明, call 13800001111"}})
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await asyncio.wait_for(sender.execute_update(ServiceRequestWorkflow.act, reply), timeout=PATIENCE)
        assert REFUSAL in str(info.value.cause)  # readable by the sender, which has no key
        after = await status(handle)
        history = (await handle.fetch_history()).to_json()
        assert "13800001111" not in history
        assert after.last_action != "respond" and await failed_tasks(handle) == 0
        assert "respond" not in [e["action"] for e in archive.audit_trail(request.request_id)]
        assert (await act(handle, "respond", message="您好")).last_action == "respond"  # carries on


async def test_a_plaintext_signal_is_dropped(ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    request = intake(request_id=f"sig-{secrets.token_hex(4)}")
    wid = workflow_id_for(request.request_id)
    async with encrypted_worker(ts_env, archive, task_queue, [wid]) as client:
        handle, before = await submit(client, request, task_queue=task_queue)
        await escalate(plain_client(ts_env).get_workflow_handle(wid), "sup-wang", "supervisor", "customer called")
        after = await act(handle, "respond", message="您好")  # a later task: the signal has been seen by now
        assert after.escalation_level == before.escalation_level and after.escalations == before.escalations
        assert await failed_tasks(handle) == 0
