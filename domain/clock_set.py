"""A request's SLA clocks (SEEDS §4-5), which record their own changes. Pure; no temporalio.

Each clock has one durable timer in the workflow (its next warning or its breach). The timer must be re-armed
exactly when its clock changes, so every change goes through this class and bumps that clock's revision; the
workflow's watcher re-reads the clock when the revision moves. Nobody bumps a revision by hand.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

from domain.ledger import ClockEvent, SlaClock
from models.policy import CalendarSpec, ClockSpec
from models.status import ClockView


class ClockSet:
    def __init__(self) -> None:
        self._clocks: dict[str, SlaClock] = {}
        self._rev: dict[str, int] = {}

    # --- reads ---------------------------------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self._clocks

    def __iter__(self) -> Iterator[SlaClock]:
        return iter(self._clocks.values())

    def get(self, name: str) -> SlaClock | None:
        return self._clocks.get(name)

    def rev(self, name: str) -> int:
        """Changes so far to `name`: the watcher re-arms its timer when this moves."""
        return self._rev.get(name, 0)

    def running(self, name: str) -> bool:
        clock = self._clocks.get(name)
        return clock is not None and clock.running

    def next_deadline(self, now: datetime, include_breached: bool = False) -> datetime | None:
        """The earliest deadline of a counting clock. `include_breached`: a breached clock still counting (e.g. a
        first response not given yet) keeps its past deadline, so the archive lists the request as overdue."""
        pending = [c.deadline(now) for c in self if c.running and (include_breached or c.breached_at is None)]
        return min(pending) if pending else None

    def breached(self) -> list[str]:
        return [c.name for c in self if c.breached_at is not None]

    def views(self, now: datetime) -> dict[str, ClockView]:
        return {c.name: c.view(now) for c in self}

    # --- changes (each bumps the revision of every clock it touches) -----------------------------------------
    def _touch(self, name: str) -> None:
        self._rev[name] = self._rev.get(name, 0) + 1

    def adopt(self, clock: SlaClock) -> None:
        """A clock carried over from the previous run (continue-as-new)."""
        self._clocks[clock.name] = clock
        self._touch(clock.name)

    def start(self, name: str, spec: ClockSpec, calendar: CalendarSpec, at: datetime) -> SlaClock:
        """Start (or restart afresh) the clock `name`."""
        clock = self._clocks[name] = SlaClock.start(name, spec, calendar, at)
        self._touch(name)
        return clock

    def stop(self, name: str, at: datetime) -> None:
        self._clocks[name].stop(at)
        self._touch(name)

    def stop_if_running(self, name: str, at: datetime) -> None:
        if self.running(name):
            self.stop(name, at)

    def stop_all(self, at: datetime) -> None:
        """Closure: every clock still counting (or paused) stops; every watcher re-reads its clock."""
        for clock in self:
            if clock.running or clock.paused:
                clock.stop(at)
        for name in self._clocks:
            self._touch(name)

    def pause_pausable(self, at: datetime) -> list[str]:
        """Waiting on the customer: clocks the policy makes pausable stop counting (SEEDS §5). Returns their names."""
        paused = []
        for clock in self:
            if clock.spec.pausable and clock.running:
                clock.pause(at)
                self._touch(clock.name)
                paused.append(clock.name)
        return paused

    def resume(self, name: str, at: datetime) -> None:
        if self._clocks[name].paused:
            self._clocks[name].resume(at)
            self._touch(name)

    def resume_paused(self, at: datetime) -> None:
        for clock in self:
            if clock.paused:
                clock.resume(at)
                self._touch(clock.name)

    def reopen(self, name: str, at: datetime) -> None:
        """Count again after a stop (a rejected result: 002 §2.2.1); a clock that never stopped is re-read too."""
        self._clocks[name].reopen(at)
        self._touch(name)

    def extend(self, name: str, seconds: float) -> SlaClock:
        clock = self._clocks[name]
        clock.extend(seconds)
        self._touch(name)
        return clock

    def retarget(self, specs: Mapping[str, ClockSpec], calendar: CalendarSpec, at: datetime) -> None:
        """Reclassification or a new policy version: each running or stopped clock takes its new spec."""
        for name, spec in specs.items():
            if name in self._clocks:
                self._clocks[name].reclassify(spec, calendar, at)
                self._touch(name)

    def mark(self, clock: SlaClock, event: ClockEvent, at: datetime) -> None:
        """A warning was sent or the breach recorded."""
        if event.kind == "warning":
            clock.mark_warned(event.fraction or 0.0)
        else:
            clock.mark_breached(at)
        self._touch(clock.name)
