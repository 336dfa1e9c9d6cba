"""The twelve acceptance scenarios of SCENARIOS.md, one test each.

Each drives one request through the whole lifecycle under its policy pack on the time-skipping server, then checks
the outcome from outside: the `status` query, the archive rows (registration, audit trail, final records with their
retention date) and the notification outbox. Numbers come from SEEDS.md and the packs in policies/.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from archive.directory import Directory
from archive.store import Archive
from domain.calendar import business_calendar
from models.actions import Actor
from models.assignment import Agent
from models.incident import Declare, Progress, Review, incident_workflow_id
from models.incident import Resolve as IncidentResolve
from models.status import STAGES, RequestStatus
from policies.loader import get_pack
from tests.conftest import STARTED, running_worker
from tests.polling import wait_for_status
from tests.workflow.helpers import act, confirm, escalate, start, status, survey
from workflows.incident import IncidentWorkflow

SHANGHAI = ZoneInfo("Asia/Shanghai")
MIN, HOUR = 60, 3600
PHONE = "13812345678"  # the helpers' default customer


# --- reading the outcome from outside -------------------------------------------------------------------------------
def trail(archive: Archive, request_id: str) -> list[dict[str, Any]]:
    return archive.audit_trail(request_id)


def actions(archive: Archive, request_id: str) -> list[str]:
    return [e["action"] for e in trail(archive, request_id) if not e["rejected"]]


def events(archive: Archive, request_id: str, action: str) -> list[dict[str, Any]]:
    return [e for e in trail(archive, request_id) if e["action"] == action and not e["rejected"]]


def notices(archive: Archive, request_id: str, template: str | None = None) -> list[dict[str, Any]]:
    return [n for n in archive.outbox(request_id) if template is None or n["template"] == template]


def assert_clock(st: RequestStatus, name: str, target_seconds: int, calendar: str = "24x7") -> None:
    clock = st.clocks[name]
    assert clock.target_seconds == target_seconds, f"{name}: {clock.target_seconds} s, expected {target_seconds} s"
    assert clock.calendar == calendar
    if calendar == "24x7":
        assert clock.deadline == clock.started_at + timedelta(seconds=target_seconds + clock.paused_seconds)


def assert_met(st: RequestStatus, *names: str) -> None:
    """Each named clock stopped before its deadline and never breached."""
    for name in names:
        clock = st.clocks[name]
        assert clock.stopped_at is not None and not clock.breached, name
        assert clock.stopped_at <= clock.deadline, name


def assert_walked_every_stage(final: RequestStatus) -> None:
    assert final.stage == "completed"
    assert list(final.timeline) == list(STAGES)
    times = list(final.timeline.values())
    assert times == sorted(times)


def assert_archived(archive: Archive, final: RequestStatus, years: int) -> None:
    """Closed once, final record kept with its retention date (002 §2.4.2, 003 §4.4)."""
    closed = final.timeline["closed"]
    until = closed.replace(year=closed.year + years)
    assert final.retention_until == until
    records = archive.archive_records(final.request_id)
    assert len(records) == 1 and records[0]["retention_until"] == until and records[0]["closed_at"] == closed
    row = archive.get(final.request_id)
    assert row is not None and row["stage"] == "completed" and row["retention_until"] == until
    assert [e["seq"] for e in trail(archive, final.request_id)] == list(range(len(trail(archive, final.request_id))))


def assert_customer_notices(archive: Archive, request_id: str, channel: str, recipient: str) -> None:
    customer = [n for n in notices(archive, request_id) if n["audience"] == "customer"]
    assert customer and all(n["channel"] == channel and n["recipient"] == recipient for n in customer)
    assert {"acknowledgement", "resolution", "revisit"} <= {n["template"] for n in customer}


def later(hours: float) -> str:
    return (datetime.now(SHANGHAI) + timedelta(hours=hours)).isoformat(timespec="minutes")


# --- 1 finance ------------------------------------------------------------------------------------------------------
async def test_01_failed_transfer_by_phone(ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    """Funds at risk → urgent and joint handling with the business department (000 §2.2); resolved and confirmed
    within 24 h; result confirmed by SMS; archived."""
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue, policy="finance", channel="phone", type_hint=None,
                                description="转账失败：昨天向他人转账 20000 元，钱已扣但对方没有收到",
                                amount="20000.00", funds_at_risk=True, accepted_by="agent-zhou")
        st = await wait_for_status(handle, lambda s: s.stage == "handling")
        assert (st.request_type, st.category, st.priority) == ("repair", "failed_transfer", "urgent")
        assert st.participants == ["business"] and st.owner == "agent-zhou"
        assert_clock(st, "first_response", 5 * MIN)  # 001 §5.1–5.2: over 5 min is a delay
        assert_clock(st, "handling", 24 * HOUR)  # 000 §2.2
        assert_clock(st, "closure", 72 * HOUR)

        await ts_env.sleep(timedelta(minutes=2))
        await act(handle, "respond", actor="agent-zhou", message="您好，已受理，已第一时间联系业务部门联合核查")
        await act(handle, "note", actor="agent-zhou", text="业务部门已介入，正在向收款行查询", customer_visible=True,
                  eta=later(6))
        await ts_env.sleep(timedelta(hours=5))
        await act(handle, "resolve", actor="agent-zhou", summary="款项已退回您的原账户")
        await confirm(handle)
        st = await wait_for_status(handle, lambda s: s.stage == "closed")
        assert st.confirmed is True
        assert st.timeline["closed"] - st.timeline["received"] < timedelta(hours=24)
        await survey(ts_env, handle, score=95, nps=9)
        final = await handle.result()

    assert_walked_every_stage(final)
    assert final.outcome == "satisfied" and final.escalation_level == 0
    assert_met(final, "first_response", "handling", "closure")
    row = archive.get(final.request_id)  # 000 §2.1 registration: name, contact, type, amount, time
    assert row is not None and row["customer_name"] == "王小明" and row["customer_phone"] == PHONE
    assert row["amount"] == Decimal("20000.00") and row["received_at"] is not None
    assert row["category"] == "failed_transfer"
    classified, joint = events(archive, final.request_id, "classified")[0], events(archive, final.request_id,
                                                                                      "joint_handling")[0]
    assert joint["detail"]["department"] == "business" and joint["at"] == classified["at"]  # at once
    for step in ("accepted", "classified", "joint_handling", "respond", "note", "resolve", "result_reported",
                 "confirm", "closed", "survey_sent", "survey", "completed"):
        assert step in actions(archive, final.request_id)
    resolution = notices(archive, final.request_id, "resolution")
    assert len(resolution) == 1 and resolution[0]["channel"] == "sms" and resolution[0]["recipient"] == PHONE
    assert_customer_notices(archive, final.request_id, "sms", PHONE)
    assert_archived(archive, final, years=10)


async def test_02_rude_agent_complaint_by_email(ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    """Service attitude; the accepting agent owns the complaint to the end (首诉负责, 000 §2.5); root cause
    "staff error"; closed only after the customer confirms; revisit survey."""
    email = "lina@example.com"
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue, policy="finance", channel="email", type_hint=None,
                                customer={"id": "C-2002", "name": "李娜", "email": email},
                                description="投诉：昨天网点柜员态度非常粗鲁，对我大声呵斥", accepted_by="agent-sun")
        st = await wait_for_status(handle, lambda s: s.stage == "handling")
        assert (st.request_type, st.category, st.complaint_grade) == ("complaint", "service_attitude", "ordinary")
        assert st.complaint_owner == "agent-sun" and st.escalation_level == 0
        assert st.department == "customer_service"

        await act(handle, "respond", actor="agent-sun", message="您好，您的投诉已受理，我将全程负责")
        await act(handle, "note", actor="agent-sun", text="调取录音核实：柜员确有不当言语")  # facts first
        st = await act(handle, "assign", actor="sup-chen", role="supervisor", owner="agent-qian")
        assert st.owner == "agent-qian" and st.complaint_owner == "agent-sun"  # the handler changes, the owner not
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await act(handle, "resolve", actor="agent-qian", summary="已致歉")
        assert "root_cause" in str(refused.value.cause)
        await act(handle, "resolve", actor="agent-qian", summary="已向您当面致歉并对柜员进行处理",
                  root_cause="staff error")
        await wait_for_status(handle, lambda s: s.last_action == "result_reported")
        await ts_env.sleep(timedelta(hours=2))
        st = await status(handle)
        assert st.stage == "resolved" and st.confirmed is None  # not closed without the customer
        await confirm(handle)
        await survey(ts_env, handle, score=90)
        final = await handle.result()

    assert_walked_every_stage(final)
    assert final.complaint_owner == "agent-sun" and final.root_cause == "staff error" and final.confirmed is True
    assert final.outcome == "satisfied" and final.satisfaction == 90
    assert events(archive, final.request_id, "resolve")[0]["detail"]["root_cause"] == "staff error"
    closed = events(archive, final.request_id, "closed")[0]
    assert closed["detail"]["confirmed_by"] == "customer"
    assert closed["seq"] > events(archive, final.request_id, "confirm")[0]["seq"]
    assert_customer_notices(archive, final.request_id, "email", email)
    assert archive.archive_records(final.request_id)[0]["snapshot"]["complaint_owner"] == "agent-sun"
    assert_archived(archive, final, years=5)


async def test_03_wrongly_charged_fee(ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    """Operational error → the business department; a checker's acceptance (验收, 001 §4.2) before closure."""
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue, policy="finance", channel="phone", type_hint=None,
                                description="我要投诉：信用卡被多扣了一笔年费手续费 200 元")
        st = await wait_for_status(handle, lambda s: s.stage == "handling")
        assert (st.request_type, st.category, st.priority) == ("complaint", "operational_error", "normal")
        assert st.department == "business" and st.requires_check

        await act(handle, "respond", message="您好，已受理，正在转业务部门核查")
        await act(handle, "resolve", summary="已退还多收年费", root_cause="operational error: 年费减免标记漏录")
        st = await status(handle)
        assert st.stage == "resolved" and st.sub_state == "pending_check" and st.last_action != "result_reported"
        with pytest.raises(WorkflowUpdateFailedError):
            await act(handle, "check", passed=True)  # an agent is no checker
        st = await act(handle, "check", actor="tl-ma", role="team_lead", passed=False, remarks="未附退款凭证")
        st = await wait_for_status(handle, lambda s: s.stage == "handling")
        await act(handle, "resolve", summary="已退还多收年费 200 元，凭证已上传",
                  root_cause="operational error: 年费减免标记漏录")
        await act(handle, "check", actor="tl-ma", role="team_lead", passed=True, remarks="凭证齐全")
        await confirm(handle)
        await survey(ts_env, handle, score=88)
        final = await handle.result()

    assert_walked_every_stage(final)
    assert final.checked and final.department == "business" and final.outcome == "satisfied"
    checks = events(archive, final.request_id, "check")
    assert [c["detail"]["passed"] for c in checks] == [False, True] and checks[1]["actor_role"] == "team_lead"
    reported = events(archive, final.request_id, "result_reported")
    assert len(reported) == 1 and reported[0]["seq"] > checks[1]["seq"]  # the customer hears only checked results
    assert len(notices(archive, final.request_id, "resolution")) == 1
    assert archive.get(final.request_id)["department"] == "business"  # type: ignore[index]
    assert_archived(archive, final, years=5)


# --- 4, 5 general ---------------------------------------------------------------------------------------------------
async def test_04_routine_inquiry_through_the_chatbot_at_2am(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    """Routine; answered at first contact (first-contact resolution); the customer rates it; closed."""
    now = (await ts_env.get_current_time()).astimezone(SHANGHAI)
    two_am = now.replace(hour=2, minute=0, second=0, microsecond=0)
    if two_am <= now:
        two_am += timedelta(days=1)
    await ts_env.sleep(two_am - now)  # the server's clock moves on to 02:00 Beijing time
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue, policy="general", channel="chatbot", type_hint=None,
                                description="请问你们周末营业吗？", received_at=two_am.isoformat(),
                                first_contact_answer="您好，我们周末 9:00-17:00 正常营业。")
        st = await wait_for_status(handle, lambda s: s.last_action == "result_reported")
        assert (st.request_type, st.priority) == ("inquiry", "routine")
        assert st.first_contact_resolution and st.owner == "chatbot-bot"
        assert st.timeline["received"].astimezone(SHANGHAI).hour == 2
        assert st.timeline["resolved"] - st.timeline["received"] < timedelta(minutes=1)
        assert_clock(st, "first_response", 5 * MIN)
        assert_met(st, "first_response", "handling")
        await confirm(handle)
        await survey(ts_env, handle, score=100, nps=10)  # the customer rates it
        final = await handle.result()

    assert_walked_every_stage(final)
    assert final.first_contact_resolution and final.satisfaction == 100 and final.outcome == "satisfied"
    respond = events(archive, final.request_id, "respond")[0]
    assert respond["actor_id"] == "chatbot-bot" and respond["actor_role"] == "system"
    assert archive.get(final.request_id)["first_contact_resolution"] is True  # type: ignore[index]
    assert_archived(archive, final, years=3)


async def test_05_suggestion_on_social_media(ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    """Recorded and classified; team analysis; a management decision (001 Ch8); the customer gets a reply."""
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue, policy="general", channel="social", type_hint=None,
                                description="建议在 App 里增加服务进度查询功能")
        st = await wait_for_status(handle, lambda s: s.stage == "handling")
        assert (st.request_type, st.category, st.priority) == ("suggestion", "service", "routine")
        await act(handle, "respond", message="感谢您的建议，已提交团队分析")
        await act(handle, "note", actor="tl-ma", role="team_lead", text="团队分析：需求合理，开发量约两周")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await act(handle, "resolve", summary="已收到")
        assert "decision" in str(refused.value.cause)
        decision = "采纳：列入下季度版本计划"
        await act(handle, "resolve", actor="mgr-wang", role="manager", decision=decision,
                  summary=f"您的建议已被采纳，{decision}")
        await confirm(handle)
        await survey(ts_env, handle, score=92)
        final = await handle.result()

    assert_walked_every_stage(final)
    note, resolve = events(archive, final.request_id, "note")[0], events(archive, final.request_id, "resolve")[0]
    assert note["actor_role"] == "team_lead" and note["seq"] < resolve["seq"]
    assert resolve["actor_role"] == "manager" and resolve["detail"]["decision"] == decision
    reply = notices(archive, final.request_id, "resolution")
    assert len(reply) == 1 and decision in reply[0]["body"] and reply[0]["channel"] == "sms"
    assert_archived(archive, final, years=3)


# --- 6 finance ------------------------------------------------------------------------------------------------------
async def test_06_unauthorised_operation_on_an_account(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    """Funds safety and account security; urgent; linked to an account-security incident; the customer is kept
    updated; closed after the incident review (SEEDS §11)."""
    chen = Actor(id="sup-chen", role="supervisor")
    async with running_worker(ts_env, archive, task_queue):
        incident = await ts_env.client.start_workflow(
            IncidentWorkflow.run, Declare(incident_id="INC-SEC-0001", policy="finance", level=2, title="账户安全事件",
                                          category="account_security", lead="sup-chen", declared_by=chen),
            id=incident_workflow_id("INC-SEC-0001"), task_queue=task_queue)
        STARTED.append(incident.id)
        handle, _ = await start(ts_env.client, task_queue, policy="finance", channel="phone", type_hint=None,
                                description="我的账户出现未经授权的操作，一笔 8000 元资金被转走", amount="8000",
                                funds_at_risk=True, security=True, incident_id="INC-SEC-0001",
                                accepted_by="agent-zhou")
        st = await wait_for_status(handle, lambda s: s.last_action == "incident_linked")
        assert st.priority == "urgent" and st.category == "account_security" and st.incident_id == "INC-SEC-0001"
        assert st.participants == ["business"]
        assert_clock(st, "first_response", 5 * MIN)
        await act(handle, "respond", actor="agent-zhou", message="您好，已为您紧急冻结账户并上报安全事件")
        await act(handle, "note", actor="agent-zhou", text="账户已冻结保护，安全事件调查中", customer_visible=True,
                  eta=later(8))
        await ts_env.sleep(timedelta(hours=3))
        await incident.execute_update(IncidentWorkflow.progress,
                                      Progress(actor=chen, text="已确认为盗刷，资金正在追回"))
        await wait_for_status(handle, lambda s: s.last_action == "incident_update")
        await ts_env.sleep(timedelta(hours=3))
        await incident.execute_update(IncidentWorkflow.resolve, IncidentResolve(
            actor=chen, summary="资金已追回并退回，账户已更换密码后解冻", root_cause="钓鱼短信导致密码泄露"))
        st = await wait_for_status(handle, lambda s: s.stage == "resolved" and s.last_action == "result_reported")
        assert st.summary == "资金已追回并退回，账户已更换密码后解冻" and st.root_cause == "钓鱼短信导致密码泄露"
        await confirm(handle)
        st = await wait_for_status(handle, lambda s: s.sub_state == "awaiting_incident_review")
        assert st.stage == "resolved"  # confirmed, but not closed before the review
        await incident.execute_update(IncidentWorkflow.review, Review(actor=chen, findings="加强异常交易拦截"))
        await survey(ts_env, handle, score=93)
        final = await handle.result()

    assert_walked_every_stage(final)
    assert final.incident_id == "INC-SEC-0001" and final.incident_reviewed and final.outcome == "satisfied"
    assert_met(final, "first_response", "handling")
    rules = events(archive, final.request_id, "classified")[0]["detail"]["rules"]
    assert "funds safety by keyword" in rules and "account security" in rules  # both categories applied
    assert events(archive, final.request_id, "accepted")[0]["detail"]["incident_id"] == "INC-SEC-0001"
    assert notices(archive, final.request_id, "progress")  # respond + the agent's progress note
    told = [n for n in archive.outbox() if n["template"] == "incident" and n["audience"] == "customer"]
    assert told and all(n["channel"] == "sms" for n in told)  # the incident's progress reached the customer
    order = [e["action"] for e in trail(archive, final.request_id)]
    assert order.index("incident_resolved") < order.index("incident_reviewed") < order.index("closed")
    assert_archived(archive, final, years=10)


# --- 7, 8, 11 telecom -----------------------------------------------------------------------------------------------
async def test_07_home_broadband_outage_by_phone(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    """Network outage → urgent, response within 15 min (003 §3.1); assigned automatically to the network team
    within 2 h (003 §1.1); 待处理 → 处理中 → 已解决; result within 24 h; revisit ≥ 90 → closed; retention ≥ 3 years."""
    Directory(archive.engine).upsert_agents([
        Agent(id="net-eng-zhang", name="张工", team="network", department="network", capacity=3),
        Agent(id="agent-he", name="何", team="front", department="customer_service", capacity=10)])  # not picked
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue, policy="telecom", channel="phone", type_hint=None,
                                description="家里宽带断网了，完全上不了网")
        st = await wait_for_status(handle, lambda s: s.sub_state == "assigned")
        assert (st.request_type, st.category, st.priority) == ("repair", "network_outage", "urgent")
        assert (st.department, st.team, st.owner) == ("network", "network", "net-eng-zhang")  # 003 §1.1
        assert_clock(st, "first_response", 15 * MIN)
        assert_clock(st, "handling", 24 * HOUR)
        assert_clock(st, "assignment", 2 * HOUR)

        await ts_env.sleep(timedelta(minutes=5))
        st = await act(handle, "accept", actor="net-eng-zhang")
        assert st.sub_state == "pending" and st.clocks["assignment"].stopped_at is not None  # 待处理
        st = await act(handle, "respond", actor="net-eng-zhang", message="您好，已受理，工程师正在排查线路")
        assert st.sub_state == "in_progress"  # 处理中
        await ts_env.sleep(timedelta(hours=2))
        st = await act(handle, "resolve", actor="net-eng-zhang", summary="光缆故障已修复，宽带恢复")
        assert st.stage == "resolved"  # 已解决
        await confirm(handle)
        await survey(ts_env, handle, score=95)
        final = await handle.result()

    assert_walked_every_stage(final)
    assert final.outcome == "satisfied" and final.satisfaction == 95 and final.reopen_count == 0
    assert_met(final, "first_response", "handling", "closure", "revisit")
    assert final.clocks["first_response"].consumed_seconds <= 15 * MIN
    assert final.clocks["revisit"].target_seconds == 24 * HOUR  # 003 §4.2
    accepted = events(archive, final.request_id, "accepted")[0]["at"]
    assign = events(archive, final.request_id, "assign")[0]
    assert assign["detail"]["after"] == "net-eng-zhang" and assign["at"] - accepted <= timedelta(hours=2)
    assert assign["actor_role"] == "system" and assign["detail"]["team"] == "network"
    assert events(archive, final.request_id, "accept")[0]["at"] - accepted <= timedelta(hours=2)
    resolved = events(archive, final.request_id, "resolve")[0]["at"]
    assert events(archive, final.request_id, "result_reported")[0]["at"] - resolved <= timedelta(hours=24)
    subs = [(e["action"], e["stage"]) for e in trail(archive, final.request_id)]
    assert ("respond", "handling") in subs and ("resolve", "resolved") in subs
    assert_customer_notices(archive, final.request_id, "sms", PHONE)
    assert_archived(archive, final, years=3)  # 003 §1.1, §4.4


async def test_08_plan_change_in_the_app(ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    """Transaction, important; handled within 24 h (003 §3.1); the customer gets the explanation; survey; closed."""
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue, policy="telecom", channel="app", type_hint=None,
                                description="我想把套餐变更为 199 元不限量套餐")
        st = await wait_for_status(handle, lambda s: s.stage == "handling")
        assert (st.request_type, st.category, st.priority) == ("transaction", "plan_change", "important")
        assert_clock(st, "handling", 24 * HOUR)
        await act(handle, "respond", message="您好，已受理您的套餐变更")
        await ts_env.sleep(timedelta(hours=3))
        explanation = "套餐变更说明：新套餐次月 1 日生效，本月按原套餐计费，无违约金"
        await act(handle, "resolve", summary=explanation)
        await confirm(handle)
        await survey(ts_env, handle, score=91)
        final = await handle.result()

    assert_walked_every_stage(final)
    assert_met(final, "first_response", "handling")
    assert final.clocks["handling"].consumed_seconds <= 24 * HOUR
    reply = notices(archive, final.request_id, "resolution")
    assert len(reply) == 1 and explanation in reply[0]["body"]
    assert final.outcome == "satisfied"
    assert_archived(archive, final, years=3)


async def test_11_major_complaint_mass_billing_error(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    """Major complaint: response within 4 h (003 §2.3); a supervisor escalates to senior management; closure only
    after the customer confirms."""
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue, policy="telecom", channel="phone", type_hint="complaint",
                                description="大量用户反映本月话费被重复扣费，计费系统错误", accepted_by="agent-wu")
        st = await wait_for_status(handle, lambda s: s.stage == "handling")
        assert (st.request_type, st.category, st.complaint_grade, st.priority) == (
            "complaint", "billing", "major", "major")
        assert_clock(st, "first_response", 4 * HOUR)
        assert st.escalation_level == 2 and st.escalation_role == "supervisor" and st.escalations[0].trigger == "grade"
        await act(handle, "acknowledge", actor="sup-chen", role="supervisor", comment="已介入")
        await ts_env.sleep(timedelta(minutes=40))
        await act(handle, "respond", actor="agent-wu", message="您好，已受理，主管已介入")
        await escalate(handle, "sup-chen", "supervisor", "批量计费差错，需高层决策", to_level=3)
        st = await wait_for_status(handle, lambda s: s.escalation_level == 3)
        assert st.escalation_role == "manager" and st.escalations[-1].trigger == "signal"
        assert st.escalations[-1].actor == "sup-chen"
        await act(handle, "acknowledge", actor="mgr-zhao", role="manager", comment="批准批量退费")
        await act(handle, "resolve", actor="agent-wu", summary="已为所有受影响用户退还重复扣费",
                  root_cause="计费系统升级导致重复出账")
        await wait_for_status(handle, lambda s: s.last_action == "result_reported")
        await ts_env.sleep(timedelta(hours=1))
        assert (await status(handle)).stage == "resolved"  # not closed until the customer confirms
        await confirm(handle)
        await survey(ts_env, handle, score=90)
        final = await handle.result()

    assert_walked_every_stage(final)
    assert_met(final, "first_response", "handling")
    assert final.clocks["first_response"].consumed_seconds <= 4 * HOUR
    assert final.complaint_owner == "agent-wu" and final.escalation_level == 3 and final.confirmed is True
    alerts = notices(archive, final.request_id, "escalation")
    assert [n["recipient"] for n in alerts] == ["supervisor", "manager"]
    assert all(n["channel"] == "internal" for n in alerts)
    assert events(archive, final.request_id, "closed")[0]["detail"]["confirmed_by"] == "customer"
    assert_archived(archive, final, years=3)


# --- 9, 10, 12 service_center ---------------------------------------------------------------------------------------
async def test_09_billing_inquiry_in_the_mini_program(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    """Inquiry, normal; first handling within 24 h; closed loop within 3 working days after the customer confirms;
    retention 5 years (002 §2.1.3, §2.2.2, §2.4.2)."""
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue)  # service_center, mini_program, billing inquiry
        st = await wait_for_status(handle, lambda s: s.stage == "handling")
        assert (st.request_type, st.priority) == ("inquiry", "normal")
        assert_clock(st, "first_response", 10 * MIN)
        assert_clock(st, "handling", 24 * HOUR)
        pack = get_pack("service_center")
        working_day = business_calendar(pack.calendar).day_seconds
        assert_clock(st, "closure", 3 * working_day, calendar="business")
        closure = st.clocks["closure"]
        assert closure.deadline == business_calendar(pack.calendar).add(closure.started_at, 3 * working_day)
        assert st.expected_completion == closure.deadline
        await act(handle, "respond", message="您好，感谢您的咨询，我这边处理")
        await ts_env.sleep(timedelta(hours=2))
        await act(handle, "resolve", summary="上月账单明细已通过短信发送")
        await confirm(handle)
        await survey(ts_env, handle, score=86)
        final = await handle.result()

    assert_walked_every_stage(final)
    assert_met(final, "first_response", "handling", "closure")
    assert final.outcome == "satisfied" and final.confirmed is True
    acknowledgement = notices(archive, final.request_id, "acknowledgement")[0]
    assert final.ticket in acknowledgement["body"]
    assert_archived(archive, final, years=5)


async def test_10_ordinary_complaint_about_attitude(
        ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    """Stays with the customer-service team (002 §4.4); investigation, feedback, solution, follow-up; the customer
    confirms; the complaint is analysed (root cause recorded)."""
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue, channel="phone", type_hint=None,
                                category="service_attitude", accepted_by="agent-gao",
                                description="投诉：客服人员态度很差，不耐烦地挂断了我的电话")
        st = await wait_for_status(handle, lambda s: s.stage == "handling")
        assert (st.request_type, st.complaint_grade, st.category) == ("complaint", "ordinary", "service_attitude")
        assert st.escalation_level == 0 and st.department == "customer_service"
        assert st.complaint_owner == "agent-gao"
        await act(handle, "respond", actor="agent-gao", message="您好，您的投诉已受理")
        await act(handle, "note", actor="agent-gao", text="调查：调取通话录音，确认坐席提前挂断")  # investigation
        await act(handle, "note", actor="agent-gao", text="已核实情况，我们将对相关坐席进行辅导",
                  customer_visible=True, eta=later(24))  # feedback
        await act(handle, "resolve", actor="agent-gao", summary="已向您致歉，相关坐席已接受服务规范辅导",
                  root_cause="坐席未遵守服务规范（员工过错）")  # solution
        await confirm(handle)
        await survey(ts_env, handle, score=88)  # follow-up
        final = await handle.result()

    assert_walked_every_stage(final)
    assert final.escalation_level == 0 and final.escalations == [] and final.department == "customer_service"
    assert final.complaint_owner == "agent-gao" and final.root_cause == "坐席未遵守服务规范（员工过错）"
    steps = actions(archive, final.request_id)
    assert steps.index("respond") < steps.index("note") < steps.index("resolve") < steps.index("confirm")
    assert steps.index("confirm") < steps.index("closed") < steps.index("survey")
    assert not notices(archive, final.request_id, "escalation")
    assert_archived(archive, final, years=5)


async def test_12_complex_multi_department_case(ts_env: WorkflowEnvironment, archive: Archive, task_queue: str) -> None:
    """Network fix plus billing credit; complex; handled within 48 h with progress reports; retention 15 years."""
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue, channel="phone", type_hint=None,
                                description="宽带故障修复后还需要退还多收的费用，涉及多个部门")
        st = await wait_for_status(handle, lambda s: s.stage == "handling")
        assert (st.request_type, st.priority) == ("repair", "complex")
        assert_clock(st, "handling", 48 * HOUR)  # 002 §2.1.3
        await act(handle, "respond", message="您好，已受理，将协调网络部和计费部共同处理")
        await act(handle, "transfer", department="network", reason="网络修复", joint=True)
        st = await act(handle, "transfer", department="finance", reason="账单减免", joint=True)
        assert st.participants == ["network", "finance"] and st.department == "customer_service"
        await ts_env.sleep(timedelta(hours=12))
        await act(handle, "note", text="网络已修复，计费部正在核算减免金额", customer_visible=True, eta=later(24))
        await ts_env.sleep(timedelta(hours=12))
        await act(handle, "note", text="减免金额已确认，将于下一账期抵扣", customer_visible=True, eta=later(12))
        await ts_env.sleep(timedelta(hours=16))
        await act(handle, "resolve", summary="网络已恢复，多收费用 120 元已在账单中抵扣")
        await confirm(handle)
        await survey(ts_env, handle, score=90)
        final = await handle.result()

    assert_walked_every_stage(final)
    assert_met(final, "first_response", "handling")
    assert final.escalation_level == 0
    progress = [n for n in notices(archive, final.request_id, "progress") if n["audience"] == "customer"]
    assert len(progress) >= 3  # first response + two progress reports (003 §2.3 style: progress and ETA)
    transfers = events(archive, final.request_id, "transfer")
    assert [(t["detail"]["after"], t["detail"]["joint"]) for t in transfers] == [("network", True), ("finance", True)]
    assert_archived(archive, final, years=15)
