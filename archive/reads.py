"""Scoped reads of requests and the access log (001 §7.2 tiered information sharing; 000 §6.3 access log).

A ReadScope says which requests a reader may see; `visible` turns it into one SQL condition, so listing and opening
a request apply the same rule. `log_reads` writes one access_log row per request whose personal data (customer
name, phone, email, description) a reader was shown. Who gets which scope is the API's rule (api/scope.py); this
module only expresses it in SQL. Imports the archive beside it and models; SQL only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, false, or_, select, text, true
from sqlmodel import Session

from archive.access_tables import AccessRow
from archive.directory import ASSIGNMENTS
from archive.store import REQUESTS, Archive

ACCESS: Table = AccessRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class ReadScope:
    """The requests one reader may see: everything, or the union of what the other fields name."""

    everything: bool = False
    people: frozenset[str] = frozenset()  # requests these people own, were offered, or first took (complaint owner)
    teams: frozenset[str] = frozenset()  # requests a held assignment gives to one of these teams
    min_escalation: int | None = None  # requests escalated at least this high (the ladder's rung the reader holds)
    queue: bool = False  # requests nobody owns yet


def visible(scope: ReadScope) -> ColumnElement[bool]:
    """The scope as a condition on the requests table."""
    if scope.everything:
        return true()
    any_of: list[ColumnElement[bool]] = []
    if scope.people:
        any_of += [REQUESTS.c.owner.in_(sorted(scope.people)), REQUESTS.c.complaint_owner.in_(sorted(scope.people))]
    if scope.teams:
        held = select(ASSIGNMENTS.c.request_id).where(ASSIGNMENTS.c.team.in_(sorted(scope.teams)),
                                                      ASSIGNMENTS.c.status == "held")
        any_of.append(REQUESTS.c.request_id.in_(held))
    if scope.min_escalation is not None:
        any_of.append(REQUESTS.c.escalation_level >= scope.min_escalation)
    if scope.queue:
        any_of.append(REQUESTS.c.owner.is_(None))
    return or_(*any_of) if any_of else false()


def console_list(archive: Archive, *, stage: str | None = None, request_type: str | None = None,
                 priority: str | None = None, policy_id: str | None = None, owner: str | None = None,
                 level: int | None = None, overdue: bool = False, due_within: int | None = None, limit: int = 200,
                 scope: ReadScope | None = None) -> list[dict[str, Any]]:
    """The supervisor console's list (`kefu list`, `GET /requests`): level = escalated at least that high,
    overdue = open and past the next deadline, due_within = open and due within that many minutes; scope: only
    what the reader may see."""
    now = datetime.now(UTC)
    return archive.list_requests(
        stage=stage, request_type=request_type, priority=priority, policy_id=policy_id, owner=owner,
        min_escalation=level, overdue_at=now if overdue else None,
        due_before=now + timedelta(minutes=due_within) if due_within is not None else None, limit=limit,
        where=[visible(scope)] if scope is not None else ())


def get_visible(archive: Archive, scope: ReadScope, request_id: str) -> dict[str, Any] | None:
    """One request's row (registration with the customer's contact, and projection) if the scope shows it."""
    rows = archive.list_requests(where=[visible(scope), REQUESTS.c.request_id == request_id], limit=1)
    return rows[0] if rows else None


def log_reads(archive: Archive, actor_id: str, actor_role: str, request_ids: Iterable[str], path: str,
              fields: str) -> int:
    """One access_log row per request read, in one transaction; returns how many."""
    now = datetime.now(UTC)
    rows = [{"at": now, "actor_id": actor_id, "actor_role": actor_role, "request_id": request_id, "path": path,
             "fields": fields} for request_id in dict.fromkeys(request_ids)]
    if rows:
        with archive.transaction() as session:
            session.execute(ACCESS.insert().values(rows))
    return len(rows)


def access_log(archive: Archive, request_id: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """The access log, oldest first (one request's, or everyone's)."""
    query = select(ACCESS).order_by(ACCESS.c.id).limit(limit)
    if request_id is not None:
        query = query.where(ACCESS.c.request_id == request_id)
    with Session(archive.engine) as session:
        return [{k: v for k, v in row.items() if k != "id"} for row in session.execute(query).mappings()]


def ping(archive: Archive) -> None:
    """One round trip to the database; raises the driver's error when it cannot be reached."""
    with archive.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
