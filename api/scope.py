"""Who may read which request through the API (001 §7.2 tiered information sharing; 002 §6.3 masking).

- agent: the requests they own, are offered (an offer makes them the owner until they accept or decline) or first
  took (complaint owner), and those their team holds (team from the agent directory);
- team lead: their team's requests, and the queue (requests nobody owns yet) they dispatch from;
- supervisor: their team's, the queue, and every escalated request (a breach or a supervisor's signal climbs the
  ladder, 000 §5.5: those are the requests that need them);
- manager: everything, and the aggregates (the KPI report);
- customer: no list; their own request only, through its link (routes/customer.py).

Lists show the customer's contact to the roles that call customers about the cases in their scope (agents and
team leads), each such row logged; others see it masked and without the description. Opening one request shows it
and logs the read (archive/reads.py).
"""

from __future__ import annotations

from typing import Any

from archive.directory import Directory
from archive.reads import ReadScope
from domain.pii import PII_FIELDS
from infra.principal import Principal

CONTACT_ROLES = frozenset({"agent", "team_lead"})
CONTACT_FIELDS = ("customer_name", "customer_phone", "customer_email")
ESCALATED = 1  # escalation level from which a request is on the ladder (level 0: with its agent)


def scope_for(principal: Principal, directory: Directory) -> ReadScope:
    role = principal.role
    if role == "manager":
        return ReadScope(everything=True)
    if role not in ("agent", "team_lead", "supervisor"):
        return ReadScope()
    me = directory.get_agent(principal.sub)
    team = me["team"] if me else None
    members = {agent["id"] for agent in directory.list_agents(team)} if team else set()
    people, teams = frozenset({principal.sub, *members}), frozenset({team} if team else ())
    if role == "agent":
        return ReadScope(people=people, teams=teams)
    return ReadScope(people=people, teams=teams, queue=True,
                     min_escalation=ESCALATED if role == "supervisor" else None)


def shows_contact(principal: Principal) -> bool:
    """Lists show this reader the customer's contact (each row is then logged as a read of personal data)."""
    return principal.role in CONTACT_ROLES


def masked(row: dict[str, Any]) -> dict[str, Any]:
    """A list row without personal data in clear: contact masked (138****5678), description left out."""
    return {**row, **{name: PII_FIELDS[name](row[name]) for name in CONTACT_FIELDS if row.get(name)},
            "description": None}
