"""Long-lived histories (issue 15): a request that takes many agent actions continues as a new run with its state
intact, so one history never grows toward Temporal's limits (51,200 events per run). The pack's
`continue_as_new_after` is lowered here so a few dozen notes cross it several times; `python -m bench.long_history`
(make bench) runs 2,500 actions on the built-in threshold."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from archive import incidents as incident_store
from archive.store import Archive
from bench.incident import write_incident_pack
from cli.incidents import declare_incident
from infra import temporal_env
from models.incident import Declare, Link, Progress, Resolve, Review, incident_workflow_id
from tests.conftest import STARTED, running_worker
from tests.workflow.helpers import act, confirm, start, status, survey
from tests.workflow.test_policy_versions import operator_pack
from workflows.incident import IncidentWorkflow

NOTES = 40


@pytest_asyncio.fixture
async def own_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of these tests' own: runs that continued as new are left out of the shared one, where
    a full-suite run stalled a later test's time skipping (RPC 'Timeout expired' in test_sla_paths)."""
    async with await WorkflowEnvironment.start_time_skipping(
            interceptors=temporal_env.client_interceptors(), test_server_existing_path=temporal_env.test_server(),
            data_converter=temporal_env.data_converter()) as env:
        await temporal_env.register_search_attributes(env.client)
        yield env


async def test_a_long_case_continues_as_new_and_keeps_every_line(
        own_env: WorkflowEnvironment, archive: Archive, task_queue: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    operator_pack(tmp_path, continue_as_new_after=60)
    monkeypatch.setenv("KEFU_POLICY_PATH", str(tmp_path))
    async with running_worker(own_env, archive, task_queue):
        handle, first = await start(own_env.client, task_queue, type_hint="complaint",
                                    description="投诉：账单多扣费，我要投诉", accepted_by="agent-li")
        await act(handle, "respond", message="您好，已受理")
        await act(handle, "ask_customer", question="请提供账单截图")  # a pause carried across runs
        for n in range(NOTES):
            await act(handle, "note", text=f"进展 {n}", customer_visible=n % 10 == 0)
        mid = await status(handle)
        await act(handle, "customer_reply", text="截图已发")
        await act(handle, "resolve", summary="已退款", root_cause="重复扣费")
        await confirm(handle)
        await survey(own_env, handle, score=96)
        done = await handle.result()
    # the last run continues an earlier one; the request kept its ticket, owner, clocks and ladder
    history = await own_env.client.get_workflow_handle(handle.id).fetch_history()
    runs = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED]
    assert len(runs) == 1 and runs[0].workflow_execution_started_event_attributes.continued_execution_run_id
    assert mid.ticket == first.ticket and mid.owner == "agent-li" and mid.complaint_owner == "agent-li"
    assert mid.clocks["handling"].paused and mid.clocks["handling"].started_at == first.clocks["handling"].started_at
    assert done.stage == "completed" and done.outcome == "satisfied" and done.satisfaction == 96
    trail = archive.audit_trail(first.request_id)
    assert [e["seq"] for e in trail] == list(range(len(trail)))  # no gap, no duplicate across runs
    assert sum(e["action"] == "note" for e in trail) == NOTES
    progress = [n for n in archive.outbox(first.request_id) if n["template"] == "progress"]
    assert len(progress) == len({n["key"] for n in progress}) == 1 + 1 + NOTES // 10  # respond, ask, visible notes


async def test_a_large_incident_continues_as_new_and_keeps_its_links_and_log(
        own_env: WorkflowEnvironment, archive: Archive, task_queue: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Many link updates and progress posts (5,000 links in `bench.long_history --incident-links`): the incident
    continues as new with its links, deliveries and audit numbering."""
    folder = tmp_path / "policies"
    write_incident_pack(folder, auto=None)
    pack = yaml.safe_load((folder / "finance.yaml").read_text(encoding="utf-8"))
    (folder / "finance.yaml").write_text(yaml.safe_dump({**pack, "continue_as_new_after": 60}, allow_unicode=True),
                                        encoding="utf-8")
    monkeypatch.setenv("KEFU_POLICY_PATH", str(folder))
    sup = {"id": "sup-wang", "role": "supervisor"}
    declaration = Declare.model_validate({"incident_id": "inc-long", "policy": "finance", "level": 2,
                                          "title": "大面积故障", "lead": "lead-zhao", "declared_by": sup})
    STARTED.append(incident_workflow_id("inc-long"))
    async with running_worker(own_env, archive, task_queue):
        handle = await declare_incident(own_env.client, declaration, task_queue)
        ids = [f"gone-{n:04d}" for n in range(120)]  # never started: each delivery counts them missing, quickly
        for start_at in range(0, len(ids), 10):
            await handle.execute_update(IncidentWorkflow.link, Link.model_validate(
                {"actor": sup, "request_ids": ids[start_at:start_at + 10]}))
            await handle.execute_update(IncidentWorkflow.progress, Progress.model_validate(
                {"actor": sup, "text": f"处理中 {start_at}"}))
        await handle.execute_update(IncidentWorkflow.resolve, Resolve.model_validate(
            {"actor": sup, "summary": "已恢复", "root_cause": "光缆中断"}))
        await handle.execute_update(IncidentWorkflow.review, Review.model_validate(
            {"actor": sup, "findings": "缺少冗余", "actions": ["双路由"]}))
        final = await handle.result()
    history = await own_env.client.get_workflow_handle(handle.id).fetch_history()
    assert history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
    assert final.stage == "reviewed" and final.linked == len(ids) and final.broadcast_pending == 0
    assert final.updates == len(ids) // 10
    assert incident_store.linked_requests(archive, "inc-long") == ids
    trail = incident_store.incident_trail(archive, "inc-long")
    assert [e["seq"] for e in trail] == list(range(len(trail)))
