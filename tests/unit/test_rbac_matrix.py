"""RBAC matrix (SEEDS §10: least privilege): every role × action kind × stage against domain/permissions.py.

For each combination the action is allowed iff the role is among the kind's allowed roles and the stage among its
allowed stages, in a situation where the owner and step rules are met; the owner and step rules are then checked
one by one. docs/rbac.md is generated from PERMISSIONS by this module:

    .venv/bin/python -m tests.unit.test_rbac_matrix > docs/rbac.md
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest

from domain.permissions import LEAD, PERMISSIONS, SUPERVISOR, Situation, check_action
from models.actions import ACTION_KINDS, ROLE_RANK
from models.status import STAGES

ROLES = tuple(ROLE_RANK)
KINDS = (*ACTION_KINDS, "escalate")  # the act update's kinds, and the escalate signal
ACTOR = "user-1"
DOC = Path(__file__).resolve().parents[2] / "docs" / "rbac.md"


def permitted_situation(kind: str, stage: str) -> Situation:
    """A situation in `stage` where every owner and step rule of `kind` is satisfied for ACTOR."""
    return Situation(
        stage=stage,
        sub_state={"customer_reply": "waiting_on_customer", "check": "pending_check", "accept": "assigned",
                   "decline": "assigned"}.get(kind, "in_progress"),
        owner=None if kind == "assign" else ACTOR,
        responded=kind != "respond",
        resolved_by="someone-else",
        escalation_role="agent",
    )


def test_permissions_cover_every_action_kind() -> None:
    assert sorted(PERMISSIONS) == sorted(KINDS)
    for roles, stages in PERMISSIONS.values():
        assert set(roles) <= set(ROLES) and set(stages) <= set(STAGES)


MATRIX = list(itertools.product(ROLES, KINDS, STAGES))


@pytest.mark.parametrize(("role", "kind", "stage"), MATRIX)
def test_matrix(role: str, kind: str, stage: str) -> None:
    roles, stages = PERMISSIONS[kind]
    reason = check_action(kind, ACTOR, role, permitted_situation(kind, stage))
    if role in roles and stage in stages:
        assert reason is None, reason
    else:
        assert reason is not None, f"{role} may not {kind} in {stage}"
        assert (f"role {role}" in reason) if role not in roles else (f"stage {stage}" in reason)


def test_matrix_size() -> None:
    assert len(MATRIX) == len(ROLES) * len(KINDS) * len(STAGES) == 6 * 15 * 8


# (kind, role, situation changes, refused?, words in the reason) — the owner and step rules, in an allowed stage
OWNER_AND_STEP_RULES = [
    *[(kind, "agent", {"owner": "other"}, True, "only the owner")
      for kind in ("ask_customer", "resolve", "extend", "transfer", "note")],
    *[(kind, "team_lead", {"owner": "other"}, False, "")
      for kind in ("ask_customer", "resolve", "extend", "transfer", "note")],
    *[(kind, "agent", {"owner": None}, False, "") for kind in ("ask_customer", "resolve", "extend", "transfer")],
    ("respond", "agent", {"owner": "other"}, False, ""),
    ("assign", "agent", {"owner": None}, False, ""),
    ("assign", "agent", {"owner": "other"}, True, "only a supervisor"),
    ("assign", "team_lead", {"owner": ACTOR}, True, "only a supervisor"),
    *[("assign", role, {"owner": "other"}, False, "") for role in SUPERVISOR],
    *[(kind, "agent", {"responded": False}, True, "respond to the customer first")
      for kind in ("ask_customer", "resolve", "extend")],
    ("respond", "agent", {"responded": True}, True, "already given"),
    ("ask_customer", "agent", {"sub_state": "waiting_on_customer"}, True, "already waiting"),
    ("customer_reply", "customer", {"sub_state": "in_progress"}, True, "not waiting on the customer"),
    ("check", "team_lead", {"stage": "resolved", "sub_state": "in_progress"}, True, "no resolution awaits"),
    ("check", "team_lead", {"stage": "resolved", "resolved_by": ACTOR}, True, "must not be the handler"),
    ("acknowledge", "team_lead", {"escalation_role": "supervisor"}, True, "sits with supervisor"),
    *[(kind, "agent", {"owner": "other"}, True, "not offered to") for kind in ("accept", "decline")],
    *[(kind, "agent", {"sub_state": "in_progress"}, True, "not offered to") for kind in ("accept", "decline")],
    ("acknowledge", "supervisor", {"escalation_role": "supervisor"}, False, ""),
    *[("acknowledge", role, {"escalation_role": "team_lead"}, False, "") for role in LEAD],
]


@pytest.mark.parametrize(("kind", "role", "changes", "refused", "words"), OWNER_AND_STEP_RULES)
def test_owner_and_step_rules(kind: str, role: str, changes: dict, refused: bool, words: str) -> None:
    stage = changes.get("stage") or PERMISSIONS[kind][1][0]
    situation = replace(permitted_situation(kind, stage), **changes)
    reason = check_action(kind, ACTOR, role, situation)
    if refused:
        assert reason is not None and words in reason
    else:
        assert reason is None, reason


def render() -> str:
    """docs/rbac.md, generated from PERMISSIONS."""
    lines = [
        "# Role-based access (RBAC)",
        "",
        "<!-- generated from domain/permissions.py PERMISSIONS:",
        "     .venv/bin/python -m tests.unit.test_rbac_matrix > docs/rbac.md",
        "     tests/unit/test_rbac_matrix.py fails when this file is out of date. -->",
        "",
        "Least privilege (SEEDS §10): the `act` update's validator asks the request aggregate",
        "(`ServiceRequest.refusal` in domain/request.py), which checks this table (`domain.permissions`) and then the",
        "content rules, before anything is written, so a refused action changes no state (a refused `escalate`",
        "signal is recorded as rejected in the audit trail). Every role × action kind × stage combination is tested",
        "in `tests/unit/test_rbac_matrix.py`; every action kind against the aggregate in",
        "`tests/unit/test_request_aggregate.py`.",
        "",
        "## Who may do what",
        "",
        "| action | " + " | ".join(ROLES) + " |",
        "| --- | " + " | ".join("---" for _ in ROLES) + " |",
    ]
    for kind in KINDS:
        roles, _ = PERMISSIONS[kind]
        lines.append(f"| `{kind}` | " + " | ".join("✔" if role in roles else "·" for role in ROLES) + " |")
    lines += [
        "",
        "## In which stage",
        "",
        "| action | " + " | ".join(STAGES) + " |",
        "| --- | " + " | ".join("---" for _ in STAGES) + " |",
    ]
    for kind in KINDS:
        _, stages = PERMISSIONS[kind]
        lines.append(f"| `{kind}` | " + " | ".join("✔" if stage in stages else "·" for stage in STAGES) + " |")
    lines += [
        "",
        "## Owner and step rules (on top of the tables)",
        "",
        "- `ask_customer`, `resolve`, `extend`, `transfer`, `note`: only the owner (or anyone while the request has",
        "  no owner), or a team lead and above.",
        "- `assign`: reassigning a request that already has an owner takes a supervisor and above.",
        "- `ask_customer`, `resolve`, `extend`: only after the first response (002 §3.4: no step is skipped).",
        "- `respond`: once; `ask_customer`: not while already waiting on the customer; `customer_reply`: only while",
        "  waiting on the customer.",
        "- `check`: only while a resolution awaits acceptance, and never by the handler who resolved it (001 §4.2).",
        "- `acknowledge`: only at or above the role the escalation currently sits with.",
        "- `escalate` is the supervisors' signal, not an `act` kind; the same check applies.",
        "",
    ]
    return "\n".join(lines)


def test_docs_rbac_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), \
        "docs/rbac.md is stale: .venv/bin/python -m tests.unit.test_rbac_matrix > docs/rbac.md"


if __name__ == "__main__":
    print(render(), end="")
