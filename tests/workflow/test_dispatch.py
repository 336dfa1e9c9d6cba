"""Dispatch (003 §1.1, 001 §4.1-4.2): automatic assignment from the agent directory, the return timer, capacity,
decline, transfer to another department's team, and the queue when no directory exists — time-skipping server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment

from archive.directory import Directory
from archive.store import Archive
from models.actions import Act
from models.assignment import Agent
from models.intake import workflow_id_for
from models.status import RequestStatus
from policies.loader import BUILTIN_DIR
from tests.conftest import STARTED, running_worker
from tests.polling import eventually, wait_for_status
from tests.workflow.helpers import act, start, status
from tests.workflow.helpers import intake as intake_model
from workflows.service_request import ServiceRequestWorkflow

OUTAGE = {"policy": "telecom", "channel": "phone", "type_hint": None, "description": "家里宽带断网了，完全上不了网"}


def agents(directory: Directory, *specs: tuple[str, str, int]) -> None:
    directory.upsert_agents([Agent(id=agent_id, name=agent_id, team=team, department=team, capacity=capacity)
                             for agent_id, team, capacity in specs])


def loads(directory: Directory) -> dict[str, int]:
    return {a["id"]: a["open_cases"] for a in directory.list_agents()}


def actions(archive: Archive, request_id: str) -> list[str]:
    return [e["action"] for e in archive.audit_trail(request_id)]


def audit(archive: Archive, request_id: str, action: str) -> list[dict[str, Any]]:
    return [e for e in archive.audit_trail(request_id) if e["action"] == action]


async def offered(handle: Any, to: str) -> RequestStatus:
    return await wait_for_status(handle, lambda s: s.sub_state == "assigned" and s.owner == to)


async def test_offer_accept_and_release_at_resolution(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    directory = Directory(archive.engine)
    agents(directory, ("net-1", "network", 2), ("net-2", "network", 2), ("cs-1", "customer_service", 5))
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue, **OUTAGE)
        st = await offered(handle, "net-1")  # round robin within the network team (003 §1.1)
        assert st.team == "network" and st.clocks["assignment"].target_seconds == 2 * 3600
        assert loads(directory)["net-1"] == 1
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await act(handle, "accept", actor="net-2")
        assert "not offered to net-2" in str(refused.value.cause)
        st = await act(handle, "accept", actor="net-1", comment="马上处理")
        assert st.sub_state == "pending" and st.clocks["assignment"].stopped_at is not None
        assert not st.clocks["assignment"].breached
        await act(handle, "respond", actor="net-1", message="您好，工程师已出发")
        st = await act(handle, "resolve", actor="net-1", summary="光缆已修复")
        assert st.stage == "resolved"
        await eventually(lambda: loads(directory)["net-1"] == 0)  # the slot is free once resolved
    assignment = [n for n in archive.outbox(st.request_id) if n["template"] == "assignment"]
    assert [n["recipient"] for n in assignment] == ["net-1"]


async def test_return_timer_and_decline_pass_the_case_on(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    directory = Directory(archive.engine)
    agents(directory, ("net-1", "network", 2), ("net-2", "network", 2), ("net-3", "network", 2))
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue, **OUTAGE)
        await offered(handle, "net-1")
        await ts_env.sleep(timedelta(minutes=16))  # accept_within 15m passes: 退回
        st = await offered(handle, "net-2")
        assert st.returned_by == ["net-1"]
        await act(handle, "decline", actor="net-2", reason="正在外勤")
        st = await offered(handle, "net-3")
        assert st.returned_by == ["net-1", "net-2"] and st.assignment_attempts == 3
        await eventually(lambda: loads(directory) == {"net-1": 0, "net-2": 0, "net-3": 1})
        await act(handle, "accept", actor="net-3")
        st = await status(handle)
        assert st.owner == "net-3" and not st.clocks["assignment"].breached
    returned = audit(archive, st.request_id, "assignment_returned")
    assert [(e["detail"]["agent"], e["detail"]["reason"]) for e in returned] == [
        ("net-1", "not accepted within 15m"), ("net-2", "declined")]


async def test_capacity_is_never_exceeded_and_a_waiting_case_is_dispatched_later(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    directory = Directory(archive.engine)
    agents(directory, ("net-1", "network", 1))
    async with running_worker(ts_env, archive, task_queue):
        first, _ = await start(ts_env.client, task_queue, **OUTAGE)
        await offered(first, "net-1")
        second, _ = await start(ts_env.client, task_queue, **OUTAGE)
        st = await wait_for_status(second, lambda s: s.last_action == "dispatch_waiting")
        assert st.owner is None and loads(directory)["net-1"] == 1
        await act(first, "accept", actor="net-1")
        await act(first, "respond", actor="net-1", message="处理中")
        await act(first, "resolve", actor="net-1", summary="已修复")
        await ts_env.sleep(timedelta(minutes=6))  # retry_every 5m
        st = await offered(second, "net-1")
        assert loads(directory)["net-1"] == 1
    waiting = audit(archive, st.request_id, "dispatch_waiting")
    assert [e["detail"]["reason"] for e in waiting] == ["at_capacity"]


async def test_assignment_deadline_breach_escalates(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    directory = Directory(archive.engine)
    agents(directory, ("net-1", "network", 1))
    async with running_worker(ts_env, archive, task_queue):
        busy, _ = await start(ts_env.client, task_queue, **OUTAGE)
        await offered(busy, "net-1")
        await act(busy, "accept", actor="net-1")
        handle, _ = await start(ts_env.client, task_queue, **OUTAGE, accepted_by=None)
        await wait_for_status(handle, lambda s: s.last_action == "dispatch_waiting")
        await ts_env.sleep(timedelta(hours=2, minutes=1))  # 003 §1.1: assigned within 2 h
        st = await wait_for_status(handle, lambda s: s.clocks["assignment"].breached)
        assert st.escalation_level >= 1
    breaches = [e["detail"]["clock"] for e in audit(archive, st.request_id, "sla_breach")]
    assert "assignment" in breaches


async def test_transfer_dispatches_to_the_receiving_team_and_keeps_the_complaint_owner(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    directory = Directory(archive.engine)
    agents(directory, ("tech-1", "technical", 3))
    async with running_worker(ts_env, archive, task_queue):
        handle, st = await start(ts_env.client, task_queue, policy="telecom", channel="phone",
                                 type_hint="complaint", description="投诉：网速慢，晚上经常卡顿",
                                 accepted_by="agent-he")
        assert st.complaint_owner == "agent-he" and st.owner == "agent-he"
        await act(handle, "respond", actor="agent-he", message="您好，已受理您的投诉")
        handling_started = (await status(handle)).clocks["handling"].started_at
        await act(handle, "transfer", actor="agent-he", department="technical", reason="需要技术部门排查")
        st = await offered(handle, "tech-1")
        assert st.department == "technical" and st.complaint_owner == "agent-he"  # 首诉负责 (000 §2.5)
        assert st.clocks["handling"].started_at == handling_started and st.clocks["handling"].stopped_at is None
        await act(handle, "accept", actor="tech-1")
    transfer = audit(archive, st.request_id, "transfer")[0]["detail"]
    assert (transfer["before"], transfer["after"], transfer["from_owner"]) == ("customer_service", "technical",
                                                                               "agent-he")
    assert transfer["complaint_owner"] == "agent-he"


async def test_without_a_directory_the_case_waits_in_the_queue(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue, **OUTAGE)
        st = await wait_for_status(handle, lambda s: s.last_action == "dispatch_waiting")
        assert st.owner is None and st.sub_state == "pending"
        st = await act(handle, "respond", actor="agent-he", message="您好，已受理")
        assert st.owner == "agent-he" and "assignment" not in st.clocks  # first response covers the queue
    assert [e["detail"]["reason"] for e in audit(archive, st.request_id, "dispatch_waiting")] == ["no_agents"]


async def test_a_first_response_sent_with_the_start_waits_for_handling(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    """An agent's action that arrives while the request is still being accepted (here: in the same call as the
    start, update-with-start) is checked for role at once and applied when handling begins, not refused."""
    request = intake_model()
    start_op = WithStartWorkflowOperation(
        ServiceRequestWorkflow.run, request, id=workflow_id_for(request.request_id), task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
    STARTED.append(workflow_id_for(request.request_id))
    respond = Act.model_validate({"actor": {"id": "agent-li", "role": "agent"},
                                  "action": {"kind": "respond", "message": "您好，已受理"}})
    async with running_worker(ts_env, archive, task_queue):
        st = await ts_env.client.execute_update_with_start_workflow(ServiceRequestWorkflow.act, respond,
                                                                     start_workflow_operation=start_op)
        assert st.stage == "handling" and st.owner == "agent-li" and st.clocks["first_response"].stopped_at
        customer = Act.model_validate({"actor": {"id": "C-1", "role": "customer"},
                                       "action": {"kind": "respond", "message": "x"}})
        with pytest.raises(WorkflowUpdateFailedError):
            await (await start_op.workflow_handle()).execute_update(ServiceRequestWorkflow.act, customer)
    assert actions(archive, request.request_id)[:3] == ["accepted", "classified", "respond"]  # then dispatch


async def test_a_pack_can_restart_the_handling_clock_on_transfer(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """003 §3.3 with `transfer.handling_clock: restarts`: the receiving department gets a fresh handling limit; the
    closure clock (the customer's wait) keeps running."""
    pack = yaml.safe_load((BUILTIN_DIR / "telecom.yaml").read_text(encoding="utf-8"))
    pack["transfer"] = {"handling_clock": "restarts", "source": "operator's rule"}
    (tmp_path / "telecom.yaml").write_text(yaml.safe_dump(pack, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("KEFU_POLICY_PATH", str(tmp_path))
    async with running_worker(ts_env, archive, task_queue):
        handle, st = await start(ts_env.client, task_queue, **OUTAGE, accepted_by="agent-he")
        await act(handle, "respond", actor="agent-he", message="您好，已受理")
        before = (await status(handle)).clocks
        await ts_env.sleep(timedelta(hours=3))
        st = await act(handle, "transfer", actor="agent-he", department="technical", reason="设备问题",
                       to_owner="tech-7")
        assert st.clocks["handling"].started_at > before["handling"].started_at + timedelta(hours=2)
        assert st.clocks["closure"].started_at == before["closure"].started_at
        assert (st.owner, st.department) == ("tech-7", "technical")
    transfer = audit(archive, st.request_id, "transfer")[0]["detail"]
    assert (transfer["handling_clock"], transfer["to_owner"]) == ("restarted", "tech-7")
