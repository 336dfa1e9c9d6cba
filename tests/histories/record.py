"""Record the workflow histories the determinism gate replays (tests/workflow/test_replay.py).

    .venv/bin/python -m tests.histories.record            # rewrite every tests/histories/*.json
    .venv/bin/python -m tests.histories.record reopen     # only the named scenarios

Each scenario drives one representative request through the real worker on a fresh time-skipping server, then
writes `handle.fetch_history()` as JSON. Re-record only on purpose: the committed files are the histories of runs
that are already in production, and the current code must keep replaying them (docs/determinism.md).
The scenarios are also driven, with encryption on, by tests/workflow/test_encryption.py.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from archive.directory import Directory
from archive.store import Archive
from cli.main import submit, wait_for_status
from infra import temporal_env
from models.actions import Actor
from models.assignment import Agent
from models.incident import Declare, Progress, Review, incident_workflow_id
from models.incident import Resolve as IncidentResolve
from tests.workflow.helpers import act, confirm, escalate, intake, survey
from worker import build_worker
from workflows.incident import IncidentWorkflow

HERE = Path(__file__).parent
TASK_QUEUE = "kefu-record"

Scenario = Callable[[WorkflowEnvironment, WorkflowHandle], Awaitable[None]]


async def happy_path(env: WorkflowEnvironment, handle: WorkflowHandle) -> None:
    await env.sleep(timedelta(minutes=4))
    await act(handle, "respond", message="您好，感谢您的咨询，我这边处理")
    await act(handle, "note", text="已核对账单", customer_visible=True, eta="今天")
    await act(handle, "resolve", summary="账单明细已通过短信发送")
    await confirm(handle)
    await survey(env, handle, score=96, nps=9)


async def breach_escalation(env: WorkflowEnvironment, handle: WorkflowHandle) -> None:
    """First response breaches, the ladder climbs to the team lead, then on ack timeout to the supervisor, who
    acknowledges; the case then finishes normally."""
    await env.sleep(timedelta(minutes=11))
    await wait_for_status(handle, lambda s: s.clocks["first_response"].breached)
    await env.sleep(timedelta(minutes=31))
    await wait_for_status(handle, lambda s: s.escalation_level == 2)
    await act(handle, "acknowledge", actor="sup-chen", role="supervisor", comment="on it")
    await act(handle, "respond", actor="agent-zhao", message="您好，抱歉久等")
    await act(handle, "resolve", actor="agent-zhao", summary="已处理")
    await confirm(handle)
    await survey(env, handle, score=95)


async def reopen(env: WorkflowEnvironment, handle: WorkflowHandle) -> None:
    """A dissatisfied revisit reopens the case (二次服务); the second round satisfies."""
    await act(handle, "respond", message="您好")
    await act(handle, "resolve", summary="第1次处理")
    await confirm(handle)
    await survey(env, handle, score=40, resolved=False)
    await wait_for_status(handle, lambda s: s.reopen_count == 1 and s.stage == "handling")
    await act(handle, "resolve", summary="第2次处理")
    await confirm(handle)
    await survey(env, handle, score=95)


async def rejection_extension(env: WorkflowEnvironment, handle: WorkflowHandle) -> None:
    """Waiting on the customer, an extension with a customer notice, a refused escalation signal, reclassification,
    and the customer rejecting the first result."""
    await act(handle, "respond", message="您好")
    await act(handle, "ask_customer", question="请提供账单月份")
    await env.sleep(timedelta(hours=2))
    await act(handle, "customer_reply", actor="C-1001", role="customer", text="十月")
    await act(handle, "extend", by="24h", reason="需要第三方核实", customer_notice="已电话告知客户并获理解")
    await act(handle, "reclassify", priority="complex", reason="需要网络部和计费部协同")
    await escalate(handle, "agent-li", "agent", "please")  # refused: recorded as rejected
    await act(handle, "transfer", department="finance", reason="refund")
    await act(handle, "resolve", summary="first try")
    await confirm(handle, accepted=False)
    await wait_for_status(handle, lambda s: s.stage == "handling")
    await act(handle, "resolve", summary="second try")
    await confirm(handle)
    await survey(env, handle, score=95)


async def dispatch_return(env: WorkflowEnvironment, handle: WorkflowHandle) -> None:
    """Dispatch to the network team (003 §1.1): the first assignee lets the return timer run out, the second
    declines, the third accepts and resolves; the capacity slot is released at resolution."""
    await wait_for_status(handle, lambda s: s.sub_state == "assigned" and s.owner == "net-1")
    await act(handle, "respond", message="您好，已为您派单网络部")
    await env.sleep(timedelta(minutes=16))
    await wait_for_status(handle, lambda s: s.owner == "net-2")
    await act(handle, "decline", actor="net-2", reason="外勤中")
    await wait_for_status(handle, lambda s: s.owner == "net-3")
    await act(handle, "accept", actor="net-3")
    await act(handle, "resolve", actor="net-3", summary="光缆已修复")
    await confirm(handle)
    await survey(env, handle, score=95)


async def incident_linked(env: WorkflowEnvironment, handle: WorkflowHandle) -> None:
    """A request submitted with an incident id (SEEDS §11): linked, told of progress, resolved by the incident's
    resolution, and closed only after the incident review."""
    incident = env.client.get_workflow_handle(incident_workflow_id(INCIDENT))
    lead = Actor(id="sup-chen", role="supervisor")
    await wait_for_status(handle, lambda s: s.last_action == "incident_linked")
    await act(handle, "respond", message="您好，已冻结账户并上报安全事件")
    await incident.execute_update("update", Progress(actor=lead, text="已确认为盗刷"))
    await incident.execute_update("resolve", IncidentResolve(actor=lead, summary="资金已追回", root_cause="钓鱼短信"))
    await confirm(handle)
    await wait_for_status(handle, lambda s: s.sub_state == "awaiting_incident_review")
    await incident.execute_update("review", Review(actor=lead, findings="加强异常交易拦截"))
    await survey(env, handle, score=93)


async def seed_network_team(env: WorkflowEnvironment, store: Archive, task_queue: str) -> None:
    Directory(store.engine).upsert_agents([Agent(id=f"net-{n}", name=f"net-{n}", team="network",
                                                 department="network", capacity=3) for n in (1, 2, 3)])


async def declare_incident(env: WorkflowEnvironment, store: Archive, task_queue: str) -> None:
    await env.client.start_workflow(
        IncidentWorkflow.run, Declare(incident_id=INCIDENT, policy="finance", level=2, title="账户盗刷事件",
                                      lead="sup-chen", declared_by=Actor(id="sup-chen", role="supervisor")),
        id=incident_workflow_id(INCIDENT), task_queue=task_queue)


INCIDENT = "INC-REPLAY"
INCIDENT_HISTORY = "incident_workflow"  # IncidentWorkflow's history, recorded with scenario incident_linked
OUTAGE = {"policy": "telecom", "channel": "phone", "type_hint": None, "description": "家里宽带断网了，完全上不了网"}
BREACH = {"policy": "finance", "channel": "phone", "type_hint": None, "security": True, "incident_id": INCIDENT,
          "description": "我的账户出现未经授权的操作，资金被转走", "accepted_by": "agent-zhou"}
SCENARIOS: dict[str, tuple[dict[str, Any], Scenario]] = {
    "happy_path": ({}, happy_path),
    "breach_escalation": ({"accepted_by": "agent-zhao"}, breach_escalation),
    "reopen": ({}, reopen),
    "rejection_extension": ({}, rejection_extension),
    "dispatch_return": (OUTAGE, dispatch_return),  # recorded with issue 6's code (patch flush-once-per-task)
    "incident_linked": (BREACH, incident_linked),
}
Setup = Callable[[WorkflowEnvironment, Archive, str], Awaitable[None]]
SETUP: dict[str, Setup] = {"dispatch_return": seed_network_team, "incident_linked": declare_incident}


def request_id(name: str) -> str:
    return f"replay-{name.replace('_', '-')}"


def workflow_id(name: str) -> str:
    """The workflow id a recorded history belongs to (the replayer is given the same one)."""
    return f"kefu-sr-{request_id(name)}"


async def drive(env: WorkflowEnvironment, client: Client, task_queue: str, name: str, rid: str | None = None,
                **overrides: Any) -> WorkflowHandle:
    """Run scenario `name` to completion through `client` (a worker must poll `task_queue`)."""
    fields, scenario = SCENARIOS[name]
    handle, st = await submit(client, intake(request_id=rid or request_id(name), **{**fields, **overrides}),
                              task_queue=task_queue)
    assert st is not None and st.ticket
    await scenario(env, handle)
    await handle.result()
    return handle


def write(name: str, history: WorkflowHistory) -> None:
    path = HERE / f"{name}.json"
    path.write_text(json.dumps(json.loads(history.to_json()), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{path}: {len(history.events)} events, {path.stat().st_size // 1024} KiB")


async def record(names: list[str]) -> None:
    # recorded without encryption, whatever the environment says: the committed files stay readable
    env = await WorkflowEnvironment.start_time_skipping(
        interceptors=temporal_env.client_interceptors(), test_server_existing_path=temporal_env.test_server(),
        data_converter=pydantic_data_converter)
    try:
        await temporal_env.register_search_attributes(env.client)
        with tempfile.TemporaryDirectory() as tmp:
            store = Archive(f"sqlite:///{tmp}/record.db")
            async with build_worker(env.client, store, task_queue=TASK_QUEUE):
                for name in names:
                    if name in SETUP:
                        await SETUP[name](env, store, TASK_QUEUE)
                    handle = await drive(env, env.client, TASK_QUEUE, name)
                    write(name, await handle.fetch_history())
                    if name == "incident_linked":  # and the incident's own run, once it completed
                        incident = env.client.get_workflow_handle(incident_workflow_id(INCIDENT))
                        await incident.result()
                        write(INCIDENT_HISTORY, await incident.fetch_history())
    finally:
        await env.shutdown()


if __name__ == "__main__":
    chosen = sys.argv[1:] or list(SCENARIOS)
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        sys.exit(f"unknown scenario(s) {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}")
    asyncio.run(record(chosen))
