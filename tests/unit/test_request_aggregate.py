"""The ServiceRequest aggregate (domain/request.py) without Temporal: every agent action kind × role × stage, with the
refusal or the audit events and notices it produces, and the lifecycle steps the workflow drives.

Each row of CASES sets a request up in a situation, lets one actor try one action, and states the outcome: the
refusal (a fragment of its reason) or the audit actions and notice templates `apply` returns. A refused action
must leave the request untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter

from domain.request import ServiceRequest
from models.actions import Action, Actor, Confirm, EscalateRequest, SurveyAnswer
from models.assignment import AssignResult
from policies.loader import get_pack
from tests.workflow.helpers import intake

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai: a working day
ACTION = TypeAdapter(Action)
AGENT, OTHER = Actor(id="agent-li", role="agent"), Actor(id="agent-wu", role="agent")
LEAD, SUP = Actor(id="lead-1", role="team_lead"), Actor(id="sup-1", role="supervisor")
MGR, CUSTOMER = Actor(id="mgr-1", role="manager"), Actor(id="cust-1", role="customer")


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def new(policy: str = "service_center", **overrides: Any) -> ServiceRequest:
    """Accepted by agent-li and classified at T0, handling started."""
    fields = {"request_id": "R-1", "policy": policy, "accepted_by": "agent-li", **overrides}
    r = ServiceRequest(intake(**fields), "kefu-sr-R-1")
    r.accept(get_pack(policy), T0, T0)
    r.registered("KF-20261201-000001", T0)
    r.classify(T0)
    r.begin_handling(T0)
    return r


def act(r: ServiceRequest, actor: Actor, minutes: int, **action: Any) -> None:
    parsed = ACTION.validate_python(action)
    assert r.refusal(actor, parsed) is None, r.refusal(actor, parsed)
    r.apply(actor, parsed, at(minutes))


def handling() -> ServiceRequest:
    r = new()
    act(r, AGENT, 5, kind="respond", message="您好，已受理")
    return r


def unresponded() -> ServiceRequest:
    return new()


def waiting() -> ServiceRequest:
    r = handling()
    act(r, AGENT, 10, kind="ask_customer", question="请提供账单截图")
    return r


def resolved() -> ServiceRequest:
    r = handling()
    act(r, AGENT, 20, kind="resolve", summary="已解答")
    return r


def pending_check() -> ServiceRequest:
    r = handling()
    r._cls = replace(r.cls, requires_check=True)  # as finance's classification sets it (001 §4.2)
    act(r, AGENT, 20, kind="resolve", summary="已处理")
    return r


def closed() -> ServiceRequest:
    r = resolved()
    r.report_result(at(21), 72 * 3600)
    assert r.result_answered(Confirm(), at(30))
    r.close(at(30), by_customer=True)
    return r


def revisit() -> ServiceRequest:
    r = closed()
    r.open_survey(at(30 + 24 * 60))
    return r


def completed() -> ServiceRequest:
    r = revisit()
    assert not r.survey_result(SurveyAnswer(score=95), at(31 + 24 * 60))
    r.complete(at(31 + 24 * 60))
    return r


def escalated() -> ServiceRequest:
    r = handling()
    assert r.escalate(EscalateRequest(actor=SUP, reason="客户情绪激动"), at(8))
    return r


def offered() -> ServiceRequest:
    r = new(accepted_by=None)
    r.offer(AssignResult(request_id="R-1", attempt=1, agent_id="agent-li", reason="assigned", team="general",
                         load=1, capacity=5), 1, None, at(15), at(0))
    return r


def complaint() -> ServiceRequest:
    r = new(type_hint="complaint", description="账单多扣了钱，我要投诉")
    act(r, AGENT, 5, kind="respond", message="您好，已受理您的投诉")
    return r


def suggestion() -> ServiceRequest:
    r = new(type_hint="suggestion", description="建议增加夜间服务")
    act(r, AGENT, 5, kind="respond", message="感谢建议")
    return r


Setup = Callable[[], ServiceRequest]
# (setup, actor, action, refusal fragment or None, audit actions, notice templates)
CASES: list[tuple[Setup, Actor, dict[str, Any], str | None, list[str], list[str]]] = [
    # respond
    (unresponded, AGENT, {"kind": "respond", "message": "您好"}, None, ["respond"], ["progress"]),
    (handling, AGENT, {"kind": "respond", "message": "again"}, "already given", [], []),
    (unresponded, CUSTOMER, {"kind": "respond", "message": "hi"}, "role customer", [], []),
    (resolved, AGENT, {"kind": "respond", "message": "late"}, "stage resolved", [], []),
    # note
    (handling, AGENT, {"kind": "note", "text": "查询中", "customer_visible": True, "eta": "明天"}, None, ["note"],
     ["progress"]),
    (handling, AGENT, {"kind": "note", "text": "internal"}, None, ["note"], []),
    (handling, OTHER, {"kind": "note", "text": "not mine"}, "only the owner", [], []),
    (handling, LEAD, {"kind": "note", "text": "lead's note"}, None, ["note"], []),
    (resolved, AGENT, {"kind": "note", "text": "after"}, None, ["note"], []),
    (closed, AGENT, {"kind": "note", "text": "closed"}, "stage closed", [], []),
    # ask_customer / customer_reply
    (handling, AGENT, {"kind": "ask_customer", "question": "截图?"}, None, ["ask_customer"], ["progress"]),
    (unresponded, AGENT, {"kind": "ask_customer", "question": "?"}, "respond to the customer first", [], []),
    (waiting, AGENT, {"kind": "ask_customer", "question": "again?"}, "already waiting", [], []),
    (waiting, CUSTOMER, {"kind": "customer_reply", "text": "附件"}, None, ["customer_reply"], []),
    (handling, CUSTOMER, {"kind": "customer_reply", "text": "?"}, "not waiting on the customer", [], []),
    # assign / accept / decline
    (offered, LEAD, {"kind": "assign", "owner": "agent-wu"}, "only a supervisor", [], []),
    (handling, SUP, {"kind": "assign", "owner": "agent-wu"}, None, ["assign"], []),
    (unresponded, CUSTOMER, {"kind": "assign", "owner": "agent-wu"}, "role customer", [], []),
    (offered, AGENT, {"kind": "accept"}, None, ["accept"], []),
    (offered, OTHER, {"kind": "accept"}, "not offered to agent-wu", [], []),
    (handling, AGENT, {"kind": "accept"}, "not offered", [], []),
    (offered, AGENT, {"kind": "decline", "reason": "不熟悉"}, None, ["decline"], []),
    (handling, AGENT, {"kind": "decline", "reason": "不想做"}, "not offered", [], []),
    # transfer / reclassify
    (handling, AGENT, {"kind": "transfer", "department": "technical", "reason": "需要技术"}, None, ["transfer"], []),
    (handling, OTHER, {"kind": "transfer", "department": "technical", "reason": "x"}, "only the owner", [], []),
    (handling, AGENT, {"kind": "reclassify", "priority": "urgent", "reason": "影响大"}, None, ["reclassify"], []),
    (handling, AGENT, {"kind": "reclassify", "priority": "nonexistent", "reason": "typo"}, "reclassify:", [], []),
    (complaint, AGENT, {"kind": "reclassify", "complaint_grade": "major", "reason": "媒体关注"}, None,
     ["reclassify", "escalate"], ["escalation"]),
    # extend
    (handling, AGENT, {"kind": "extend", "by": "24h", "reason": "等待第三方", "customer_notice": "已告知客户"}, None,
     ["extend"], ["extension"]),
    (handling, AGENT, {"kind": "extend", "by": "24h", "reason": "x"}, "customer_notice is required", [], []),
    (handling, AGENT, {"kind": "extend", "by": "48h", "reason": "x", "customer_notice": "告知"}, "at most 24h",
     [], []),
    (handling, AGENT, {"kind": "extend", "by": "soon", "reason": "x", "customer_notice": "告知"}, "extend: by:",
     [], []),
    # acknowledge
    (escalated, LEAD, {"kind": "acknowledge", "comment": "收到"}, None, ["acknowledge"], []),
    (handling, LEAD, {"kind": "acknowledge"}, "no escalation awaits", [], []),
    (escalated, AGENT, {"kind": "acknowledge"}, "role agent", [], []),
    # resolve
    (handling, AGENT, {"kind": "resolve", "summary": "已解答"}, None, ["resolve"], []),
    (unresponded, AGENT, {"kind": "resolve", "summary": "x"}, "respond to the customer first", [], []),
    (complaint, AGENT, {"kind": "resolve", "summary": "退款"}, "root_cause is required", [], []),
    (complaint, AGENT, {"kind": "resolve", "summary": "退款", "root_cause": "系统重复扣费"}, None, ["resolve"], []),
    (suggestion, AGENT, {"kind": "resolve", "summary": "采纳"}, "decision is required", [], []),
    (suggestion, MGR, {"kind": "resolve", "summary": "采纳", "decision": "下季度上线"}, None, ["resolve"], []),
    (suggestion, AGENT, {"kind": "resolve", "summary": "采纳", "decision": "我决定上线"}, "management decides", [],
     []),  # 001 Ch8: a decision recorded below manager is refused (issue 16)
    (suggestion, SUP, {"kind": "resolve", "summary": "采纳", "decision": "主管决定"}, "role supervisor may not", [],
     []),
    # check
    (pending_check, LEAD, {"kind": "check", "passed": True}, None, ["check"], []),
    (pending_check, LEAD, {"kind": "check", "passed": False, "remarks": "未解决"}, None, ["check"], []),
    (pending_check, AGENT, {"kind": "check", "passed": True}, "role agent", [], []),
    (resolved, LEAD, {"kind": "check", "passed": True}, "no resolution awaits", [], []),
    # reevaluate (content needs the current pack: only the permission is checked here)
    (handling, AGENT, {"kind": "reevaluate", "reason": "新版政策"}, "role agent", [], []),
    (completed, SUP, {"kind": "reevaluate", "reason": "新版政策"}, "stage completed", [], []),
    (revisit, SUP, {"kind": "note", "text": "x"}, "stage revisit", [], []),
]


@pytest.mark.parametrize(("setup", "actor", "action", "refused", "events", "notices"), CASES,
                         ids=[f"{c[0].__name__}-{c[1].role}-{c[2]['kind']}" for c in CASES])
def test_action(setup: Setup, actor: Actor, action: dict[str, Any], refused: str | None, events: list[str],
                notices: list[str]) -> None:
    r = setup()
    parsed = ACTION.validate_python(action)
    reason = r.refusal(actor, parsed)
    if refused is not None:
        assert reason is not None and refused in reason, reason
        return
    assert reason is None, reason
    before = r.outbox.seq
    effects = r.apply(actor, parsed, at(60))
    assert [e.action for e in effects.events] == events
    assert [n.template for n in effects.notices] == notices
    assert [e.seq for e in effects.events] == list(range(before, r.outbox.seq))
    assert all(e.actor_id == actor.id and e.actor_role == actor.role for e in effects.events[:1])


def test_every_action_kind_has_an_allowed_and_a_refused_case() -> None:
    kinds = set(TypeAdapter(Action).json_schema()["discriminator"]["mapping"])
    allowed = {c[2]["kind"] for c in CASES if c[3] is None}
    refused = {c[2]["kind"] for c in CASES if c[3] is not None}
    assert kinds - {"reevaluate"} <= allowed and kinds <= refused


def test_while_accepting_only_the_role_is_checked() -> None:
    r = ServiceRequest(intake(request_id="R-2"), "kefu-sr-R-2")
    respond = ACTION.validate_python({"kind": "respond", "message": "hi"})
    assert r.refusal(AGENT, respond, assume_handling=True) is None
    reason = r.refusal(CUSTOMER, respond, assume_handling=True)
    assert reason is not None and "role customer" in reason


def test_effects_of_the_lifecycle_in_order() -> None:
    r = handling()
    act(r, AGENT, 30, kind="resolve", summary="已解答")
    r.report_result(at(31), 72 * 3600)
    assert r.result_answered(Confirm(), at(40))
    r.close(at(40), by_customer=True)
    r.open_survey(at(40 + 24 * 60))
    assert not r.survey_result(SurveyAnswer(score=90), at(41 + 24 * 60))
    r.complete(at(41 + 24 * 60))
    actions = [e.action for e in r.outbox.events]
    assert actions == ["accepted", "classified", "respond", "resolve", "result_reported", "closed", "survey_sent",
                       "completed"]
    assert [n.template for n in r.outbox.notices] == ["acknowledgement", "progress", "resolution", "revisit"]
    assert r.outbox.final_pending and r.retention_until is not None and r.outcome == "satisfied"
    status, projection = r.status(at(50 + 24 * 60)), r.projection(at(50 + 24 * 60))
    for name in set(type(status).model_fields) & set(type(projection).model_fields):
        assert getattr(status, name) == getattr(projection, name), name


def test_a_rejected_result_goes_back_to_handling_on_the_same_clocks() -> None:
    r = resolved()
    handling_clock = r.clocks.get("handling")
    r.report_result(at(21), 3600)
    assert not r.result_answered(Confirm(accepted=False, comment="没解决"), at(25))
    assert r.stage == "handling" and r.clocks.get("handling") is handling_clock and handling_clock.running


def test_a_low_survey_score_reopens_with_new_clocks_and_escalates() -> None:
    r = revisit()
    handling_clock, level = r.clocks.get("handling"), r.ladder.level
    assert r.survey_result(SurveyAnswer(score=40, resolved=False), at(32 + 24 * 60))
    assert r.stage == "handling" and r.reopen_count == 1 and r.ladder.level == level + 1
    assert r.clocks.get("handling") is not handling_clock


def test_every_clock_change_moves_its_revision() -> None:
    r = handling()
    revs = {name: r.clocks.rev(name) for name in ("handling", "closure", "first_response")}
    act(r, AGENT, 10, kind="ask_customer", question="?")  # pauses the pausable clocks
    paused = {c.name for c in r.clocks if c.paused}
    assert paused and all(r.clocks.rev(name) == revs[name] + 1 for name in paused)
    act(r, CUSTOMER, 20, kind="customer_reply", text="ok")
    assert all(r.clocks.rev(name) == revs[name] + 2 for name in paused)
    assert r.clocks.rev("first_response") == revs["first_response"]  # stopped by the response, untouched since


def test_a_refused_escalation_is_recorded_and_changes_nothing_else() -> None:
    r = handling()
    level = r.ladder.level
    assert not r.escalate(EscalateRequest(actor=AGENT, reason="我想升级"), at(10))
    assert not r.escalate(EscalateRequest(actor=SUP, reason="太高", to_level=9), at(11))
    assert r.ladder.level == level and [e.rejected for e in r.outbox.events[-2:]] == [True, True]
    assert r.rejected_actions == 2


def test_a_breach_is_attributed_and_climbs_the_ladder() -> None:
    r = handling()
    clock = r.clocks.get("handling")
    assert clock is not None
    event = clock.next_event(at(60))
    while event is not None and event.kind != "breach":
        r.clock_event(clock, event, event.at)
        event = clock.next_event(event.at)
    assert event is not None
    r.clock_event(clock, event, event.at)
    breach = next(e for e in r.outbox.events if e.action == "sla_breach")
    assert breach.detail["attributed_to"] == "agent-li" and r.ladder.level == 1
    assert r.status(event.at).clocks["handling"].breached


def test_reevaluate_moves_to_the_current_version_or_says_why_not() -> None:
    r = handling()
    reevaluate = ACTION.validate_python({"kind": "reevaluate", "reason": "新版政策"})
    assert r.refusal(SUP, reevaluate) is None
    same = r.apply(SUP, reevaluate, at(30), latest=r.pack)
    assert [(e.action, e.rejected) for e in same.events] == [("reevaluate", True)]
    newer = r.pack.model_copy(update={"version": r.pack.version + 1})
    moved = r.apply(SUP, reevaluate, at(31), latest=newer)
    assert [(e.action, e.rejected) for e in moved.events] == [("reevaluate", False)]
    assert r.pack.version == newer.version and r.status(at(32)).policy_version == newer.version
