"""The five stages in order on the time-skipping server, checked from outside: status, archive, outbox."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from archive.store import Archive
from cli.main import submit
from models.intake import workflow_id_for
from models.status import STAGES
from tests.conftest import STARTED, running_worker
from tests.workflow.helpers import act, confirm, intake, start, status, survey


async def test_happy_path_walks_every_stage_in_order(ts_env: WorkflowEnvironment, archive: Archive,
                                                     task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle, first = await start(ts_env.client, task_queue)
        assert first.stage == "handling" and first.sub_state == "pending"
        assert first.request_type == "inquiry" and first.priority == "normal"
        assert set(first.clocks) == {"first_response", "handling", "closure"}

        await ts_env.sleep(timedelta(minutes=4))
        responded = await act(handle, "respond", message="您好，感谢您的咨询，我这边处理")
        assert responded.clocks["first_response"].stopped_at is not None
        assert not responded.clocks["first_response"].breached
        assert responded.owner == "agent-li" and responded.sub_state == "in_progress"

        await act(handle, "resolve", summary="账单明细已通过短信发送")
        await confirm(handle)
        await survey(ts_env, handle, score=96, nps=9)
        final = await handle.result()

    assert final.stage == "completed" and final.outcome == "satisfied"
    assert list(final.timeline) == list(STAGES)
    times = list(final.timeline.values())
    assert times == sorted(times)
    assert final.satisfaction == 96 and final.reopen_count == 0 and final.escalation_level == 0
    assert final.retention_until is not None
    assert final.retention_until.year == final.timeline["closed"].year + 5  # 002 §2.4.2 normal: 5 years

    row = archive.get(final.request_id)
    assert row is not None and row["stage"] == "completed" and row["ticket"] == final.ticket
    actions = [e["action"] for e in archive.audit_trail(final.request_id)]
    for expected in ("accepted", "classified", "respond", "resolve", "result_reported", "confirm", "closed",
                     "survey_sent", "survey", "completed"):
        assert expected in actions
    assert [e["seq"] for e in archive.audit_trail(final.request_id)] == list(range(len(actions)))
    notices = archive.outbox(final.request_id)
    templates = [n["template"] for n in notices]
    assert templates.count("acknowledgement") == 1
    ack = next(n for n in notices if n["template"] == "acknowledgement")
    assert final.ticket in ack["body"]
    assert {"acknowledgement", "progress", "resolution", "revisit"} <= set(templates)
    assert len(archive.archive_records(final.request_id)) == 1


async def test_retried_submission_reaches_the_same_workflow(ts_env: WorkflowEnvironment, archive: Archive,
                                                            task_queue: str) -> None:
    request = intake()
    STARTED.append(workflow_id_for(request.request_id))
    async with running_worker(ts_env, archive, task_queue):
        _, first = await submit(ts_env.client, request, task_queue=task_queue)
        _, again = await submit(ts_env.client, request, task_queue=task_queue)
    assert first is not None and again is not None
    assert first.ticket == again.ticket and first.workflow_id == again.workflow_id
    acks = [n for n in archive.outbox(request.request_id) if n["template"] == "acknowledgement"]
    assert len(acks) == 1


async def test_status_query_reports_policy_and_clocks(ts_env: WorkflowEnvironment, archive: Archive,
                                                      task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue)
        st = await status(handle)
    assert st.policy_id == "service_center" and st.policy_version == 1
    closure = st.clocks["closure"]
    assert closure.calendar == "business" and closure.target_seconds == 3 * 27000  # 3 working days, 002 §2.1.3
    assert st.expected_completion == closure.deadline


async def test_received_at_ahead_of_the_server_clock_is_clamped(ts_env: WorkflowEnvironment, archive: Archive,
                                                                task_queue: str) -> None:
    """A backend whose clock runs ahead must not start a clock in the future (respond would then fail)."""
    ahead = (await ts_env.get_current_time()) + timedelta(minutes=3)
    async with running_worker(ts_env, archive, task_queue):
        handle, st = await start(ts_env.client, task_queue, received_at=ahead.isoformat())
        assert st.clocks["first_response"].started_at <= st.timeline["classified"] < ahead
        responded = await act(handle, "respond", message="您好")
    assert responded.clocks["first_response"].stopped_at is not None


async def test_activities_and_timers_carry_readable_summaries(ts_env: WorkflowEnvironment, archive: Archive,
                                                              task_queue: str) -> None:
    """Operators read these in the Web UI's event history."""
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue)
        history = await handle.fetch_history()
    payloads = ts_env.client.data_converter.payload_converter
    summaries = [payloads.from_payload(e.user_metadata.summary, str) for e in history.events
                 if e.HasField("user_metadata") and e.user_metadata.HasField("summary")]
    assert any(s.startswith("register work order") for s in summaries)
    assert any(s.startswith("archive ") for s in summaries)
    assert any(s.startswith("first_response ") for s in summaries)  # the clock's timer
