"""Working-time calendars for SLA clocks (SEEDS §4.4: "3 working days" needs weekends, holidays and 调休).

Pure and deterministic: imported inside workflow code (through ``imports_passed_through``), so no I/O, no
``datetime.now()``, no randomness. Every datetime in and out is timezone-aware; results are in UTC.

Business time is measured in *working seconds*. A date works if (its ISO weekday is a working weekday and it is
not a holiday) or it is a make-up day (调休). Working intervals are wall-clock times in the pack's zone.

Cost is flat in the span: ``cum(date)`` (working µs from a fixed Monday to the start of ``date``) is O(log H) for H
special dates — full weeks times the week's work, plus the partial week, plus a bisected prefix sum of the
holiday / make-up adjustments — and its inverse is one more bisect plus O(1) arithmetic. Only the few intervals of
the final day are walked. Internally everything is integer microseconds, so add/between are exact inverses.

Coverage (SEEDS §4.4, issue 16 "calendars that never silently run out"): a spec resolved from a jurisdiction
calendar says which dates its official schedule covers. Beyond them it holds the statutory holidays only (no 调休,
which only the State Council's notice can give), and a deadline whose span leaves the covered dates is
*provisional*: ``provisional(a, b)``. The deadline itself is computed the same way either way.

DST: intervals are wall-clock, so a 09:00 opening stays 09:00 local across a transition. On the rare day whose
working span contains a transition (no real zone moves its clocks inside office hours), interval bounds are resolved
to instants — a nonexistent wall time (spring gap) moves forward to the transition, an ambiguous one (autumn fold)
is its first occurrence — and each interval still counts its wall-clock length, so every day of the prefix
function has the same length and positions never run backwards.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from models.policy import CalendarSpec, ClockSpec, duration_seconds, parse_duration

_US = 1_000_000
_EPOCH = date(2000, 1, 3)  # a Monday: ordinal offsets from it give the weekday by mod 7
_EPOCH_ORD = _EPOCH.toordinal()
_MICRO = timedelta(microseconds=1)
_SECOND = timedelta(seconds=1)
_UNSET = object()
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

DayKind = Literal["working", "weekend", "holiday", "makeup"]


def ensure_aware(moment: datetime, what: str = "datetime") -> datetime:
    """Reject naive datetimes: a wall time without a zone is ambiguous across packs."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} {moment.isoformat()} is naive: give a timezone-aware datetime")
    return moment


def to_utc(moment: datetime, what: str = "datetime") -> datetime:
    """Aware ``moment`` in UTC. Compare and subtract only UTC values: Python compares two datetimes sharing a tzinfo
    by wall clock, which is wrong across a DST fold."""
    return ensure_aware(moment, what).astimezone(UTC)


def _time_us(value: time) -> int:
    return ((value.hour * 60 + value.minute) * 60 + value.second) * _US + value.microsecond


def _us_to_seconds(us: int) -> float:
    return us // _US if us % _US == 0 else us / _US


def _seconds_to_us(seconds: float) -> int:
    if seconds < 0:
        raise ValueError(f"cannot add a negative duration ({seconds} s)")
    return round(seconds * _US)


class Calendar(Protocol):
    kind: str

    def add(self, start: datetime, seconds: float) -> datetime: ...

    def between(self, a: datetime, b: datetime) -> float: ...

    def is_working_time(self, moment: datetime) -> bool: ...

    def next_opening(self, moment: datetime) -> datetime: ...

    def provisional(self, a: datetime, b: datetime) -> bool: ...


class AlwaysOpen:
    """24x7: absolute (UTC) elapsed time, so DST never moves a deadline."""

    kind = "24x7"

    def add(self, start: datetime, seconds: float) -> datetime:
        return to_utc(start, "start") + timedelta(microseconds=_seconds_to_us(seconds))

    def between(self, a: datetime, b: datetime) -> float:
        return max(0.0, (to_utc(b, "b") - to_utc(a, "a")).total_seconds())

    def is_working_time(self, moment: datetime) -> bool:
        ensure_aware(moment, "moment")
        return True

    def next_opening(self, moment: datetime) -> datetime:
        return to_utc(moment, "moment")

    def provisional(self, a: datetime, b: datetime) -> bool:
        """Never: absolute time needs no holiday schedule."""
        ensure_aware(a, "a")
        ensure_aware(b, "b")
        return False


class BusinessCalendar:
    """Working hours on working dates in ``spec.timezone`` (SEEDS §4.4)."""

    kind = "business"

    def __init__(self, spec: CalendarSpec) -> None:
        self.spec = spec
        self.zone = ZoneInfo(spec.timezone)
        self.working_hours = ordered = sorted(spec.working_hours, key=lambda i: i.start)
        # (start µs, end µs, working µs of the day before this interval starts)
        self._intervals: list[tuple[int, int, int]] = []
        done = 0
        for interval in ordered:
            start, end = _time_us(interval.start), _time_us(interval.end)
            self._intervals.append((start, end, done))
            done += end - start
        self._bounds_memo: dict[int, tuple[tuple[datetime, datetime], ...] | None] = {}
        self.day_seconds: float = _us_to_seconds(done)
        self._weekdays = frozenset(spec.weekdays)
        # _week_prefix[r]: working µs of the first r days of a Monday-started week; [7] is the whole week.
        self._week_prefix = [0]
        for iso in range(1, 8):
            self._week_prefix.append(self._week_prefix[-1] + (done if iso in self._weekdays else 0))
        self._week_us = self._week_prefix[7]
        self.week_seconds: float = _us_to_seconds(self._week_us)
        # The pack's own closures are days off in every year, even on a make-up day of the calendar.
        self._holidays = frozenset(spec.holidays) | frozenset(spec.closures)
        self._makeups = frozenset(spec.makeup_days) - frozenset(spec.closures)
        self.covers = spec.covers
        # Only dates that change a weekday's nominal status matter: a holiday on a working weekday (−1 day) and a
        # make-up day on an off weekday (+1 day). Sorted by date, with prefix sums and cum() at each one.
        special = [(d.toordinal() - _EPOCH_ORD, -done) for d in self._holidays if d.isoweekday() in self._weekdays]
        special += [(d.toordinal() - _EPOCH_ORD, done) for d in self._makeups if d.isoweekday() not in self._weekdays]
        special.sort()
        self._special = [n for n, _ in special]
        self._adj_prefix = [0]
        for _, adj in special:
            self._adj_prefix.append(self._adj_prefix[-1] + adj)
        self._special_cum = [self._nominal(n) + self._adj_prefix[j] for j, n in enumerate(self._special)]

    # -- dates ---------------------------------------------------------------------------------------------
    def day_kind(self, day: date) -> DayKind:
        if day in self._makeups:
            return "makeup"  # 调休: works although its weekday is off
        if day in self._holidays:
            return "holiday"
        return "working" if day.isoweekday() in self._weekdays else "weekend"

    def is_working_day(self, day: date) -> bool:
        return self.day_kind(day) in ("working", "makeup")

    def next_working_day(self, day: date) -> date:
        """First working date strictly after ``day``."""
        return self._date(self._locate(self._cum(day.toordinal() - _EPOCH_ORD + 1) + 1))

    def is_covered(self, day: date) -> bool:
        """Whether ``day``'s official schedule is known. A spec without coverage makes no claim: always True."""
        return self.covers is None or day in self.covers

    def provisional(self, a: datetime, b: datetime) -> bool:
        """Whether working time from ``a`` to ``b`` crosses a date whose official schedule is not known: the count
        then rests on the statutory holidays alone, and may move when the year's notice is loaded."""
        first, last = self._local(a, "a")[0], self._local(b, "b")[0]
        return not (self.is_covered(first) and self.is_covered(last))

    @property
    def interval_text(self) -> str:
        return ", ".join(f"{i.start:%H:%M}-{i.end:%H:%M}" for i in self.working_hours)

    # -- prefix function -----------------------------------------------------------------------------------
    def _nominal(self, n: int) -> int:
        weeks, rest = divmod(n, 7)
        return weeks * self._week_us + self._week_prefix[rest]

    def _cum(self, n: int) -> int:
        """Working µs from the epoch to the start of day n (days since the epoch); negative before it."""
        return self._nominal(n) + self._adj_prefix[bisect_left(self._special, n)]

    def _nominal_inverse(self, y: int) -> int:
        """Greatest n with _nominal(n) < y."""
        weeks, rest = divmod(y - 1, self._week_us)
        return weeks * 7 + bisect_right(self._week_prefix, rest) - 1

    def _locate(self, x: int) -> int:
        """The day n with cum(n) < x <= cum(n + 1): the working day on which position x falls."""
        k = bisect_left(self._special_cum, x)  # special dates 0..k-1 start before x, k.. at or after it
        if k and self._cum(self._special[k - 1] + 1) >= x:
            return self._special[k - 1]
        # Otherwise the day lies strictly between special dates k-1 and k, where the adjustment is constant.
        return self._nominal_inverse(x - self._adj_prefix[k])

    @staticmethod
    def _date(n: int) -> date:
        return date.fromordinal(n + _EPOCH_ORD)

    # -- instants ------------------------------------------------------------------------------------------
    def _local(self, moment: datetime, what: str) -> tuple[date, int, datetime]:
        """Local date, wall time (µs) and the UTC instant of an aware ``moment``."""
        utc = to_utc(moment, what)
        local = utc.astimezone(self.zone)
        wall = ((local.hour * 60 + local.minute) * 60 + local.second) * _US + local.microsecond
        return local.date(), wall, utc

    def _wall(self, day: date, wall: int, fold: int = 0) -> datetime:
        seconds, micro = divmod(wall, _US)  # wall < 24 h: interval bounds are times of day
        minutes, seconds = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        return datetime(day.year, day.month, day.day, hours, minutes, seconds, micro, tzinfo=self.zone, fold=fold)

    def _resolve(self, day: date, wall: int) -> datetime:
        """UTC instant of a wall time: its first occurrence when repeated (autumn fold); when skipped (spring
        gap) it moves forward to the transition, the first instant after the gap."""
        first, second = self._wall(day, wall, 0).astimezone(UTC), self._wall(day, wall, 1).astimezone(UTC)
        if first <= second:
            return first
        # A gap: the offset changes once in (second, first]; tz transitions fall on whole seconds, so bisect those.
        before = second.astimezone(self.zone).utcoffset()
        lo, hi = (second - _UTC_EPOCH) // _SECOND, -((_UTC_EPOCH - first) // _SECOND)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if (_UTC_EPOCH + mid * _SECOND).astimezone(self.zone).utcoffset() == before:
                lo = mid
            else:
                hi = mid
        return _UTC_EPOCH + hi * _SECOND

    def _bounds(self, day: date) -> tuple[tuple[datetime, datetime], ...] | None:
        """None when the UTC offset is constant over the day's working span (then wall-clock arithmetic is exact:
        every day in practice); otherwise each interval's UTC bounds. Memoised per date (pure, deterministic)."""
        n = day.toordinal()
        memo = self._bounds_memo.get(n, _UNSET)
        if memo is not _UNSET:
            return memo  # type: ignore[return-value]
        edges = (self._intervals[0][0], self._intervals[-1][1])
        offsets = {self._wall(day, wall, fold).utcoffset() for wall in edges for fold in (0, 1)}
        bounds = None
        if len(offsets) > 1:
            bounds = tuple((self._resolve(day, s), self._resolve(day, e)) for s, e, _ in self._intervals)
        if len(self._bounds_memo) > 4096:
            self._bounds_memo.clear()
        self._bounds_memo[n] = bounds
        return bounds

    def _within(self, day: date, wall: int, moment: datetime) -> int:
        """Working µs of working day ``day`` before UTC ``moment`` (whose wall time is ``wall``). On a day whose working
        span contains a DST transition an interval still counts its wall-clock length: the hour lost in spring is
        credited when the interval ends, the extra hour of an autumn fold at its end goes uncounted."""
        bounds = self._bounds(day)
        done = 0
        for i, (start, end, before) in enumerate(self._intervals):
            if bounds is None:
                if wall <= start:
                    break
                done = before + min(wall, end) - start
            else:
                lo, hi = bounds[i]
                if moment <= lo:
                    break
                length = end - start
                done = before + (length if moment >= hi else min((moment - lo) // _MICRO, length))
        return done

    def _position(self, moment: datetime, what: str) -> int:
        day, wall, utc = self._local(moment, what)
        n = day.toordinal() - _EPOCH_ORD
        return self._cum(n) + (self._within(day, wall, utc) if self.is_working_day(day) else 0)

    def _at(self, day: date, i: int, offset: int) -> datetime:
        """The instant ``offset`` working µs into interval i of ``day`` (0 <= offset <= its length), in UTC."""
        bounds = self._bounds(day)
        if bounds is None:
            return self._wall(day, self._intervals[i][0] + offset).astimezone(UTC)
        lo, hi = bounds[i]
        return min(lo + timedelta(microseconds=offset), hi)

    def _opening(self, day: date, moment: datetime | None, wall: int = 0) -> datetime | None:
        """First working instant of working day ``day`` at or after UTC ``moment`` (None: from the day's start)."""
        bounds = self._bounds(day)
        for i, (start, end, _) in enumerate(self._intervals):
            if bounds is None:
                if moment is None or wall < start:
                    return self._at(day, i, 0)
                if wall < end:
                    return moment
            else:
                lo, hi = bounds[i]
                if lo < hi and (moment is None or moment < hi):
                    return lo if moment is None or moment < lo else moment
        return None

    def add(self, start: datetime, seconds: float) -> datetime:
        """Instant when ``seconds`` working seconds have elapsed from ``start`` (an interval end, not the next
        opening, when it lands exactly on one)."""
        amount = _seconds_to_us(seconds)
        if amount == 0:
            return self.next_opening(start)
        x = self._position(start, "start") + amount
        n = self._locate(x)
        rest = x - self._cum(n)  # in (0, day]
        for i, (begin, end, before) in enumerate(self._intervals):
            if rest <= before + end - begin:
                return self._at(self._date(n), i, rest - before)
        raise AssertionError("position beyond the working day")  # unreachable: _locate found a working day

    def between(self, a: datetime, b: datetime) -> float:
        """Working seconds in [a, b); 0 if b <= a."""
        if to_utc(b, "b") <= to_utc(a, "a"):
            return 0.0
        return max(0, self._position(b, "b") - self._position(a, "a")) / _US

    def is_working_time(self, moment: datetime) -> bool:
        day, wall, utc = self._local(moment, "moment")
        return self.is_working_day(day) and self._opening(day, utc, wall) == utc

    def next_opening(self, moment: datetime) -> datetime:
        """``moment`` itself (in UTC) if it is working time, else the start of the next working interval."""
        day, wall, utc = self._local(moment, "moment")
        opening = self._opening(day, utc, wall) if self.is_working_day(day) else None
        while opening is None:  # at most a step or two: a working day without a usable interval is a DST oddity
            day = self.next_working_day(day)
            opening = self._opening(day, None)
        return opening


_CACHE: dict[tuple[str, str], Calendar] = {}
_ALWAYS_OPEN = AlwaysOpen()


def calendar_for(spec: CalendarSpec, kind: str) -> Calendar:
    """The calendar a clock counts in, cached per (spec, kind). The spec holds lists, so key by its JSON."""
    if kind == "24x7":
        return _ALWAYS_OPEN
    if kind != "business":
        raise ValueError(f"unknown calendar kind {kind!r}: expected '24x7' or 'business'")
    key = (spec.model_dump_json(), kind)
    calendar = _CACHE.get(key)
    if calendar is None:
        calendar = _CACHE[key] = BusinessCalendar(spec)
    return calendar


def business_calendar(spec: CalendarSpec) -> BusinessCalendar:
    calendar = calendar_for(spec, "business")
    assert isinstance(calendar, BusinessCalendar)
    return calendar


def target_seconds(clock: ClockSpec, calendar: Calendar) -> float:
    """Seconds to count for a clock's target. On a business calendar a day is one working day and a week is one
    working week (SEEDS §4.4: "3 working days"); s/m/h are the same on both calendars."""
    amount, unit = parse_duration(clock.target)
    if isinstance(calendar, BusinessCalendar) and unit in ("d", "w"):
        return amount * (calendar.day_seconds if unit == "d" else calendar.week_seconds)
    return float(duration_seconds(clock.target))
