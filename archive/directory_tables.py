"""Agent directory tables (001 §4.1 assignment by skill, availability, "nearest and most capable"; 003 §2.2).

Only archive/directory.py uses them; they are never workflow or activity payloads. `agents.open_cases` is the
number of held assignments: archive/directory.py changes it only together with an `assignments` row, in one
transaction, so it always equals the agent's held rows and never exceeds capacity when a case is taken.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, Table
from sqlmodel import Field, SQLModel

from archive.tables import JSONDoc, UTCDateTime


def _at(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable)


class AgentRow(SQLModel, table=True):
    """One agent (models.assignment.Agent) with its current load."""

    __tablename__ = "agents"
    __table_args__ = (CheckConstraint("open_cases >= 0", name="ck_agents_open_cases"),)

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=100)
    team: str = Field(index=True, max_length=64)
    department: str = Field(index=True, max_length=64)
    role: str = Field(max_length=32)
    region: str | None = Field(default=None, max_length=64)
    level: int = 1
    capacity: int
    open_cases: int = 0  # held assignments (load); written only by Directory.assign / release
    skills: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDoc)  # models.assignment.Skills
    shift: dict[str, Any] = Field(default_factory=dict, sa_type=JSONDoc)  # models.assignment.Shift
    active: bool = True  # deactivated agents take no new cases; their history stays
    created_at: datetime = _at(nullable=False)
    updated_at: datetime = _at(nullable=False)


class AgentTeamRow(SQLModel, table=True):
    """Round-robin state of one pool: a team, or `department:<name>` when a request names no team."""

    __tablename__ = "agent_teams"

    team: str = Field(primary_key=True, max_length=80)
    rr_cursor: str | None = Field(default=None, max_length=64)  # the last agent id round robin served


class AssignmentRow(SQLModel, table=True):
    """One hold of an agent for a request; (request_id, attempt) is the idempotency key of `assign_agent`."""

    __tablename__ = "assignments"
    __table_args__ = (Index("ix_assignments_agent_status", "agent_id", "status"),)

    request_id: str = Field(primary_key=True, max_length=64)
    attempt: int = Field(primary_key=True)
    agent_id: str = Field(max_length=64)
    team: str = Field(max_length=64)
    status: str = Field(default="held", max_length=16)  # held | released
    reason: str | None = Field(default=None, max_length=32)  # why the hold ended (models.assignment.Release)
    assigned_at: datetime = _at(nullable=False)
    released_at: datetime | None = _at()


TABLES: list[Table] = [AgentRow.__table__, AgentTeamRow.__table__, AssignmentRow.__table__]  # type: ignore[list-item]
