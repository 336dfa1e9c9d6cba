"""A malformed intake started through a raw SDK fails its run at once (issue 15), a run whose workflow id is not its
request's cannot take over another request's archive row (issue 14), and an early customer answer is not lost.

Before: the run failed its first workflow task with "Failed decoding arguments" and retried forever, with no
archive row, and every retry logged pydantic's `input_value=` with the customer's phone and email.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from archive.store import Archive
from models.actions import SurveyAnswer
from models.intake import workflow_id_for
from tests.conftest import STARTED, running_worker
from tests.polling import task_failures, wait_for_status
from tests.workflow.helpers import act, confirm, start, status
from workflows.service_request import ServiceRequestWorkflow

PHONE, EMAIL = "13912345678", "wang.secret@example.com"
GOOD: dict[str, Any] = {"request_id": "bad-x", "policy": "service_center", "channel": "web",
                        "customer": {"id": "C-9", "name": "王秘密", "phone": PHONE, "email": EMAIL},
                        "description": "账单有误"}
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "no_customer": ({k: v for k, v in GOOD.items() if k != "customer"}, "customer: Field required"),
    "amount_text": ({**GOOD, "amount": f"about {PHONE}"}, "amount:"),
    "bad_phone": ({**GOOD, "customer": {**GOOD["customer"], "phone": f"call {PHONE} or {EMAIL}"}},
                  "customer.phone:"),
    "not_an_object": (["oops", PHONE], "intake: payload:"),
}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_a_malformed_intake_fails_at_once_names_the_field_and_leaves_a_rejected_row(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str, name: str,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    raw, field = CASES[name]
    request_id = f"bad-{name.replace('_', '-')}"
    if isinstance(raw, dict):
        raw = {**raw, "request_id": request_id}
    workflow_id = workflow_id_for(request_id)
    STARTED.append(workflow_id)
    caplog.set_level(logging.DEBUG)
    async with running_worker(ts_env, archive, task_queue):
        handle = await ts_env.client.start_workflow("ServiceRequestWorkflow", raw, id=workflow_id,
                                                    task_queue=task_queue)
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidIntake" and cause.non_retryable
    assert field in cause.message and PHONE not in cause.message and EMAIL not in cause.message
    history = await handle.fetch_history()
    assert not task_failures(history)
    row = archive.get(request_id)
    assert row is not None and row["stage"] == "rejected" and row["ticket"] is None
    assert row["customer_name"] == "" and row["workflow_id"] == workflow_id
    assert [r["request_id"] for r in archive.list_requests(stage="rejected") if r["request_id"] == request_id]
    out, err = capfd.readouterr()
    logged = caplog.text + out + err  # the SDK's logging and kefu's structlog lines
    assert PHONE not in logged and EMAIL not in logged and "王秘密" not in logged
    assert logged.count("intake rejected") == 1


async def test_a_run_naming_another_requests_id_is_refused_and_the_original_is_untouched(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle, st = await start(ts_env.client, task_queue)
        before_row, before_trail = archive.get(st.request_id), archive.audit_trail(st.request_id)
        evil = f"kefu-sr-evil-{st.request_id}"[:72]
        STARTED.append(evil)
        raw = {**GOOD, "request_id": st.request_id}
        intruder = await ts_env.client.start_workflow("ServiceRequestWorkflow", raw, id=evil, task_queue=task_queue)
        with pytest.raises(WorkflowFailureError) as info:
            await intruder.result()
        assert "does not belong to workflow id" in str(info.value.cause)
        assert (await status(handle)).workflow_id == workflow_id_for(st.request_id)
    after = archive.get(st.request_id)
    assert after is not None and before_row is not None
    assert (after["workflow_id"], after["ticket"], after["customer_id"]) == (
        before_row["workflow_id"], before_row["ticket"], before_row["customer_id"])
    assert archive.audit_trail(st.request_id)[:len(before_trail)] == before_trail
    assert archive.get(evil.removeprefix("kefu-sr-"))["stage"] == "rejected"  # type: ignore[index]


async def test_a_survey_answer_that_comes_before_the_survey_opens_is_taken_exactly_once(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    """Chaos (issue 15): a worker died after sending the revisit notice; on retry the customer's answer and the
    revisit timer arrived in one activation, the validator saw `closed`, and the answer was lost. An answer in
    `closed` is now kept and taken when the survey opens; a second one is refused."""
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue)
        await act(handle, "respond", message="您好")
        await act(handle, "resolve", summary="已解答")
        await confirm(handle)
        await wait_for_status(handle, lambda st: st.stage == "closed")
        await handle.execute_update(ServiceRequestWorkflow.survey, SurveyAnswer(score=96))
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(ServiceRequestWorkflow.survey, SurveyAnswer(score=10))
        assert "already answered" in str(info.value.cause)
        final = await handle.result()
    assert final.stage == "completed" and final.outcome == "satisfied" and final.satisfaction == 96
    actions = [e["action"] for e in archive.audit_trail(final.request_id)]
    assert actions.count("survey") == 1 and "survey_unanswered" not in actions


@pytest.mark.parametrize("policy", ["service_center", "finance", "telecom", "general"])
async def test_waiting_for_the_customers_confirmation_is_not_the_handlers_time(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str, policy: str) -> None:
    """Issue 15 (000 §5.5 attribution, 002 §2.2.1): a request resolved within minutes whose customer never
    confirms used to breach its closure clock inside the 72 h confirmation window, escalating and blaming the agent.
    The pack's `closure.pause_while_confirming` pauses the closure clock while the result awaits the answer."""
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue, policy=policy, channel="phone", accepted_by="agent-li")
        await act(handle, "respond", message="您好")
        await act(handle, "resolve", summary="已解答")
        await wait_for_status(handle, lambda st: st.clocks["closure"].paused)  # the result reported, waiting
        await ts_env.sleep(timedelta(hours=80))  # past the 72 h window: closed without an answer
        closed = await wait_for_status(handle, lambda st: st.stage in ("closed", "revisit", "completed"))
    closure = closed.clocks["closure"]
    assert not closure.breached and closure.stopped_at is not None
    assert closed.escalation_level == 0 and closed.confirmed is False
    trail = archive.audit_trail(closed.request_id)
    assert not [e for e in trail if e["action"] == "sla_breach"]
    assert next(e for e in trail if e["action"] == "closed")["detail"]["confirmed_by"] == "confirmation_window"
