"""Small helpers for driving requests in workflow tests."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from cli.main import submit
from demo import answer_survey, confirm_result
from models.actions import Act, EscalateRequest, SurveyAnswer
from models.intake import Intake, workflow_id_for
from models.status import RequestStatus
from tests.conftest import STARTED
from tests.polling import wait_for_status
from workflows.service_request import ServiceRequestWorkflow


def intake(**overrides: Any) -> Intake:
    raw: dict[str, Any] = {
        "request_id": f"t-{uuid.uuid4().hex[:10]}", "policy": "service_center", "channel": "mini_program",
        "customer": {"id": "C-1001", "name": "王小明", "phone": "13812345678", "language": "zh-CN"},
        "description": "我想查询一下上个月的账单明细", "type_hint": "inquiry",
    }
    raw.update(overrides)
    return Intake.model_validate(raw)


async def start(client: Client, task_queue: str, **overrides: Any) -> tuple[WorkflowHandle, RequestStatus]:
    request = intake(**overrides)
    STARTED.append(workflow_id_for(request.request_id))
    handle, _ = await submit(client, request, wait_for_ticket=False, task_queue=task_queue)
    status = await wait_for_status(handle, lambda st: bool(st.ticket))
    assert status.ticket, "the request was registered and has a ticket"
    return handle, status


async def act(handle: WorkflowHandle, kind: str, actor: str = "agent-li", role: str = "agent",
              **fields: Any) -> RequestStatus:
    payload = Act.model_validate({"actor": {"id": actor, "role": role}, "action": {"kind": kind, **fields}})
    return await handle.execute_update(ServiceRequestWorkflow.act, payload)


async def confirm(handle: WorkflowHandle, accepted: bool = True) -> RequestStatus:
    # demo's helpers wait the CLI's 20 s; a loaded machine gets the tests' patience first
    await wait_for_status(handle, lambda st: st.stage == "resolved" and st.last_action == "result_reported")
    return await confirm_result(handle, accepted)


async def survey(env: WorkflowEnvironment, handle: WorkflowHandle, score: int, resolved: bool = True,
                 nps: int | None = None) -> RequestStatus:
    """Let the pack's revisit delay pass, then answer the survey."""
    await wait_for_status(handle, lambda st: st.stage == "closed")
    return await answer_survey(env, handle, SurveyAnswer(score=score, resolved=resolved, nps=nps))


async def escalate(handle: WorkflowHandle, actor: str, role: str, reason: str, to_level: int | None = None) -> None:
    await handle.signal(ServiceRequestWorkflow.escalate,
                        EscalateRequest.model_validate({"actor": {"id": actor, "role": role}, "reason": reason,
                                                        "to_level": to_level}))


async def status(handle: WorkflowHandle) -> RequestStatus:
    return await handle.query(ServiceRequestWorkflow.status)
