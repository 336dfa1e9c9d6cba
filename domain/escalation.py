"""The escalation ladder: 0 agent → 1 team lead → 2 supervisor → 3 senior management (role names from the pack).

Triggers: a major complaint grade (002 §4.4), an SLA breach, a supervisor's signal, an unacknowledged escalation,
a dissatisfied revisit (003 §4.1). Each step is attributed to the handler who breached (000 §5.5). Pure: no I/O,
no clock; imports models only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models.policy import EscalationLevel, duration_seconds
from models.status import EscalationStep


@dataclass
class Ladder:
    levels: list[EscalationLevel]
    level: int = 0
    awaiting_ack_since: datetime | None = None
    steps: list[EscalationStep] = field(default_factory=list)

    @property
    def top(self) -> int:
        return len(self.levels) - 1

    @property
    def current(self) -> EscalationLevel:
        return self.levels[self.level]

    def raise_to(self, level: int, at: datetime, *, trigger: str, reason: str, actor: str,
                 attributed_to: str | None = None) -> EscalationStep | None:
        """Move up to `level` (capped at the top). Returns the step, or None when already at or above it."""
        level = min(level, self.top)
        if level <= self.level:
            return None
        self.level = level
        rung = self.levels[level]
        self.awaiting_ack_since = at if rung.ack_within else None
        step = EscalationStep(level=level, role=rung.role, title=rung.title, at=at, trigger=trigger,  # type: ignore[arg-type]
                              reason=reason, actor=actor, attributed_to=attributed_to)
        self.steps.append(step)
        return step

    def acknowledge(self) -> bool:
        """The escalated owner acknowledged; False when nothing was awaiting acknowledgement."""
        waiting = self.awaiting_ack_since is not None
        self.awaiting_ack_since = None
        return waiting

    def ack_deadline(self) -> datetime | None:
        """When the ladder climbs again unless acknowledged (24x7 time: escalations do not wait for office hours)."""
        rung = self.current
        if self.awaiting_ack_since is None or rung.ack_within is None or self.level >= self.top:
            return None
        return self.awaiting_ack_since + timedelta(seconds=duration_seconds(rung.ack_within))
