"""The agent directory dispatch assigns from (docs/assignment.md): list (team leads and above), import and add
(supervisors and above)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from api.deps import State, at_least
from api.errors import BAD_INPUT, ApiError
from archive.directory import Directory
from domain.assignment import on_shift
from infra.principal import Principal
from models.assignment import Agent, Shift

router = APIRouter(prefix="/agents", tags=["agents"])
Reader = Annotated[Principal, Depends(at_least("team_lead", "read the agent directory"))]
Editor = Annotated[Principal, Depends(at_least("supervisor", "change the agent directory"))]


@router.get("")
def agents(app: State, caller: Reader, team: str | None = None) -> list[dict[str, Any]]:
    """Every agent with its load (open cases against capacity) and whether its shift covers now."""
    now = datetime.now(UTC)
    return [row | {"on_shift": on_shift(Shift.model_validate(row["shift"]), now)}
            for row in Directory(app.archive.engine).list_agents(team)]


@router.post("")
def import_agents(agents: Annotated[list[Agent], Body(min_length=1, max_length=5000)], app: State,
                  caller: Editor) -> dict[str, int]:
    """Add or update agents, all or none (load and history are kept)."""
    seen: set[str] = set()
    for index, agent in enumerate(agents):
        if agent.id in seen:
            raise ApiError(BAD_INPUT, f"{index}.id", f"{agent.id} appears twice")
        seen.add(agent.id)
    return {"imported": Directory(app.archive.engine).upsert_agents(agents)}


@router.put("/{agent_id}")
def put_agent(agent_id: str, agent: Agent, app: State, caller: Editor) -> dict[str, Any]:
    """Add or update one agent."""
    if agent.id != agent_id:
        raise ApiError(BAD_INPUT, "id", f"the body's id {agent.id} is not the path's {agent_id}")
    directory = Directory(app.archive.engine)
    directory.upsert_agents([agent])
    return directory.get_agent(agent_id) or {}
