"""The agent directory and capacity-safe assignment (001 §4.1, 003 §1.1 "assigned automatically", 003 §2.2).

assign() holds one agent for one (request_id, attempt) and release() ends the hold. Capacity is never exceeded,
whatever the concurrency: in one transaction the pool's agent rows are locked (PostgreSQL: SELECT … FOR UPDATE in
id order, then the round-robin cursor row; SQLite: BEGIN IMMEDIATE, the database's write lock), ranked
(domain/assignment.py), and the first with room is taken by a guarded `open_cases = open_cases + 1 WHERE
open_cases < capacity` together with the assignment row. Both calls are idempotent, for activity retries and
replays: assign returns the existing row of its key, and only a held → released transition decrements the load.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, select, update
from sqlmodel import Session

from archive.directory_tables import AgentRow, AgentTeamRow, AssignmentRow
from archive.store import dialect_insert, write_transaction
from domain.assignment import Candidate, pool_key, rank
from models.assignment import Agent, AssignRequest, AssignResult, Release, Shift, Skills

AGENTS: Table = AgentRow.__table__  # type: ignore[assignment]
TEAMS: Table = AgentTeamRow.__table__  # type: ignore[assignment]
ASSIGNMENTS: Table = AssignmentRow.__table__  # type: ignore[assignment]
# Written by upsert_agents; open_cases (the load) and created_at are the directory's own.
AGENT_FIELDS = ("name", "team", "department", "role", "region", "level", "capacity", "skills", "shift", "active")


class _Raced(Exception):
    """Another call inserted the same (request_id, attempt) first: roll back ours and return theirs."""


class Directory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = dialect_insert(engine)
        self._lock = engine.dialect.name == "postgresql"  # SQLite: write_transaction already serializes

    # --- the directory ------------------------------------------------------------------------------------------

    def upsert_agents(self, agents: list[Agent]) -> int:
        """Add or update agents in one transaction (load and created_at are kept); returns how many."""
        if not agents:
            return 0
        now = datetime.now(UTC)
        latest = {agent.id: agent for agent in agents}  # one row per id (the last wins)
        # In id order, the order assign() locks rows in, so an import never deadlocks with assignments.
        rows = [latest[key].model_dump(mode="json", include={"id", *AGENT_FIELDS})
                | {"created_at": now, "updated_at": now, "open_cases": 0} for key in sorted(latest)]
        stmt = self._insert(AGENTS).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"], set_={name: stmt.excluded[name] for name in (*AGENT_FIELDS, "updated_at")})
        with write_transaction(self.engine) as session:
            session.execute(stmt)
        return len(rows)

    def list_agents(self, team: str | None = None) -> list[dict[str, Any]]:
        """Every agent (inactive ones too), with open_cases, by team then id."""
        query = select(AGENTS).order_by(AGENTS.c.team, AGENTS.c.id)
        if team is not None:
            query = query.where(AGENTS.c.team == team)
        with Session(self.engine) as session:
            return [dict(row) for row in session.execute(query).mappings()]

    def get_agent(self, agent_id: str) -> dict[str, Any] | None:
        with Session(self.engine) as session:
            row = session.execute(select(AGENTS).where(AGENTS.c.id == agent_id)).mappings().one_or_none()
            return dict(row) if row else None

    def deactivate(self, agent_id: str) -> bool:
        """The agent takes no new cases; held cases and the history stay. False if unknown or already inactive."""
        with write_transaction(self.engine) as session:
            done = session.execute(update(AGENTS).where(AGENTS.c.id == agent_id, AGENTS.c.active.is_(True))
                                   .values(active=False, updated_at=datetime.now(UTC))).rowcount
        return bool(done)

    # --- assignment ---------------------------------------------------------------------------------------------

    def assign(self, req: AssignRequest) -> AssignResult:
        """Hold the best-ranked agent with room for req; the same (request_id, attempt) always returns the same."""
        existing = self._existing(req.request_id, req.attempt)
        if existing is not None:
            return existing
        if not self._pool_has_agents(req):  # a center without a directory: no write lock for every request
            return AssignResult(agent_id=None, team=req.team, reason="no_agents", candidates=0)
        try:
            with write_transaction(self.engine) as session:
                return self._assign(session, req)
        except _Raced:
            existing = self._existing(req.request_id, req.attempt)
            assert existing is not None, "the racing assignment row is committed"
            return existing

    def _pool_has_agents(self, req: AssignRequest) -> bool:
        with Session(self.engine) as session:
            return session.execute(select(AGENTS.c.id).where(_pool(req), AGENTS.c.active.is_(True)).limit(1)).first() \
                is not None

    def _assign(self, session: Session, req: AssignRequest) -> AssignResult:
        pool = _pool(req)
        query = select(AGENTS).where(pool, AGENTS.c.active.is_(True)).order_by(AGENTS.c.id)
        if self._lock:
            query = query.with_for_update()  # in id order: concurrent assigns over one pool never deadlock
        candidates = [_candidate(row) for row in session.execute(query).mappings()]
        cursor = self._cursor(session, req) if req.strategy == "round_robin" else None
        ranking = rank(candidates, req, cursor)
        for c in ranking.free:
            taken = session.execute(
                update(AGENTS).where(AGENTS.c.id == c.id, AGENTS.c.open_cases < AGENTS.c.capacity)
                .values(open_cases=AGENTS.c.open_cases + 1)
                .returning(AGENTS.c.open_cases)
            ).scalar()
            if taken is None:  # cannot happen while the rows are locked; the guard is the last word anyway
                continue
            inserted = session.execute(
                self._insert(ASSIGNMENTS)
                .values(request_id=req.request_id, attempt=req.attempt, agent_id=c.id, team=c.team, status="held",
                        assigned_at=datetime.now(UTC))
                .on_conflict_do_nothing(index_elements=["request_id", "attempt"])
                .returning(ASSIGNMENTS.c.request_id)
            ).scalar()
            if inserted is None:
                raise _Raced
            if req.strategy == "round_robin":
                session.execute(update(TEAMS).where(TEAMS.c.team == pool_key(req)).values(rr_cursor=c.id))
            return AssignResult(agent_id=c.id, team=c.team, reason="assigned", load=taken, capacity=c.capacity,
                                candidates=len(ranking.on_duty))
        return AssignResult(agent_id=None, team=req.team, reason=ranking.reason, candidates=len(ranking.on_duty))

    def _cursor(self, session: Session, req: AssignRequest) -> str | None:
        """The pool's round-robin cursor, locked (after the agent rows) until the transaction ends."""
        key = pool_key(req)
        session.execute(self._insert(TEAMS).values(team=key).on_conflict_do_nothing(index_elements=["team"]))
        query = select(TEAMS.c.rr_cursor).where(TEAMS.c.team == key)
        return session.execute(query.with_for_update() if self._lock else query).scalar()

    def _existing(self, request_id: str, attempt: int) -> AssignResult | None:
        with Session(self.engine) as session:
            row = session.execute(
                select(ASSIGNMENTS.c.agent_id, ASSIGNMENTS.c.team, AGENTS.c.open_cases, AGENTS.c.capacity)
                .join(AGENTS, AGENTS.c.id == ASSIGNMENTS.c.agent_id)
                .where(ASSIGNMENTS.c.request_id == request_id, ASSIGNMENTS.c.attempt == attempt)
            ).one_or_none()
        if row is None:
            return None
        return AssignResult(agent_id=row.agent_id, team=row.team, reason="assigned", load=row.open_cases,
                            capacity=row.capacity)

    def release(self, rel: Release) -> bool:
        """End the hold (resolved, returned, reassigned, …); True only for the call that ended it."""
        with write_transaction(self.engine) as session:
            ended = session.execute(
                update(ASSIGNMENTS)
                .where(ASSIGNMENTS.c.request_id == rel.request_id, ASSIGNMENTS.c.attempt == rel.attempt,
                       ASSIGNMENTS.c.agent_id == rel.agent_id, ASSIGNMENTS.c.status == "held")
                .values(status="released", reason=rel.reason, released_at=datetime.now(UTC))
            ).rowcount
            if ended:
                session.execute(update(AGENTS).where(AGENTS.c.id == rel.agent_id, AGENTS.c.open_cases > 0)
                                .values(open_cases=AGENTS.c.open_cases - 1))
        return bool(ended)

    def held(self, agent_id: str | None = None) -> list[dict[str, Any]]:
        """Assignments still held (all agents, or one), oldest first."""
        query = select(ASSIGNMENTS).where(ASSIGNMENTS.c.status == "held").order_by(ASSIGNMENTS.c.assigned_at)
        if agent_id is not None:
            query = query.where(ASSIGNMENTS.c.agent_id == agent_id)
        with Session(self.engine) as session:
            return [dict(row) for row in session.execute(query).mappings()]


def _pool(req: AssignRequest) -> Any:
    """The team when the pack names one for the department, else the department."""
    return AGENTS.c.team == req.team if req.team else AGENTS.c.department == req.department


def _candidate(row: Any) -> Candidate:
    return Candidate(id=row.id, team=row.team, department=row.department, region=row.region, level=row.level,
                     load=row.open_cases, capacity=row.capacity, skills=Skills.model_validate(row.skills),
                     shift=Shift.model_validate(row.shift), active=row.active)
