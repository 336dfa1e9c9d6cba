"""`kefu sla`: explain each clock's deadline for a service class and a start time. Pure.

The deadlines come from the same ledger and calendar the workflow uses (domain.ledger, domain.calendar); this module
only narrates them: which days count, which are skipped (weekends, holidays) and which are make-up days (调休,
SEEDS §4.4), and whether the deadline is provisional because it reaches past the calendar's official schedules.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from domain.calendar import BusinessCalendar, business_calendar
from domain.ledger import SlaClock
from models.policy import CLOCK_NAMES, ClockSpec, PolicyPack, parse_duration

_MAX_LISTED_DAYS = 400  # beyond this span the day-by-day lines are summarised
_UNIT_WORDS = {"s": "s", "m": "min", "h": "h", "d": "d", "w": "w"}


def _local_text(moment: datetime, zone: tzinfo) -> str:
    local = moment.astimezone(zone)
    clock = f"{local:%H:%M:%S}" if local.second or local.microsecond else f"{local:%H:%M}"
    return f"{local:%Y-%m-%d} {clock} {local.isoformat()[-6:]}"


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _num(value: float) -> str:
    """81000.0 -> '81000', 7.5 -> '7.5', never an exponent."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _human(seconds: float) -> str:
    if seconds >= 3600:
        return f"{_num(round(seconds / 3600, 2))} h"
    if seconds >= 60:
        return f"{_num(round(seconds / 60, 2))} min"
    return f"{_num(seconds)} s"


def _range_text(first: date, last: date) -> str:
    return f"{first}" if first == last else f"{first}..{last}"


def _target_line(spec: ClockSpec, clock: SlaClock) -> str:
    amount, unit = parse_duration(spec.target)
    n, seconds, word = _num(amount), _num(clock.target), _UNIT_WORDS[unit]
    if isinstance(clock.calendar, BusinessCalendar):
        day = _num(clock.calendar.day_seconds)
        if unit == "d":
            return f"{n} working day(s) = {n} × {day} s = {seconds} working seconds"
        if unit == "w":
            days = _num(clock.calendar.week_seconds / clock.calendar.day_seconds)
            return f"{n} working week(s) = {n} × {days} working days × {day} s = {seconds} working seconds"
        return f"{n} {word} = {seconds} working seconds, counted only in working hours"
    if unit in ("d", "w"):
        return f"{n} {word} = {n} × {86400 if unit == 'd' else 7 * 86400} s = {seconds} s of absolute time"
    return f"{n} {word} = {seconds} s of absolute time"


def _start_lines(cal: BusinessCalendar, start: datetime) -> list[str]:
    local = start.astimezone(cal.zone)
    kind = cal.day_kind(local.date())
    what = {
        "working": "a working day",
        "makeup": "a make-up working day (调休)",
        "holiday": "a holiday",
        "weekend": "a weekend day",
    }[kind]
    line = f"start {_local_text(start, cal.zone)} ({local:%A}) is {what}"
    if cal.is_working_time(start):
        return [f"{line}, inside working hours {cal.interval_text}"]
    opening = cal.next_opening(start)
    where = "outside working hours " + cal.interval_text if kind in ("working", "makeup") else "not counted"
    return [f"{line}, {where}: counting begins at the next opening {_local_text(opening, cal.zone)}"]


def _provisional_line(cal: BusinessCalendar, start: datetime, end: datetime) -> str:
    """Why a deadline is provisional: the days it counts past the calendar's official schedules (issue 16)."""
    covers = cal.covers
    assert covers is not None  # only a calendar with coverage is ever provisional
    first, last = start.astimezone(cal.zone).date(), end.astimezone(cal.zone).date()
    if last > covers.last:
        outside, year = _range_text(max(first, covers.last + timedelta(days=1)), last), last.year
    else:
        outside, year = _range_text(first, min(last, covers.first - timedelta(days=1))), first.year
    return (f"provisional: {outside} lies outside the official schedules of calendar {cal.spec.key} "
            f"({covers.first}..{covers.last}); those days count statutory holidays only, no 调休, and the deadline "
            f"may move when the {year} schedule is loaded")


def _day_lines(cal: BusinessCalendar, start: datetime, end: datetime) -> list[str]:
    """Day by day from start to end: counted working time, skipped weekends and holidays, make-up days."""
    zone = cal.zone
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    if (last - first).days > _MAX_LISTED_DAYS:
        return [f"spans {(last - first).days} days from {first} to {last}; too long to list day by day"]
    # Segments of consecutive days: (label, first, last, seconds); full working days merge, partial ones stand alone.
    segments: list[list[Any]] = []
    day = first
    while day <= last:
        kind = cal.day_kind(day)
        if kind in ("holiday", "weekend"):
            label, seconds = kind, 0.0
        else:
            midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
            lo, hi = max(start, midnight), min(end, midnight + timedelta(days=1))
            seconds = cal.between(lo, hi)
            label = "makeup" if kind == "makeup" else ("full" if seconds == cal.day_seconds else "partial")
        if kind == "holiday" and not cal.is_covered(day):
            label = "statutory"  # a holiday of the provisional years: statutory days and 补假 only
        if segments and label in ("holiday", "statutory", "weekend", "full") and segments[-1][0] == label:
            segments[-1][2] = day
            segments[-1][3] += seconds
        else:
            segments.append([label, day, day, seconds])
        day += timedelta(days=1)
    lines = []
    for label, lo_day, hi_day, seconds in segments:
        span = _range_text(lo_day, hi_day)
        if label == "holiday":
            lines.append(f"skips holidays {span}")
        elif label == "statutory":
            lines.append(f"skips statutory holidays {span} (provisional)")
        elif label == "weekend":
            lines.append(f"skips weekend {span}")
        elif label == "makeup":
            counts = f": counts {_num(seconds)} s" if seconds else ""
            lines.append(f"{span} ({lo_day:%A}) is a make-up working day (调休){counts}")
        elif label == "full":
            days = (hi_day - lo_day).days + 1
            lines.append(f"counts {days} full working day(s) {span}: {_num(seconds)} s")
        elif seconds:
            lines.append(f"counts {_num(seconds)} s ({_human(seconds)}) on {span} ({lo_day:%A})")
    return lines


def _clock_entry(pack: PolicyPack, name: str, spec: ClockSpec, start: datetime) -> dict[str, Any]:
    clock = SlaClock.start(name, spec, pack.calendar, start)
    business = clock.business
    zone = business.zone
    deadline = clock.deadline(start)
    provisional = clock.calendar.provisional(start, deadline)
    lines: list[str] = []
    if isinstance(clock.calendar, BusinessCalendar):
        lines += _start_lines(clock.calendar, start)
        lines.append(_target_line(spec, clock))
        lines += _day_lines(clock.calendar, start, deadline)
        if provisional:
            lines.append(_provisional_line(clock.calendar, start, deadline))
    else:
        lines.append("24x7 clock: absolute time, no working hours, weekends or holidays")
        lines.append(_target_line(spec, clock))
        if start.astimezone(zone).utcoffset() != deadline.astimezone(zone).utcoffset():
            zone_name = business.spec.timezone
            lines.append(f"the UTC offset of {zone_name} changes by the deadline (DST); absolute time is unaffected")
        if not business.is_working_time(deadline):
            lines.append("the deadline falls outside business hours; a 24x7 clock keeps running")
    lines.append(f"deadline {_local_text(deadline, zone)} ({deadline.astimezone(zone):%A}) = {_iso_utc(deadline)}")
    warnings = []
    for fraction in spec.warn_at:
        at = clock.warning_at(fraction, start)
        warnings.append({"fraction": fraction, "at_utc": _iso_utc(at), "at_local": at.astimezone(zone).isoformat()})
    if spec.warn_in_business_hours:
        lines.append("warnings are moved to the next business opening when they fall outside working hours")
    return {
        "clock": name,
        "target": spec.target,
        "calendar": clock.calendar.kind,
        "target_seconds": clock.target,
        "deadline_utc": _iso_utc(deadline),
        "deadline_local": deadline.astimezone(zone).isoformat(),
        "provisional": provisional,
        "warnings": warnings,
        "source": spec.source,
        "reasoning": lines,
    }


def explain(pack: PolicyPack, service_class: str, start: datetime) -> dict[str, Any]:
    """Every clock of ``service_class`` started at ``start``. A naive ``start`` is read as wall time in the
    pack's zone (convenient for the CLI)."""
    if service_class not in pack.classes:
        raise ValueError(f"unknown service class {service_class!r}: {pack.key} has {', '.join(sorted(pack.classes))}")
    business = business_calendar(pack.calendar)
    zone = business.zone
    if start.tzinfo is None:
        start = start.replace(tzinfo=zone)
    cls = pack.classes[service_class]
    return {
        "policy": pack.key,
        "class": service_class,
        "label": cls.label,
        "timezone": pack.calendar.timezone,
        "calendar": {"key": pack.calendar.key,
                     "covers": business.covers.model_dump(mode="json") if business.covers else None},
        "start_utc": _iso_utc(start),
        "start_local": start.astimezone(zone).isoformat(),
        "clocks": [_clock_entry(pack, name, cls.clocks[name], start) for name in CLOCK_NAMES if name in cls.clocks],
    }


def render_text(result: dict[str, Any]) -> str:
    out = [
        f"SLA for class {result['class']} ({result['label']}) in {result['policy']},"
        f" start {result['start_local']} ({result['timezone']})",
    ]
    for entry in result["clocks"]:
        out.append("")
        out.append(
            f"{entry['clock']}: {entry['target']} ({entry['calendar']}, {_num(entry['target_seconds'])} s)"
            f" → deadline {entry['deadline_local']} = {entry['deadline_utc']}"
            + (" (provisional)" if entry["provisional"] else "")
        )
        if entry["source"]:
            out.append(f"  source: {entry['source']}")
        out += [f"  - {line}" for line in entry["reasoning"]]
        for warning in entry["warnings"]:
            out.append(f"  warn at {warning['fraction']:.0%}: {warning['at_local']}")
    return "\n".join(out) + "\n"
