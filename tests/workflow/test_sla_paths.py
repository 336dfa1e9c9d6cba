"""Breach, warnings, escalation ladder, pauses, extensions, reclassification, reopen — on the time-skipping server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from archive.store import Archive
from infra import temporal_env
from tests.conftest import running_worker
from tests.polling import wait_for_status
from tests.workflow.helpers import act, confirm, escalate, start, status, survey


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """These tests sleep through hours of SLA time: they get a time-skipping server of their own, so whatever the
    session's shared server holds by then (open or continued runs of earlier tests) cannot stall their time
    skipping (seen in full-suite runs: RPC 'Timeout expired' on env.sleep)."""
    async with await WorkflowEnvironment.start_time_skipping(
            interceptors=temporal_env.client_interceptors(), test_server_existing_path=temporal_env.test_server(),
            data_converter=temporal_env.data_converter()) as env:
        await temporal_env.register_search_attributes(env.client)
        yield env


def actions(archive: Archive, request_id: str) -> list[str]:
    return [e["action"] for e in archive.audit_trail(request_id)]


async def test_first_response_breach_escalates_and_ladder_climbs_without_ack(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle, st = await start(ts_env.client, task_queue, accepted_by="agent-zhao")
        deadline = st.clocks["first_response"].deadline
        await ts_env.sleep(timedelta(minutes=11))  # 10 min target (002 §2.1.2)
        st = await wait_for_status(handle, lambda s: s.clocks["first_response"].breached)
        breached_at = st.clocks["first_response"].breached_at
        assert breached_at is not None and abs(breached_at - deadline) < timedelta(seconds=1)  # one durable timer
        assert st.escalation_level == 1 and st.escalations[-1].trigger == "breach"
        assert st.escalations[-1].attributed_to == "agent-zhao"  # 000 §5.5
        assert st.clocks["first_response"].warnings_sent == [0.5, 0.8]
        await ts_env.sleep(timedelta(minutes=31))  # team lead's ack time 30 min passes
        st = await wait_for_status(handle, lambda s: s.escalation_level == 2)
        assert st.escalations[-1].trigger == "ack_timeout"
        await act(handle, "acknowledge", actor="sup-chen", role="supervisor", comment="on it")
        await ts_env.sleep(timedelta(hours=2))
        st = await status(handle)
        assert st.escalation_level == 2 and not st.awaiting_ack  # acknowledged: the ladder stops climbing
    trail = actions(archive, st.request_id)
    assert trail.count("sla_warning") == 2 and "sla_breach" in trail
    alerts = [n for n in archive.outbox(st.request_id) if n["template"] == "escalation"]
    assert [n["recipient"] for n in alerts] == ["team_lead", "supervisor"]


async def test_major_complaint_starts_at_supervisor_and_needs_root_cause(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle, st = await start(ts_env.client, task_queue, type_hint="complaint", channel="phone",
                                 description="大量用户被重复扣费，媒体已经关注", accepted_by="agent-wu")
        assert st.complaint_grade == "major" and st.priority == "urgent"
        assert st.escalation_level == 2 and st.escalations[0].trigger == "grade"  # 002 §4.4
        assert st.complaint_owner == "agent-wu"
        await act(handle, "respond", actor="agent-wu", message="您好，我们已受理")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await act(handle, "resolve", actor="agent-wu", summary="已退款")
        assert "root_cause" in str(refused.value.cause)
        await escalate(handle, "agent-wu", "agent", "please")  # an agent may not escalate by signal
        await escalate(handle, "sup-chen", "supervisor", "regulator involved", to_level=3)
        st = await wait_for_status(handle, lambda s: s.escalation_level == 3)
        assert st.escalations[-1].trigger == "signal" and st.escalations[-1].actor == "sup-chen"
        assert st.rejected_actions == 1
        await act(handle, "transfer", actor="agent-wu", department="finance", reason="refund")
        await act(handle, "resolve", actor="agent-wu", summary="已退款", root_cause="计费系统错误")
        st = await status(handle)
        assert st.complaint_owner == "agent-wu" and st.department == "finance"  # 首诉负责 survives the transfer
    trail = archive.audit_trail(st.request_id)
    rejected = [e for e in trail if e["rejected"]]
    assert len(rejected) == 1 and rejected[0]["actor_id"] == "agent-wu" and rejected[0]["action"] == "escalate"


async def test_waiting_on_customer_shifts_the_deadline_by_the_pause(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle, st = await start(ts_env.client, task_queue)
        await act(handle, "respond", message="您好")
        before = (await status(handle)).clocks["handling"].deadline
        await act(handle, "ask_customer", question="请提供账单月份")
        st = await status(handle)
        assert st.sub_state == "waiting_on_customer" and st.clocks["handling"].paused
        await ts_env.sleep(timedelta(hours=30))  # longer than the 24 h target: no breach while paused
        st = await status(handle)
        assert not st.clocks["handling"].breached
        await act(handle, "customer_reply", actor="C-1001", role="customer", text="十月")
        after = (await status(handle)).clocks["handling"]
        shift = after.deadline - before
        assert abs(shift.total_seconds() - after.paused_seconds) < 1
        assert after.paused_seconds >= 30 * 3600


async def test_extension_requires_a_customer_notice_and_is_capped(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue)
        await act(handle, "respond", message="您好")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await act(handle, "extend", by="24h", reason="需要第三方核实")
        assert "customer_notice" in str(refused.value.cause)
        before = (await status(handle)).clocks["handling"].deadline
        st = await act(handle, "extend", by="24h", reason="需要第三方核实", customer_notice="已电话告知客户并获理解")
        assert st.clocks["handling"].deadline - before == timedelta(hours=24) and st.extensions == 1
        with pytest.raises(WorkflowUpdateFailedError) as capped:
            await act(handle, "extend", by="1h", reason="again", customer_notice="told")
        assert "allows 1 extension" in str(capped.value.cause)
    assert "extension" in [n["template"] for n in archive.outbox(st.request_id)]


async def test_reclassification_recomputes_from_the_original_start(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle, st = await start(ts_env.client, task_queue)
        started = st.clocks["handling"].started_at
        await act(handle, "respond", message="您好")
        await ts_env.sleep(timedelta(hours=1))
        st = await act(handle, "reclassify", priority="complex", reason="需要网络部和计费部协同")
        assert st.priority == "complex"
        assert st.clocks["handling"].started_at == started
        assert st.clocks["handling"].deadline == started + timedelta(hours=48)  # 002 §2.1.3 complex: 48 h
        with pytest.raises(WorkflowUpdateFailedError):
            await act(handle, "reclassify", priority="platinum", reason="typo")


async def test_dissatisfied_revisit_reopens_until_the_cap(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue)
        await act(handle, "respond", message="您好")
        for round_no in range(3):  # reopen cap 2: the third low score ends it
            await act(handle, "resolve", summary=f"第{round_no + 1}次处理")
            await confirm(handle)
            st = await survey(ts_env, handle, score=40, resolved=False)
            if round_no < 2:
                st = await wait_for_status(handle, lambda s, n=round_no: s.reopen_count == n + 1 and
                                           s.stage == "handling")
                assert any(step.trigger == "revisit" for step in st.escalations)
        final = await handle.result()
    assert final.reopen_count == 2 and final.outcome == "reopen_cap_reached"
    assert final.escalations[0].trigger == "revisit"  # 二次服务 raises the ladder; unacknowledged, it climbs to the top
    assert final.escalation_level == 3
    trail = actions(archive, final.request_id)
    assert trail.count("reopened") == 2 and "escalation_at_top" in trail and "reopen_refused" in trail
    assert len(archive.archive_records(final.request_id)) == 3  # one final record per closure, none overwritten


async def test_no_survey_answer_ends_unreachable_and_window_closes_unconfirmed(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue)
        await act(handle, "respond", message="您好")
        await act(handle, "resolve", summary="done")
        final = await handle.result()  # time skips through the confirmation and survey windows
    assert final.confirmed is False and final.outcome == "unreachable"
    assert "survey_unanswered" in actions(archive, final.request_id)


async def test_customer_rejecting_the_result_goes_back_to_handling(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue)
        await act(handle, "respond", message="您好")
        await act(handle, "resolve", summary="first try")
        await confirm(handle, accepted=False)
        st = await wait_for_status(handle, lambda s: s.stage == "handling")
        assert st.clocks["handling"].stopped_at is None and st.summary is None
        await act(handle, "resolve", summary="second try")
        await confirm(handle)
        st = await wait_for_status(handle, lambda s: s.stage == "closed")
        assert st.confirmed is True


async def test_ordinary_complaint_stays_with_the_team(ts_env: WorkflowEnvironment, archive: Archive,
                                                      task_queue: str) -> None:
    """002 §4.4: an ordinary complaint stays with the customer-service team: no escalation, nothing recorded."""
    async with running_worker(ts_env, archive, task_queue):
        handle, st = await start(ts_env.client, task_queue, type_hint="complaint", accepted_by="agent-wu",
                                 description="营业厅工作人员态度不好")
        await act(handle, "respond", actor="agent-wu", message="您好，非常抱歉")
    assert st.complaint_grade == "ordinary" and st.escalation_level == 0 and st.escalations == []
    trail = actions(archive, st.request_id)
    assert "escalate" not in trail and "escalation_at_top" not in trail
