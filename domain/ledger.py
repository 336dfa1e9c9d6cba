"""SLA clock ledger: one per clock (first_response, handling, closure, revisit). Pure; no temporalio.

A clock counts working seconds on its calendar from ``started_at``; pauses (e.g. waiting on the customer) do not
count, extensions (000 §2.2: only after telling the customer) add to the target. Warnings (催办) fire at fractions
of the target, the breach at the deadline (SEEDS §4, §5). All arithmetic goes through ``domain.calendar``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from domain.calendar import BusinessCalendar, Calendar, business_calendar, calendar_for, target_seconds, to_utc
from models.policy import CalendarSpec, ClockSpec
from models.status import ClockView

ReclassifyMode = Literal["carry_over", "restart"]


@dataclass
class Pause:
    start: datetime
    end: datetime | None = None


@dataclass(frozen=True)
class ClockEvent:
    clock: str
    kind: Literal["warning", "breach"]
    at: datetime
    fraction: float | None = None


@dataclass
class SlaClock:
    name: str
    spec: ClockSpec
    calendar: Calendar  # the clock's own calendar: calendar_for(pack calendar, spec.calendar)
    business: BusinessCalendar  # the pack's business calendar, for warn_in_business_hours on 24x7 clocks
    target: float  # seconds, from target_seconds()
    started_at: datetime
    pauses: list[Pause] = field(default_factory=list)
    stopped_at: datetime | None = None
    extended: float = 0.0
    warned: list[float] = field(default_factory=list)
    breached_at: datetime | None = None

    @classmethod
    def start(cls, name: str, spec: ClockSpec, calendar_spec: CalendarSpec, at: datetime) -> SlaClock:
        calendar = calendar_for(calendar_spec, spec.calendar)
        return cls(
            name=name,
            spec=spec,
            calendar=calendar,
            business=business_calendar(calendar_spec),
            target=target_seconds(spec, calendar),
            started_at=to_utc(at, "clock start"),
        )

    # -- state ---------------------------------------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        return self.stopped_at is not None

    @property
    def paused(self) -> bool:
        return bool(self.pauses) and self.pauses[-1].end is None

    @property
    def running(self) -> bool:
        return not self.stopped and not self.paused

    @property
    def breached(self) -> bool:
        return self.breached_at is not None

    def _check_time(self, at: datetime, action: str) -> datetime:
        """``at`` in UTC (all stored instants are UTC, so comparisons are by instant); never before the last one."""
        at = to_utc(at, f"{self.name} {action} time")
        last = max([self.started_at, *(p.end or p.start for p in self.pauses)])
        if at < last:
            raise ValueError(f"cannot {action} clock {self.name!r} at {at.isoformat()}: before {last.isoformat()}")
        return at

    def pause(self, at: datetime) -> None:
        if self.stopped:
            raise ValueError(f"cannot pause clock {self.name!r}: it stopped at {self.stopped_at}")
        if self.paused:
            raise ValueError(f"cannot pause clock {self.name!r}: already paused since {self.pauses[-1].start}")
        if not self.spec.pausable:
            raise ValueError(f"cannot pause clock {self.name!r}: the policy makes it non-pausable")
        self.pauses.append(Pause(self._check_time(at, "pause")))

    def resume(self, at: datetime) -> None:
        if not self.paused:
            raise ValueError(f"cannot resume clock {self.name!r}: it is not paused")
        self.pauses[-1].end = self._check_time(at, "resume")

    def stop(self, at: datetime) -> None:
        if self.stopped:
            raise ValueError(f"cannot stop clock {self.name!r}: already stopped at {self.stopped_at}")
        at = self._check_time(at, "stop")
        if self.paused:
            self.pauses[-1].end = at
        self.stopped_at = at

    def reopen(self, at: datetime) -> None:
        """Count again after a stop: the customer rejected the result (002 §2.2.1), so the work was not done and
        the time since the stop counts too. A clock that never stopped is left as it is."""
        if self.stopped:
            self._check_time(at, "reopen")
            self.stopped_at = None

    def extend(self, seconds: float) -> None:
        """Add to the target (000 §2.2: the caller checks the customer was told and the extension cap)."""
        if seconds <= 0:
            raise ValueError(f"extension must be positive, got {seconds} s")
        if self.stopped:
            raise ValueError(f"cannot extend clock {self.name!r}: it stopped at {self.stopped_at}")
        self.extended += seconds

    # -- measures ------------------------------------------------------------------------------------------
    def _until(self, at: datetime) -> datetime:
        at = to_utc(at, "at")
        return min(at, self.stopped_at) if self.stopped_at is not None else at

    def paused_seconds(self, at: datetime) -> float:
        """Calendar seconds paused so far; an open pause counts up to ``at``."""
        until = self._until(at)
        return sum(self.calendar.between(p.start, min(p.end or until, until)) for p in self.pauses)

    def consumed(self, at: datetime) -> float:
        until = self._until(at)
        return self.calendar.between(self.started_at, until) - self.paused_seconds(until)

    def remaining(self, at: datetime) -> float:
        return self.target + self.extended - self.consumed(at)

    def _due(self, seconds: float, at: datetime) -> datetime:
        """When ``seconds`` of unpaused clock time will have elapsed (pauses so far shift it)."""
        return self.calendar.add(self.started_at, seconds + self.paused_seconds(at))

    def deadline(self, at: datetime) -> datetime:
        """Breach time; while paused, the breach time if the clock resumed at ``at``."""
        return self._due(self.target + self.extended, at)

    def warning_at(self, fraction: float, at: datetime) -> datetime:
        moment = self._due(fraction * (self.target + self.extended), at)
        return self.business.next_opening(moment) if self.spec.warn_in_business_hours else moment

    # -- reclassification ----------------------------------------------------------------------------------
    def retarget(self, new_target: float, at: datetime, mode: ReclassifyMode) -> None:
        """Change the target after reclassification. ``carry_over`` keeps the start and pauses (the new target
        applies retroactively from the original start); ``restart`` starts afresh at ``at`` (an open pause stays
        open from ``at``). A stopped clock keeps its history and only records the new target."""
        if new_target <= 0:
            raise ValueError(f"target must be positive, got {new_target} s")
        at = to_utc(at, "retarget time")
        self.target = new_target
        if mode == "carry_over" or self.stopped:
            return
        if mode != "restart":
            raise ValueError(f"unknown reclassify mode {mode!r}: expected 'carry_over' or 'restart'")
        self.started_at = at
        self.pauses = [Pause(at)] if self.paused else []
        self.warned = []
        self.extended = 0.0
        self.breached_at = None

    def reclassify(self, spec: ClockSpec, calendar_spec: CalendarSpec, at: datetime) -> None:
        """Adopt a new class's clock spec (its calendar may differ: e.g. 3 working days vs 72 h, SEEDS §4.1),
        using the new spec's ``on_reclassify`` mode. With carry_over a breach already recorded stays recorded."""
        self.spec = spec
        self.calendar = calendar_for(calendar_spec, spec.calendar)
        self.business = business_calendar(calendar_spec)
        self.retarget(target_seconds(spec, self.calendar), at, spec.on_reclassify)

    # -- events --------------------------------------------------------------------------------------------
    def next_event(self, at: datetime) -> ClockEvent | None:
        """Earliest pending warning or breach. Overdue warnings are due at once, unless the breach is overdue
        too: then only the breach. A warning not before the breach is never sent. None when stopped, paused or
        breached."""
        if self.stopped or self.paused or self.breached:
            return None
        at = to_utc(at, "at")
        breach = ClockEvent(self.name, "breach", self.deadline(at))
        if breach.at <= at:
            return breach
        unwarned = [f for f in self.spec.warn_at if f not in self.warned]
        warnings = [ClockEvent(self.name, "warning", self.warning_at(f, at), f) for f in unwarned]
        pending = [w for w in warnings if w.at < breach.at]
        return min(pending, key=lambda e: (e.at, e.fraction or 0.0)) if pending else breach

    def mark_warned(self, fraction: float) -> None:
        if fraction not in self.warned:
            self.warned = sorted([*self.warned, fraction])

    def mark_breached(self, at: datetime) -> None:
        if self.breached_at is None:
            self.breached_at = to_utc(at, "breach time")

    def provisional(self, at: datetime) -> bool:
        """Whether the deadline rests on days past the calendar's known schedule (statutory holidays only, no 调休:
        SEEDS §4.4); it may move when that year's schedule is loaded."""
        return self.calendar.provisional(self.started_at, self.deadline(at))

    def view(self, at: datetime) -> ClockView:
        deadline = self.deadline(at)
        return ClockView(
            name=self.name,
            calendar=self.calendar.kind,
            target_seconds=round(self.target),
            started_at=self.started_at,
            deadline=deadline,
            provisional=self.calendar.provisional(self.started_at, deadline),
            stopped_at=self.stopped_at,
            paused=self.paused,
            paused_seconds=round(self.paused_seconds(at)),
            consumed_seconds=round(self.consumed(at)),
            breached=self.breached,
            breached_at=self.breached_at,
            warnings_sent=list(self.warned),
            extended_seconds=round(self.extended),
        )
