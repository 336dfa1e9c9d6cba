"""Who may do what, in which stage (SEEDS §10: least privilege, RBAC; 002 §3.4 no skipped steps).

check_action returns the reason an action is refused, or None. Pure: the workflow's update validators call it
before anything is written, so a refused action changes no state.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.actions import ROLE_RANK

STAFF = ("agent", "team_lead", "supervisor", "manager", "system")
LEAD = ("team_lead", "supervisor", "manager", "system")
SUPERVISOR = ("supervisor", "manager", "system")

# action kind -> (roles allowed, stages allowed)
PERMISSIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "respond": (STAFF, ("handling",)),
    "note": (STAFF, ("handling", "resolved")),
    "ask_customer": (STAFF, ("handling",)),
    "customer_reply": (("customer", *STAFF), ("handling",)),
    "assign": (STAFF, ("handling",)),
    "accept": (STAFF, ("handling",)),
    "decline": (STAFF, ("handling",)),
    "transfer": (STAFF, ("handling",)),
    "reclassify": (STAFF, ("handling",)),
    "extend": (STAFF, ("handling",)),
    "acknowledge": (LEAD, ("handling", "resolved", "closed", "revisit")),
    "resolve": (STAFF, ("handling",)),
    "check": (LEAD, ("resolved",)),
    "escalate": (SUPERVISOR, ("handling", "resolved")),  # a closed request has nothing left to escalate (issue 15)
    "reevaluate": (SUPERVISOR, ("handling", "resolved")),
}


@dataclass(frozen=True)
class Situation:
    """What the validator needs to know about the request."""

    stage: str
    sub_state: str
    owner: str | None
    responded: bool
    resolved_by: str | None
    escalation_role: str


def check_action(kind: str, actor_id: str, role: str, s: Situation) -> str | None:
    roles, stages = PERMISSIONS[kind]
    if role not in roles:
        return f"{kind}: role {role} may not do this (allowed: {', '.join(roles)})"
    if s.stage not in stages:
        return f"{kind}: not allowed in stage {s.stage} (allowed in: {', '.join(stages)})"
    is_owner = s.owner is None or s.owner == actor_id
    above_agent = ROLE_RANK[role] > ROLE_RANK["agent"]
    if kind in ("ask_customer", "resolve", "extend", "transfer", "note") and not (is_owner or above_agent):
        return f"{kind}: only the owner {s.owner} or a team lead and above may do this"
    if kind == "assign" and s.owner is not None and role not in SUPERVISOR:
        return "assign: only a supervisor and above reassigns an owned request"
    if kind in ("accept", "decline") and not (s.sub_state == "assigned" and s.owner == actor_id):
        return f"{kind}: the case is not offered to {actor_id}" + (f" (offered to {s.owner})" if s.owner else "")
    if kind in ("ask_customer", "resolve", "extend") and not s.responded:
        return f"{kind}: respond to the customer first (002 §3.4: no step is skipped)"
    if kind == "ask_customer" and s.sub_state == "waiting_on_customer":
        return "ask_customer: already waiting on the customer"
    if kind == "customer_reply" and s.sub_state != "waiting_on_customer":
        return "customer_reply: the request is not waiting on the customer"
    if kind == "respond" and s.responded:
        return "respond: the first response was already given"
    if kind == "check":
        if s.sub_state != "pending_check":
            return "check: no resolution awaits a checker's acceptance"
        if actor_id == s.resolved_by:
            return "check: the checker must not be the handler who resolved it (001 §4.2)"
    if kind == "acknowledge" and ROLE_RANK[role] < ROLE_RANK.get(s.escalation_role, 0):
        return f"acknowledge: the escalation sits with {s.escalation_role}"
    return None
