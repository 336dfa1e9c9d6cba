"""Malformed and out-of-order messages never wedge a request (time-skipping server).

Raw payloads go through the untyped API, as another SDK or a hand-written client would send them. A refused update
fails with a message naming the field or rule and leaves no trace in history; a refused signal (it cannot answer)
is recorded in the audit trail as rejected. Afterwards the request still walks its lifecycle to `completed`, and
its history holds no WorkflowTaskFailed event.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import RawValue
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from archive.store import Archive
from cli.main import submit
from infra import temporal_env
from models.intake import workflow_id_for
from tests.conftest import STARTED, running_worker
from tests.polling import PATIENCE, task_failures, wait_for_status
from tests.workflow.helpers import act, confirm, intake, start, status, survey

AGENT = {"id": "agent-li", "role": "agent"}


def failure_text(exc: WorkflowUpdateFailedError) -> str:
    """The refusal and every cause below it (a payload that does not decode is refused as 'Failed decoding
    arguments', caused by the pydantic error naming the fields)."""
    parts, cause = [], exc.cause
    while cause is not None:
        parts.append(str(cause))
        cause = getattr(cause, "cause", None)
    return " | ".join(parts)


async def refused(handle: WorkflowHandle, update: str, payload: Any, *words: str) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(update, payload, result_type=dict)
    text = failure_text(info.value)
    for word in words:
        assert word in text, text
    return text


async def assert_never_wedged(handle: WorkflowHandle) -> None:
    history = await handle.fetch_history()
    assert not task_failures(history)
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED in {event.event_type for event in history.events}


async def finish(env: WorkflowEnvironment, handle: WorkflowHandle, responded: bool = False) -> None:
    if not responded:
        await act(handle, "respond", message="您好，我来处理")
    if (await status(handle)).stage == "handling":
        await act(handle, "resolve", summary="已处理")
    await confirm(handle)
    await survey(env, handle, score=95)
    final = await handle.result()
    assert final.stage == "completed" and final.outcome == "satisfied"
    await assert_never_wedged(handle)


def bad_json() -> RawValue:
    """A payload no JSON decoder accepts."""
    return RawValue(Payload(metadata={"encoding": b"json/plain"}, data=b"{not json"))


async def test_malformed_updates_are_refused_and_the_request_completes(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue)

        # payloads that are not an Act: refused by the validator naming every field (issue 15: it once said only
        # "Failed decoding arguments"); only a payload that is not JSON at all still fails in the SDK's decoding
        await refused(handle, "act", {"actor": {"id": "x", "role": "nobody"}, "action": {"kind": "respond"}},
                      "act: actor.role:", "; action.respond.message: Field required")
        await refused(handle, "act", {"action": {"kind": "bogus"}}, "actor", "bogus")
        await refused(handle, "act", "respond please", "act: the payload must be an object with fields actor, action")
        await refused(handle, "act", {"actor": {"id": "agent-li"}, "action": {"kind": "respond", "message": "hi"}},
                      "actor.role", "Field required")
        await refused(handle, "act", {"actor": AGENT, "action": {"kind": "respond", "message": "hi"}, "x": 1},
                      "x", "Extra inputs")
        await refused(handle, "act", None)  # JSON null decodes to None; the validator refuses it
        await refused(handle, "act", bad_json(), "Failed decoding arguments")
        await refused(handle, "confirm", {"accepted": "maybe"}, "accepted")
        await refused(handle, "survey", {"score": 101}, "score")
        await refused(handle, "reopen", {}, "reopen", "not found")

        # well-formed but out of order, or by the wrong role: refused by the validator, naming the rule
        await refused(handle, "confirm", {"accepted": True}, "confirm: no result awaits confirmation")
        await refused(handle, "survey", {"score": 90}, "survey: no survey is open")
        await refused(handle, "act", {"actor": AGENT, "action": {"kind": "resolve", "summary": "done"}},
                      "resolve: respond to the customer first")
        await refused(handle, "act", {"actor": {"id": "c-1", "role": "customer"},
                                      "action": {"kind": "respond", "message": "hi"}},
                      "respond: role customer may not do this")
        await refused(handle, "act", {"actor": {"id": "c-1", "role": "customer"},
                                      "action": {"kind": "customer_reply", "text": "here"}},
                      "customer_reply: the request is not waiting on the customer")
        await refused(handle, "act", {"actor": AGENT, "action": {"kind": "acknowledge"}},
                      "acknowledge: role agent may not do this")

        st = await act(handle, "respond", message="您好，我来处理")
        assert st.owner == "agent-li"
        await refused(handle, "act", {"actor": AGENT, "action": {"kind": "respond", "message": "again"}},
                      "respond: the first response was already given")
        await refused(handle, "act", {"actor": {"id": "agent-wang", "role": "agent"},
                                      "action": {"kind": "assign", "owner": "agent-wang"}},
                      "assign: only a supervisor and above reassigns an owned request")
        await refused(handle, "act", {"actor": {"id": "agent-wang", "role": "agent"},
                                      "action": {"kind": "resolve", "summary": "mine now"}},
                      "resolve: only the owner agent-li")
        await refused(handle, "act", {"actor": AGENT, "action": {"kind": "extend", "by": "forever", "reason": "r",
                                                                  "customer_notice": "told"}},
                      "extend: by:", "bad duration")
        await refused(handle, "act", {"actor": AGENT, "action": {"kind": "reclassify", "priority": "vip",
                                                                  "reason": "r"}},
                      "reclassify:")

        await act(handle, "resolve", summary="账单明细已发送")
        await refused(handle, "act", {"actor": {"id": "lead-zhou", "role": "team_lead"},
                                      "action": {"kind": "check", "passed": True}},
                      "check: no resolution awaits a checker's acceptance")
        await refused(handle, "survey", {"score": 90}, "survey: no survey is open")
        after = await status(handle)
        assert after.stage == "resolved" and after.rejected_actions == 0  # refused updates change nothing

        await finish(ts_env, handle, responded=True)
    actions = [e["action"] for e in archive.audit_trail(after.request_id)]
    assert actions.count("respond") == 1 and actions.count("resolve") == 1 and "completed" in actions
    assert not any(e["rejected"] for e in archive.audit_trail(after.request_id))


async def test_garbage_escalate_signals_are_recorded_as_rejected(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle, first = await start(ts_env.client, task_queue)
        await handle.signal("escalate", "garbage")
        await handle.signal("escalate", {})
        await handle.signal("escalate", None)
        await handle.signal("escalate", {"actor": {"id": "agent-li", "role": "agent"}, "reason": "please"})
        await handle.signal("escalate", {"actor": {"id": "sup-chen", "role": "supervisor"}, "reason": "r",
                                         "to_level": 9})
        await handle.signal("escalate", {"actor": {"id": "sup-chen", "role": "supervisor"}, "reason": "r",
                                         "to_level": 0})
        await handle.signal("escalate", {"actor": {"id": "sup-chen", "role": "boss"}, "reason": "r"})
        st = await wait_for_status(handle, lambda s: s.rejected_actions >= 7)
        assert st.rejected_actions == 7 and st.escalation_level == 0 and st.escalations == []

        await handle.signal("escalate", bad_json())  # cannot be decoded at all: the SDK drops it (logged)
        await handle.signal("escalate", {"actor": {"id": "sup-chen", "role": "supervisor"}, "reason": "客户要求"})
        st = await wait_for_status(handle, lambda s: s.escalation_level == 1)
        assert st.rejected_actions == 7 and st.escalations[-1].trigger == "signal"

        await finish(ts_env, handle)
    trail = archive.audit_trail(first.request_id)
    rejected = [e for e in trail if e["rejected"]]
    assert len(rejected) == 7 and {e["action"] for e in rejected} == {"escalate"}
    reasons = [e["detail"]["reason"] for e in rejected]
    assert reasons[0] == reasons[2] == "payload: Input should be a valid dictionary or instance of EscalateRequest"
    assert reasons[1] == "actor: Field required"
    assert "role agent may not do this" in reasons[3]
    assert "level 9 is not above level 0 within 0..3" in reasons[4]
    assert "level 0 is not above level 0" in reasons[5]
    assert reasons[6].startswith("actor.role:")
    assert [e["seq"] for e in trail] == list(range(len(trail)))


async def test_escalate_signal_before_acceptance_is_rejected_without_wedging(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    """Signal-with-start: the garbage signal arrives before the policy is even loaded."""
    request = intake()
    STARTED.append(workflow_id_for(request.request_id))
    async with running_worker(ts_env, archive, task_queue):
        await ts_env.client.start_workflow(
            "ServiceRequestWorkflow", request, id=workflow_id_for(request.request_id), task_queue=task_queue,
            start_signal="escalate", start_signal_args=["garbage"])
        handle, st = await submit(ts_env.client, request, task_queue=task_queue)  # a retry reaches the same run
        assert st is not None and st.ticket and st.stage == "handling" and st.rejected_actions == 1
        await finish(ts_env, handle)
    trail = archive.audit_trail(request.request_id)
    assert [e["action"] for e in trail if e["rejected"]] == ["escalate"]
    assert trail[0]["stage"] == "received"


# Regression: a payload that decodes to something other than a Confirm (JSON null -> None, binary/plain -> bytes)
# once reached the handler and failed the workflow task on every retry, wedging the request.
@pytest.mark.parametrize("payload", [None, RawValue(Payload(metadata={"encoding": b"binary/plain"}, data=b"yes"))],
                         ids=["null", "bytes"])
async def test_confirmation_that_is_not_an_object_is_refused(archive: Archive, task_queue: str,
                                                                   payload: Any) -> None:
    # A private time-skipping server: a wedged run leaves the shared one unable to skip time for later tests.
    async with await WorkflowEnvironment.start_time_skipping(
            interceptors=temporal_env.client_interceptors(), test_server_existing_path=temporal_env.test_server(),
            data_converter=pydantic_data_converter) as env:
        await temporal_env.register_search_attributes(env.client)
        async with running_worker(env, archive, task_queue):
            handle, _ = await start(env.client, task_queue)
            await act(handle, "respond", message="您好")
            await act(handle, "resolve", summary="已处理")
            await wait_for_status(handle, lambda st: st.last_action == "result_reported")
            try:
                # a guard: a wedged run never answers (PATIENCE, not seconds: a loaded machine answers late)
                await asyncio.wait_for(refused(handle, "confirm", payload), timeout=PATIENCE)
            finally:
                assert not task_failures(await handle.fetch_history())
            await finish(env, handle, responded=True)
