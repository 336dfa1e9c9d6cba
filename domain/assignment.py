"""Who takes a work order: pure ranking of candidate agents, no I/O (archive/directory.py does the locking).

001 §4.1 assigns by skill and availability, "就近、最能" (nearest and most capable); 003 §1.1 the work order is
"assigned automatically"; 003 §2.2 by role and business type. The policy pack picks the strategy
(models.policy.Assignment):

- balanced: specific skill matches before wildcards (001 §4.1 by skill), then the lowest load ratio
  (availability), then id;
- round_robin: in turn within the pool, by id, starting after the last agent served (the team cursor);
- nearest: the customer's region first (就近), then the higher level (最能), then the lower load ratio.

Filters before ranking: active, in the pool (req.team, else req.department), skills match (an empty list means
any), on shift at req.at, not in req.exclude. `prefer` (the previous owner on a reopen) goes first when it has room.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, Literal
from zoneinfo import ZoneInfo

from models.assignment import AssignRequest, Shift, Skills

Reason = Literal["assigned", "no_agents", "none_on_duty", "at_capacity"]


@dataclass(frozen=True)
class Candidate:
    """An agent as ranking sees it: directory fields plus the current load (held cases)."""

    id: str
    team: str
    department: str
    region: str | None
    level: int
    load: int
    capacity: int
    skills: Skills
    shift: Shift
    active: bool = True

    @property
    def has_room(self) -> bool:
        return self.load < self.capacity

    @property
    def ratio(self) -> Fraction:
        return Fraction(self.load, self.capacity)


@dataclass(frozen=True)
class Ranking:
    """matching: agents of the pool whose skills fit; on_duty: those eligible now (on shift, not excluded), best
    first, full ones included (their place matters to nobody but keeps `at_capacity` visible)."""

    matching: int
    on_duty: list[Candidate]

    @property
    def free(self) -> list[Candidate]:
        """The agents to try, in order: the first with room takes the case."""
        return [c for c in self.on_duty if c.has_room]

    @property
    def reason(self) -> Reason:
        if not self.matching:
            return "no_agents"  # nobody could ever take it: the case waits in the queue
        if not self.on_duty:
            return "none_on_duty"
        return "assigned" if self.free else "at_capacity"


def on_shift(shift: Shift, at: datetime) -> bool:
    """Whether `at` falls in the shift (ISO weekdays, start..end inclusive, in the shift's time zone). A shift whose
    end is before its start runs overnight and belongs to the weekday it starts on."""
    local = at.astimezone(ZoneInfo(shift.timezone))
    now = local.time().replace(microsecond=0, tzinfo=None)
    if shift.start <= shift.end:
        return local.isoweekday() in shift.weekdays and shift.start <= now <= shift.end
    if now >= shift.start:
        return local.isoweekday() in shift.weekdays
    return now <= shift.end and (local - timedelta(days=1)).isoweekday() in shift.weekdays


def skill_score(skills: Skills, req: AssignRequest) -> int | None:
    """None when the agent cannot take the request; else how many dimensions match specifically (not by an empty
    list = any). A request without a category fits any category list."""
    wanted: dict[str, Any] = {"request_types": req.request_type, "categories": req.category,
                              "languages": req.language, "channels": req.channel}
    score = 0
    for field, value in wanted.items():
        allowed: list[Any] = getattr(skills, field)
        if not allowed or value is None:
            continue
        if value not in allowed:
            return None
        score += 1
    return score


def in_pool(c: Candidate, req: AssignRequest) -> bool:
    """003 §2.2 by role and business process: the request's team, else its department."""
    return c.team == req.team if req.team else c.department == req.department


def pool_key(req: AssignRequest) -> str:
    """The round-robin cursor's key (agent_teams.team)."""
    return req.team or f"department:{req.department}"


def rank(candidates: Iterable[Candidate], req: AssignRequest, cursor: str | None = None) -> Ranking:
    """Filter and order candidates for req; cursor is the pool's last round-robin agent id."""
    scores: dict[str, int] = {}
    matching: list[Candidate] = []
    for c in candidates:
        score = skill_score(c.skills, req) if c.active and in_pool(c, req) else None
        if score is not None and c.id not in scores:
            scores[c.id] = score
            matching.append(c)
    excluded = set(req.exclude)
    eligible = [c for c in matching if c.id not in excluded and on_shift(c.shift, req.at)]
    ordered = ORDER[req.strategy](eligible, req, scores, cursor)
    if req.prefer:  # the previous owner first when it has room (reopen: 首问负责, 000 §2.5)
        first = [c for c in ordered if c.id == req.prefer and c.has_room]
        ordered = first + [c for c in ordered if c not in first]
    return Ranking(matching=len(matching), on_duty=ordered)


def _balanced(cs: list[Candidate], _req: AssignRequest, scores: dict[str, int], _cursor: str | None) -> list[Candidate]:
    # 001 §4.1 by skill, then availability.
    return sorted(cs, key=lambda c: (-scores[c.id], c.ratio, c.id))


def _round_robin(cs: list[Candidate], _req: AssignRequest, _scores: dict[str, int],
                 cursor: str | None) -> list[Candidate]:
    # In turn within the team: the agents after the cursor by id, then wrap around to the start.
    by_id = sorted(cs, key=lambda c: c.id)
    if cursor is None:
        return by_id
    return [c for c in by_id if c.id > cursor] + [c for c in by_id if c.id <= cursor]


def _nearest(cs: list[Candidate], req: AssignRequest, _scores: dict[str, int], _cursor: str | None) -> list[Candidate]:
    # 001 §4.1 就近、最能: the customer's region first, then the most capable, then the least loaded.
    return sorted(cs, key=lambda c: (not (req.region and c.region == req.region), -c.level, c.ratio, c.id))


ORDER: dict[str, Callable[[list[Candidate], AssignRequest, dict[str, int], str | None], list[Candidate]]] = {
    "balanced": _balanced,
    "round_robin": _round_robin,
    "nearest": _nearest,
}
