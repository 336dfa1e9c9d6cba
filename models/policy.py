"""Policy pack schema: one pack per manual, loaded from YAML and validated here.

A pack is data: time zone and business calendar, channels, classification rules, service classes with every
clock's target, escalation ladder, extension cap, confirmation and revisit windows, retention. Nothing in code
hard-codes a time limit; the manuals disagree (SEEDS.md §4.4).
"""

from __future__ import annotations

import re
from datetime import date, time
from itertools import pairwise
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from models.intake import Channel, RequestType

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

ClockName = Literal["first_response", "handling", "closure", "revisit"]
CLOCK_NAMES: tuple[str, ...] = ("first_response", "handling", "closure", "revisit")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_duration(text: str) -> tuple[float, str]:
    """'10m' -> (10, 'm'). Units: s, m, h, d (day), w (week)."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"bad duration {text!r}: expected a number and a unit s/m/h/d/w, e.g. '24h' or '3d'")
    amount = float(match.group(1))
    if amount <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return amount, match.group(2)


def duration_seconds(text: str) -> int:
    """Calendar (24x7) seconds of a duration string."""
    amount, unit = parse_duration(text)
    return int(amount * _UNIT_SECONDS[unit])


def _checked_duration(text: str) -> str:
    parse_duration(text)
    return text


# A duration string ('10m', '24h', '3d'), checked when the pack loads.
Duration = Annotated[str, AfterValidator(_checked_duration)]


class WorkingInterval(_Strict):
    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> WorkingInterval:
        if self.end <= self.start:
            raise ValueError(f"working interval {self.start}-{self.end} ends before it starts")
        return self


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


def _iso_weekdays(value: list[int]) -> list[int]:
    if not value or any(d < 1 or d > 7 for d in value) or len(set(value)) != len(value):
        raise ValueError("weekdays must be distinct ISO weekday numbers 1..7")
    return sorted(value)


TimeZone = Annotated[str, AfterValidator(_known_zone)]
Weekdays = Annotated[list[int], AfterValidator(_iso_weekdays),
                     Field(description="ISO weekdays that work: 1=Mon … 7=Sun")]


class CalendarCoverage(_Strict):
    """The dates whose official schedule (holidays and 调休) a calendar knows; outside them it is provisional."""

    first: date
    last: date

    @model_validator(mode="after")
    def _ordered(self) -> CalendarCoverage:
        if self.last < self.first:
            raise ValueError(f"coverage {self.first}..{self.last} ends before it starts")
        return self

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last


class CalendarSpec(_Strict):
    """Business calendar in the pack's time zone (SEEDS §4.4: weekends, holidays, 调休 make-up days).

    A pack gives ``ref`` (a jurisdiction calendar of policies/calendars/, see JurisdictionCalendar) and its own
    working hours and closures; the loader fills in the rest, so the spec a workflow pins is complete and pure data.
    A spec without ``covers`` (a pack listing its own holidays, or one pinned before calendars had coverage) makes
    no claim about what it knows: its deadlines are never marked provisional."""

    timezone: TimeZone = "Asia/Shanghai"
    working_hours: list[WorkingInterval] = Field(min_length=1)
    weekdays: Weekdays = [1, 2, 3, 4, 5]
    holidays: list[date] = Field(default_factory=list, description="days off although their weekday works")
    makeup_days: list[date] = Field(default_factory=list,
                                    description="调休: days that work although their weekday is off")
    closures: list[date] = Field(default_factory=list, description="the pack's own extra days off, on top of the "
                                 "calendar's; a closure wins over a make-up day")
    ref: str | None = Field(default=None, description="jurisdiction calendar id (policies/calendars/<ref>.yaml)")
    version: int | None = Field(default=None, ge=1, description="that calendar's data version (reevaluate compares)")
    covers: CalendarCoverage | None = Field(default=None, description="dates with a known official schedule; "
                                            "outside them only statutory holidays apply and deadlines are provisional")
    source: str = ""

    @model_validator(mode="after")
    def _no_overlap(self) -> CalendarSpec:
        ordered = sorted(self.working_hours, key=lambda i: i.start)
        for before, after in pairwise(ordered):
            if after.start < before.end:
                raise ValueError(f"working intervals {before.start}-{before.end} and {after.start}-{after.end} overlap")
        both = set(self.holidays) & set(self.makeup_days)
        if both:
            raise ValueError(f"{sorted(both)[0]} is both a holiday and a make-up working day")
        return self

    @property
    def key(self) -> str | None:
        """'cn@v2': which jurisdiction data the spec was resolved from (None for a pack's own list)."""
        return f"{self.ref}@v{self.version}" if self.ref else None


class HolidayBreak(_Strict):
    """One break as a State Council notice states it (SEEDS §4.4): days off from first to last, weekends inside
    included, and the 调休 make-up working days that pay for them."""

    name: str = Field(min_length=1)
    days: list[date] = Field(min_length=1, max_length=2, description="[first, last] day off, or [day]")
    work: list[date] = Field(default_factory=list, description="调休: make-up working days of this break")

    @model_validator(mode="after")
    def _ordered(self) -> HolidayBreak:
        if self.days[-1] < self.days[0]:
            raise ValueError(f"break {self.name!r} ends ({self.days[-1]}) before it starts ({self.days[0]})")
        inside = [d for d in self.work if self.days[0] <= d <= self.days[-1]]
        if inside:
            raise ValueError(f"break {self.name!r}: make-up day {inside[0]} lies inside the break")
        return self

    def days_off(self) -> list[date]:
        first, last = self.days[0], self.days[-1]
        return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]


class CalendarYear(_Strict):
    """One year of a jurisdiction calendar: the official schedule, or (official: false) the statutory holidays
    alone, provisional until the year's notice is published."""

    official: bool
    source: str = Field(min_length=1, description="the notice, or how the statutory days were computed")
    breaks: list[HolidayBreak] = Field(min_length=1)

    @model_validator(mode="after")
    def _no_guessed_makeup_days(self) -> CalendarYear:
        if not self.official and any(b.work for b in self.breaks):
            raise ValueError("a provisional year has no make-up days: 调休 is known only from the official notice")
        return self


class JurisdictionCalendar(_Strict):
    """policies/calendars/<id>.yaml: one jurisdiction's holidays and 调休, kept once and referenced by the packs
    (``calendar: {ref: cn, ...}``). Official years must be consecutive; they are what the calendar covers."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    version: int = Field(ge=1, description="raise it on every change of dates: open requests recompute on it")
    timezone: TimeZone
    weekdays: Weekdays = [1, 2, 3, 4, 5]
    source: str = ""
    years: dict[int, CalendarYear] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> JurisdictionCalendar:
        official = sorted(y for y, data in self.years.items() if data.official)
        if not official:
            raise ValueError("no official year: the calendar would cover nothing")
        if official != list(range(official[0], official[-1] + 1)):
            raise ValueError(f"official years {official} have a gap: coverage must be one run of years")
        both = set(self.holidays()) & set(self.makeup_days())
        if both:
            raise ValueError(f"{sorted(both)[0]} is both a day off and a make-up working day")
        return self

    @property
    def covers(self) -> CalendarCoverage:
        official = [y for y, data in self.years.items() if data.official]
        return CalendarCoverage(first=date(min(official), 1, 1), last=date(max(official), 12, 31))

    @property
    def key(self) -> str:
        return f"{self.id}@v{self.version}"

    def holidays(self) -> list[date]:
        return sorted({d for data in self.years.values() for b in data.breaks for d in b.days_off()})

    def makeup_days(self) -> list[date]:
        return sorted({d for data in self.years.values() for b in data.breaks for d in b.work})

    def spec_fields(self) -> dict[str, object]:
        """What the calendar gives a pack's CalendarSpec; the pack adds working hours and closures."""
        return {"timezone": self.timezone, "weekdays": self.weekdays, "holidays": self.holidays(),
                "makeup_days": self.makeup_days(), "ref": self.id, "version": self.version,
                "covers": self.covers, "source": self.source}


class ClockSpec(_Strict):
    """One SLA clock of a service class."""

    target: Duration = Field(description="duration: '10m', '24h', '3d'; with calendar=business a day is one working "
                             "day")
    calendar: Literal["24x7", "business"] = "24x7"
    warn_at: list[float] = Field(default_factory=lambda: [0.5, 0.8], description="fractions of the target (催办)")
    warn_in_business_hours: bool = False
    pausable: bool = True
    on_reclassify: Literal["carry_over", "restart"] = "carry_over"
    source: str = Field(default="", description="manual and section, or 'project default'")

    @field_validator("warn_at")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        if any(not 0 < f < 1 for f in value):
            raise ValueError("warn_at fractions must lie strictly between 0 and 1")
        return sorted(set(value))


class ServiceClass(_Strict):
    """Priority / service class: 普通 normal, 紧急 urgent, 复杂 complex (002 §2.1.3) and the like."""

    label: str
    clocks: dict[ClockName, ClockSpec]
    retention_years: int = Field(ge=1)
    rank: int = Field(default=0, description="higher handles first")


class ChannelOverride(_Strict):
    """Per-channel limits (001 Ch3: core, auxiliary and supplementary channels each have their own)."""

    clocks: dict[ClockName, ClockSpec] = Field(min_length=1)
    classes: list[str] | None = Field(default=None, description="only these service classes (default: all)")
    source: str = ""


class Condition(_Strict):
    """All given fields must hold for a rule to match."""

    request_type: list[RequestType] | None = None
    type_hint: list[RequestType] | None = None
    category: list[str] | None = None
    channel: list[Channel] | None = None
    keywords: list[str] | None = Field(default=None, description="any keyword in the description")
    amount_at_least: float | None = None
    funds_at_risk: bool | None = None
    security: bool | None = None
    urgency: list[str] | None = None


class Outcome(_Strict):
    request_type: RequestType | None = None
    category: str | None = None
    priority: str | None = None
    complaint_grade: Literal["major", "ordinary"] | None = None
    department: str | None = None
    joint_handling: str | None = Field(default=None, description="department brought in at once (000 §2.2)")
    requires_check: bool | None = Field(default=None, description="checker's acceptance before closure (001 §4.2)")


class Rule(_Strict):
    name: str
    when: Condition
    then: Outcome
    source: str = ""


class Classification(_Strict):
    default_type: RequestType = "inquiry"
    default_priority: str
    type_priority: dict[RequestType, str] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list, description="every matching rule applies, in order")


class EscalationLevel(_Strict):
    level: int = Field(ge=0)
    role: str = Field(min_length=1)
    title: str = Field(min_length=1)
    ack_within: Duration | None = Field(default=None, description="escalated owner must acknowledge within this")


class ComplaintGrade(_Strict):
    label: str
    start_level: int = Field(ge=0)
    source: str = ""


class Extensions(_Strict):
    max_count: int = Field(ge=0)
    max_each: Duration = "24h"
    requires_customer_notice: bool = True
    source: str = ""


class Closure(_Strict):
    confirmation_window: Duration
    # 002 §2.2.1: closed only after the customer confirms. The wait is the customer's time, not the handler's
    # (000 §5.5 attribution): the pausable clocks stop while the result awaits confirmation (issue 15).
    pause_while_confirming: bool = True
    source: str = ""


class Revisit(_Strict):
    delay: Duration
    window: Duration
    scale_max: int = 100
    reopen_below: int = Field(ge=0)
    reopen_cap: int = Field(ge=0)
    source: str = ""


class TransferRule(_Strict):
    """003 §3.3 transfer to another department: the complaint owner stays; the handling clock keeps running (the
    customer's wait does not restart) unless the pack gives the receiving department a fresh handling limit."""

    handling_clock: Literal["keeps_running", "restarts"] = "keeps_running"
    source: str = ""


class Assignment(_Strict):
    """Automatic dispatch of the work order (001 §4.1-4.2, 003 §1.1 "assigned automatically", 003 §2.2)."""

    strategy: Literal["balanced", "round_robin", "nearest"] = Field(
        default="balanced", description="balanced: skill match, then least loaded; round_robin: in turn within the "
        "team; nearest: the customer's region first, then the most capable (001 §4.1 就近、最能)")
    within: Duration = Field(default="2h",
                             description="the work order is assigned (and accepted) within this (003 §1.1)")
    accept_within: Duration = Field(default="15m", description="return timer: an assignee who has not accepted loses "
                                    "the case to the next candidate")
    retry_every: Duration = Field(default="5m", description="when every candidate is at capacity, try again after this")
    teams: dict[str, str] = Field(default_factory=dict, description="department -> team that takes its cases")
    source: str = ""


class IncidentLevel(_Strict):
    """One incident level (SEEDS §11: 000 §7.2, 001 Ch6): who is told, how fast, how often."""

    label: str
    report_to: list[str] = Field(min_length=1, description="reporting chain: roles told at declaration")
    report_within: Duration = Field(description="the chain is told within this of detection")
    update_every: Duration = Field(description="the lead posts progress at least this often; a reminder goes otherwise")


class AutoIncident(_Strict):
    """Raise an incident when complaints of one category from many customers cross a threshold (000 §7.1)."""

    request_types: list[RequestType] = Field(default=["complaint"])
    customers: int = Field(ge=2, description="distinct customers within the window")
    window: Duration = "1h"
    level: int = Field(default=3, ge=1, le=4)
    lead: str = Field(default="duty-supervisor", description="lead named until a person takes over")


class Incidents(_Strict):
    """突发事件 (SEEDS §11): four levels, detection, review (post-mortem) deadline."""

    levels: dict[int, IncidentLevel]
    auto: AutoIncident | None = None
    review_within: Duration = "3d"
    source: str = ""

    @model_validator(mode="after")
    def _four_levels(self) -> Incidents:
        if sorted(self.levels) != [1, 2, 3, 4]:
            raise ValueError("incidents.levels must define levels 1, 2, 3 and 4 (一级 … 四级)")
        return self


class PolicyPack(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: int = Field(ge=1)
    title: str
    manual: str = Field(description="manual ids, e.g. '002'")
    calendar: CalendarSpec
    channels: list[Channel] = Field(min_length=1)
    request_types: list[RequestType] = Field(min_length=1)
    categories: dict[RequestType, list[str]] = Field(default_factory=dict)
    classes: dict[str, ServiceClass] = Field(min_length=1)
    classification: Classification
    complaint_grades: dict[Literal["major", "ordinary"], ComplaintGrade]
    escalation: list[EscalationLevel] = Field(min_length=1)
    extensions: Extensions
    closure: Closure
    revisit: Revisit
    languages: list[Literal["zh-CN", "en"]] = Field(default=["zh-CN", "en"])
    channel_overrides: dict[Channel, ChannelOverride] = Field(default_factory=dict)
    assignment: Assignment | None = Field(default=None, description="absent: agents pick cases from the queue")
    transfer: TransferRule = Field(default_factory=TransferRule)
    incidents: Incidents | None = None
    continue_as_new_after: int = Field(
        default=10_000, ge=50, description="history events after which a request waiting in handling continues as "
        "a new run with its state (Temporal's limit is 51,200 events per run)")

    @model_validator(mode="after")
    def _consistent(self) -> PolicyPack:
        levels = [lvl.level for lvl in self.escalation]
        if levels != list(range(len(levels))):
            raise ValueError("escalation levels must be numbered 0, 1, 2 … in order")
        names = set(self.classes)
        wanted = [self.classification.default_priority, *self.classification.type_priority.values()]
        wanted += [r.then.priority for r in self.classification.rules if r.then.priority]
        for name in wanted:
            if name not in names:
                raise ValueError(f"priority {name!r} is not one of the classes {sorted(names)}")
        for cls_name, cls in self.classes.items():
            missing = {"first_response", "handling", "closure"} - set(cls.clocks)
            if missing:
                raise ValueError(f"class {cls_name!r} lacks clocks {sorted(missing)}")
        for channel, override in self.channel_overrides.items():
            if channel not in self.channels:
                raise ValueError(f"channel_overrides: {channel} is not one of the pack's channels")
            for name in override.classes or []:
                if name not in names:
                    raise ValueError(f"channel_overrides.{channel}.classes: {name!r} is not one of {sorted(names)}")
        for grade in self.complaint_grades.values():
            if grade.start_level >= len(levels):
                raise ValueError(f"complaint grade {grade.label!r} starts at level {grade.start_level}, "
                                 "beyond the ladder")
        return self

    def clocks_for(self, service_class: str, channel: str) -> dict[str, ClockSpec]:
        """The class's clocks, with the channel's overrides applied."""
        clocks: dict[str, ClockSpec] = dict(self.classes[service_class].clocks)
        override = self.channel_overrides.get(channel)  # type: ignore[call-overload]
        if override and (override.classes is None or service_class in override.classes):
            clocks.update(override.clocks)
        return clocks

    @property
    def key(self) -> str:
        return f"{self.id}@v{self.version}"
