"""Incidents (突发事件, SEEDS §11; scenario 6): declared and reported to the level's chain at once, linked requests,
progress told to each customer once, resolution reaching every linked request exactly once, review, reminders."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from archive import incidents as incident_store
from archive.store import Archive
from bench.incident import INCIDENTS, write_incident_pack
from cli.incidents import declare_incident
from models.incident import Declare, Link, Progress, Resolve, Review, incident_workflow_id
from policies.loader import BUILTIN_DIR
from tests.conftest import STARTED, running_worker
from tests.polling import eventually
from tests.workflow.helpers import start, status
from workflows.incident import IncidentWorkflow

SUP = {"id": "sup-wang", "role": "supervisor"}
LEAD = "lead-zhao"


@pytest.fixture(autouse=True)
def incident_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """finance with an incidents section (no detection: the tests' complaints would raise incidents), on
    KEFU_POLICY_PATH."""
    write_incident_pack(tmp_path / "policies", auto=None)
    monkeypatch.setenv("KEFU_POLICY_PATH", str(tmp_path / "policies"))


async def declare(env: WorkflowEnvironment, task_queue: str, **overrides: Any) -> WorkflowHandle:
    raw = {"incident_id": f"inc-{uuid.uuid4().hex[:8]}", "policy": "finance", "level": 2,
           "title": "手机银行登录故障", "lead": LEAD, "declared_by": SUP, **overrides}
    declaration = Declare.model_validate(raw)
    STARTED.append(incident_workflow_id(declaration.incident_id))
    return await declare_incident(env.client, declaration, task_queue)


async def complaint(env: WorkflowEnvironment, task_queue: str, customer: str = "C-1001", **overrides: Any) -> str:
    fields = {"policy": "finance", "channel": "phone", "type_hint": "complaint",
              "description": "手机银行无法登录，我要投诉",
              "customer": {"id": customer, "name": "王小明", "phone": "13812345678"}, **overrides}
    _, st = await start(env.client, task_queue, **fields)
    return st.request_id


def actions(archive: Archive, incident_id: str) -> list[str]:
    return [e["action"] for e in incident_store.incident_trail(archive, incident_id)]


def incident_notices(archive: Archive, audience: str) -> list[dict[str, Any]]:
    return [n for n in archive.outbox() if n["template"] == "incident" and n["audience"] == audience]


def request_actions(archive: Archive, request_id: str, action: str) -> list[dict[str, Any]]:
    return [e for e in archive.audit_trail(request_id) if e["action"] == action and not e["rejected"]]


async def test_declare_reports_to_the_levels_chain_at_once(ts_env: WorkflowEnvironment, archive: Archive,
                                                          task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle = await declare(ts_env, task_queue, level=1)
        incident_id = (await handle.query(IncidentWorkflow.status)).incident_id
        await eventually(lambda: "plan_activated" in actions(archive, incident_id))
        notices = await eventually(lambda: incident_notices(archive, "escalation"))
        st = await handle.query(IncidentWorkflow.status)
    assert {n["recipient"] for n in notices} == set(INCIDENTS["levels"][1]["report_to"])  # 000 §7.2 一级
    assert all(n["request_id"] == incident_id and incident_id in n["subject"] for n in notices)
    assert actions(archive, incident_id)[:3] == ["declared", "reported", "plan_activated"]
    assert st.stage == "open" and st.level == 1 and st.lead == LEAD
    row = incident_store.get_incident(archive, incident_id)
    assert row is not None and row["stage"] == "open" and row["level"] == 1


async def test_refusals_name_the_field(ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle = await declare(ts_env, task_queue)
        agent = {"id": "agent-li", "role": "agent"}
        cases = [
            (IncidentWorkflow.link, Link.model_validate({"actor": agent, "request_ids": ["r-1"]}), "actor.role"),
            (IncidentWorkflow.link, Link.model_validate({"actor": SUP, "request_ids": ["bad id"]}), "request_ids"),
            (IncidentWorkflow.progress, Progress.model_validate({"actor": agent, "text": "处理中"}), "actor.role"),
            (IncidentWorkflow.review, Review.model_validate({"actor": SUP, "findings": "x"}), "stage"),
            (IncidentWorkflow.resolve, Resolve.model_validate({"actor": {"id": LEAD, "role": "team_lead"},
                                                               "summary": "ok", "root_cause": "x"}), "actor.role"),
        ]
        for update, payload, field in cases:
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(update, payload)
            message = refused.value.cause.message  # type: ignore[union-attr]
            assert message.startswith(f"{field}:") and "\n" not in message, message
        # the lead may post progress whatever their role
        st = await handle.execute_update(IncidentWorkflow.progress, Progress.model_validate(
            {"actor": {"id": LEAD, "role": "agent"}, "text": "已定位故障"}))
    assert st.updates == 1


async def test_a_pack_without_incidents_fails_the_workflow(ts_env: WorkflowEnvironment, archive: Archive,
                                                          task_queue: str, tmp_path: Path) -> None:
    pack = yaml.safe_load((BUILTIN_DIR / "general.yaml").read_text(encoding="utf-8"))
    pack.pop("incidents", None)
    (tmp_path / "policies" / "general.yaml").write_text(yaml.safe_dump(pack, allow_unicode=True), encoding="utf-8")
    async with running_worker(ts_env, archive, task_queue):
        declaration = Declare.model_validate({"incident_id": f"inc-{uuid.uuid4().hex[:8]}", "policy": "general",
                                              "level": 3, "title": "x", "lead": LEAD, "declared_by": SUP})
        handle = await ts_env.client.start_workflow(IncidentWorkflow.run, declaration, task_queue=task_queue,
                                                    id=incident_workflow_id(declaration.incident_id))
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "NoIncidentPolicy" and cause.non_retryable
    assert cause.message.startswith("policy:")


async def test_progress_tells_each_customer_once(ts_env: WorkflowEnvironment, archive: Archive,
                                                task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        first = await complaint(ts_env, task_queue, "C-1")
        second = await complaint(ts_env, task_queue, "C-1")  # the same customer complained twice
        third = await complaint(ts_env, task_queue, "C-2")
        handle = await declare(ts_env, task_queue, request_ids=[first])
        st = await handle.execute_update(IncidentWorkflow.link, Link.model_validate(
            {"actor": SUP, "request_ids": [second, third, first]}))
        assert st.linked == 3
        await handle.execute_update(IncidentWorkflow.progress, Progress.model_validate(
            {"actor": {"id": LEAD, "role": "team_lead"}, "text": "已切换备用线路，正在恢复"}))
        notices = await eventually(lambda: len(incident_notices(archive, "customer")) >= 2
                                   and incident_notices(archive, "customer"))
        await eventually(lambda: all(request_actions(archive, r, "incident_update") for r in (first, second, third)))
        done = await handle.query(IncidentWorkflow.status)
    assert len(notices) == 2 and {n["key"].rsplit(":", 1)[1] for n in notices} == {"C-1", "C-2"}
    assert all("已切换备用线路" in n["body"] and n["channel"] == "sms" for n in notices)
    for request_id in (first, second, third):
        assert len(request_actions(archive, request_id, "incident_linked")) == 1
        assert len(request_actions(archive, request_id, "incident_update")) == 1
    assert done.broadcast_pending == 0
    assert incident_store.linked_requests(archive, done.incident_id) == [first, second, third]


async def test_resolve_reaches_every_linked_request_once_and_review_lets_them_close(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        linked = [await complaint(ts_env, task_queue, f"C-{n}") for n in range(4)]
        handle = await declare(ts_env, task_queue, request_ids=linked)
        incident_id = (await handle.query(IncidentWorkflow.status)).incident_id
        await handle.execute_update(IncidentWorkflow.resolve, Resolve.model_validate(
            {"actor": SUP, "summary": "登录服务已恢复", "root_cause": "认证服务证书过期"}))
        await eventually(lambda: all(request_actions(archive, r, "resolve") for r in linked))
        # a complaint submitted with the incident's id after the resolution is resolved too (scenario 6)
        late = await complaint(ts_env, task_queue, "C-late", incident_id=incident_id)
        await eventually(lambda: request_actions(archive, late, "resolve"))
        for request_id in [*linked, late]:
            st = await status(ts_env.client.get_workflow_handle(f"kefu-sr-{request_id}"))
            assert st.stage == "resolved" and st.root_cause == "认证服务证书过期", (request_id, st.stage)
        reviewed = await handle.execute_update(IncidentWorkflow.review, Review.model_validate(
            {"actor": SUP, "findings": "证书到期未告警", "actions": ["证书到期监控"]}))
        assert reviewed.stage == "reviewed"
        final = await handle.result()
    assert final.stage == "reviewed" and final.linked == 5 and final.broadcast_pending == 0
    for request_id in [*linked, late]:
        assert len(request_actions(archive, request_id, "incident_resolved")) == 1
        assert len(request_actions(archive, request_id, "resolve")) == 1
        assert len(request_actions(archive, request_id, "incident_reviewed")) == 1
    assert actions(archive, incident_id).count("resolved") == 1
    assert incident_store.get_incident(archive, incident_id)["stage"] == "reviewed"  # type: ignore[index]


async def test_reminders_for_progress_and_review(ts_env: WorkflowEnvironment, archive: Archive,
                                                task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle = await declare(ts_env, task_queue, level=2)  # 二级: progress every 2 h
        incident_id = (await handle.query(IncidentWorkflow.status)).incident_id
        await eventually(lambda: "plan_activated" in actions(archive, incident_id))
        await ts_env.sleep(2 * 3600 + 60)
        await eventually(lambda: "progress_overdue" in actions(archive, incident_id))
        await handle.execute_update(IncidentWorkflow.progress, Progress.model_validate(
            {"actor": {"id": LEAD, "role": "team_lead"}, "text": "排查中"}))
        await ts_env.sleep(3600)  # within 2 h of the progress: no second reminder
        assert actions(archive, incident_id).count("progress_overdue") == 1
        await handle.execute_update(IncidentWorkflow.resolve, Resolve.model_validate(
            {"actor": SUP, "summary": "已恢复", "root_cause": "配置错误"}))
        await ts_env.sleep(3 * 86400 + 60)  # review_within 3d
        await eventually(lambda: "review_overdue" in actions(archive, incident_id))
    reminders = [n for n in incident_notices(archive, "owner") if n["recipient"] == LEAD]
    assert len(reminders) == 2 and all(n["request_id"] == incident_id for n in reminders)


async def test_a_surge_of_complaints_raises_one_incident(ts_env: WorkflowEnvironment, archive: Archive,
                                                        task_queue: str, tmp_path: Path) -> None:
    """000 §7.1: complaints of one category from `auto.customers` distinct customers within the window raise an
    incident at level `auto.level` with the named duty lead; later complaints join it."""
    policy = write_incident_pack(tmp_path / "policies", pack_id=f"fin_{uuid.uuid4().hex[:8]}")  # auto: 3 customers
    async with running_worker(ts_env, archive, task_queue):
        first = await complaint(ts_env, task_queue, "C-1", policy=policy)
        again = await complaint(ts_env, task_queue, "C-1", policy=policy)  # one customer twice counts once
        second = await complaint(ts_env, task_queue, "C-2", policy=policy)
        assert not any(request_actions(archive, r, "incident_detected") for r in (first, again, second))
        third = await complaint(ts_env, task_queue, "C-3", policy=policy)
        detected = await eventually(lambda: request_actions(archive, third, "incident_detected"))
        incident_id = detected[0]["detail"]["incident_id"]
        STARTED.append(incident_workflow_id(incident_id))
        assert incident_id.startswith(f"auto-{policy}-")
        fourth = await complaint(ts_env, task_queue, "C-4", policy=policy)
        await eventually(lambda: request_actions(archive, fourth, "incident_detected"))
        handle = ts_env.client.get_workflow_handle(incident_workflow_id(incident_id))
        st = await handle.query(IncidentWorkflow.status)
        await eventually(lambda: all(request_actions(archive, r, "incident_linked")
                                     for r in (first, again, second, third, fourth)))
    assert st.auto and st.level == INCIDENTS["auto"]["level"] and st.lead == INCIDENTS["auto"]["lead"]
    assert sorted(incident_store.linked_requests(archive, incident_id)) == sorted([first, again, second, third,
                                                                                  fourth])
