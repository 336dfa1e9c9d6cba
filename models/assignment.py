"""Agent directory and dispatch payloads (001 §4.1-4.2, 003 §1.1, §2.2). Plain pydantic, never SQLModel tables."""

from __future__ import annotations

from datetime import datetime, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.actions import Role
from models.intake import REQUEST_ID_PATTERN, Channel, Language, RequestType

AGENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"


class Shift(BaseModel):
    """When an agent works, in the center's time zone: ISO weekdays and one daily interval."""

    model_config = ConfigDict(extra="forbid")

    weekdays: list[int] = Field(default=[1, 2, 3, 4, 5, 6, 7])
    start: time = time(0, 0)
    end: time = time(23, 59, 59)
    timezone: str = "Asia/Shanghai"


class Skills(BaseModel):
    """What an agent handles. An empty list means any."""

    model_config = ConfigDict(extra="forbid")

    request_types: list[RequestType] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    languages: list[Language] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)


class Agent(BaseModel):
    """One agent in the directory (archive table `agents`)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=AGENT_ID_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    team: str = Field(min_length=1, max_length=64)
    department: str = Field(default="customer_service", max_length=64)
    role: Role = "agent"
    region: str | None = Field(default=None, max_length=64, description="region or branch (001 §4.1 就近)")
    skills: Skills = Field(default_factory=Skills)
    level: int = Field(default=1, ge=1, le=5, description="proficiency: higher is more capable (001 §4.1 最能)")
    capacity: int = Field(ge=1, le=1000, description="maximum open cases held at once")
    shift: Shift = Field(default_factory=Shift)
    active: bool = True


class AssignRequest(BaseModel):
    """Payload of activity `assign_agent`: pick and hold one agent for this request (idempotent per attempt)."""

    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    attempt: int = Field(ge=1, description="with request_id the idempotency key: a retried call returns the same")
    strategy: Literal["balanced", "round_robin", "nearest"]
    team: str | None = None
    department: str
    request_type: RequestType
    category: str | None = None
    language: Language
    channel: Channel
    region: str | None = None
    prefer: str | None = Field(default=None, description="previous owner, taken first when it has room (reopen)")
    exclude: list[str] = Field(default_factory=list, description="agents who let the case return")
    at: datetime = Field(description="the workflow's time: shifts are checked against it")


class AssignResult(BaseModel):
    agent_id: str | None
    team: str | None = None
    reason: Literal["assigned", "no_agents", "none_on_duty", "at_capacity"]
    load: int = 0
    capacity: int = 0
    candidates: int = 0


ReleaseReason = Literal["resolved", "returned", "reassigned", "transferred", "completed"]


class Release(BaseModel):
    """Payload of activity `release_agent`: the hold on the agent ends (resolved, returned, reassigned)."""

    request_id: str
    attempt: int = Field(ge=1)
    agent_id: str
    reason: ReleaseReason

    @model_validator(mode="after")
    def _agent(self) -> Release:
        if not self.agent_id:
            raise ValueError("agent_id is empty")
        return self
