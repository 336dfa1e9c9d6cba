"""Working-time calendars (SEEDS §4.4): 24x7 exactness, business days, holidays, make-up days (调休), DST."""

from __future__ import annotations

import time as timer
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.calendar_bench import cn_2026_spec
from domain.calendar import AlwaysOpen, BusinessCalendar, calendar_for, target_seconds
from models.policy import CalendarCoverage, CalendarSpec, ClockSpec, WorkingInterval

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
CN = BusinessCalendar(cn_2026_spec())


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)  # type: ignore[misc]


NINE_TO_FIVE = (("09:00", "17:00"),)
CN_HOURS = (("09:00", "12:00"), ("13:30", "18:00"))


def spec(zone: str = "Asia/Shanghai", hours: tuple[tuple[str, str], ...] = NINE_TO_FIVE, **kw: object) -> CalendarSpec:
    intervals = [WorkingInterval.model_validate({"start": a, "end": b}) for a, b in hours]
    return CalendarSpec.model_validate({"timezone": zone, "working_hours": intervals, **kw})


# -- reference: a naive day-by-day walk, trusted because it is obvious ---------------------------------------
def _ref_intervals(cal: BusinessCalendar, day: date) -> list[tuple[datetime, datetime]]:
    if not cal.is_working_day(day):
        return []
    return [
        (
            datetime.combine(day, i.start, tzinfo=cal.zone).astimezone(UTC),
            datetime.combine(day, i.end, tzinfo=cal.zone).astimezone(UTC),
        )
        for i in cal.working_hours
    ]


def ref_between(cal: BusinessCalendar, a: datetime, b: datetime) -> float:
    total = 0.0
    day = a.astimezone(cal.zone).date()
    while day <= b.astimezone(cal.zone).date():
        for lo, hi in _ref_intervals(cal, day):
            total += max(0.0, (min(hi, b) - max(lo, a)).total_seconds())
        day += timedelta(days=1)
    return total


def ref_add(cal: BusinessCalendar, start: datetime, seconds: float) -> datetime:
    left = timedelta(seconds=seconds)
    day = start.astimezone(cal.zone).date()
    while True:
        for lo, hi in _ref_intervals(cal, day):
            lo = max(lo, start)
            if hi <= lo:
                continue
            if left <= hi - lo:
                return lo + left
            left -= hi - lo
        day += timedelta(days=1)


# -- 24x7 --------------------------------------------------------------------------------------------------
def test_always_open_is_exact_absolute_time() -> None:
    cal = AlwaysOpen()
    start = sh(2026, 9, 30, 17, 0)
    assert cal.add(start, 86400) == datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
    assert cal.add(start, 86400).tzinfo is UTC
    assert cal.add(start, 0.5) == start + timedelta(milliseconds=500)
    assert cal.between(start, start + timedelta(hours=72)) == 259200
    assert cal.between(start + timedelta(hours=1), start) == 0
    assert cal.is_working_time(sh(2026, 10, 1, 3, 0))
    assert cal.next_opening(start) == start


def test_always_open_ignores_dst() -> None:
    # Berlin springs forward on 2026-03-29: 24 h later is 13:00 CEST, not 12:00 (absolute time, SEEDS §4.1 72 h).
    start = datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN)
    assert AlwaysOpen().add(start, 86400) == datetime(2026, 3, 29, 13, 0, tzinfo=BERLIN)


def test_same_zone_datetimes_are_compared_as_instants() -> None:
    # Python subtracts two datetimes sharing a tzinfo by wall clock; the calendars must not.
    a, b = datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN), datetime(2026, 3, 29, 12, 0, tzinfo=BERLIN)
    assert AlwaysOpen().between(a, b) == 23 * 3600
    night = BusinessCalendar(spec("Europe/Berlin", hours=(("00:00", "06:00"),), weekdays=[7]))
    first, second = (datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=f) for f in (0, 1))
    assert night.between(first, second) == 3600  # one elapsed hour, not 0 (the extra hour goes at 06:00)
    assert night.is_working_time(second)


@pytest.mark.parametrize("cal", [AlwaysOpen(), CN], ids=["24x7", "business"])
def test_naive_datetimes_are_rejected(cal: AlwaysOpen | BusinessCalendar) -> None:
    naive = datetime(2026, 9, 30, 10, 0)
    aware = sh(2026, 9, 30, 10, 0)
    with pytest.raises(ValueError, match="naive"):
        cal.add(naive, 60)
    with pytest.raises(ValueError, match="naive"):
        cal.between(naive, aware)
    with pytest.raises(ValueError, match="naive"):
        cal.between(aware, naive)
    with pytest.raises(ValueError, match="naive"):
        cal.is_working_time(naive)
    with pytest.raises(ValueError, match="naive"):
        cal.next_opening(naive)
    with pytest.raises(ValueError, match="negative"):
        cal.add(aware, -1)


# -- business days -----------------------------------------------------------------------------------------
def test_day_and_week_seconds() -> None:
    assert CN.day_seconds == 27000  # 09:00-12:00 + 13:30-18:00
    assert CN.week_seconds == 5 * 27000


def test_add_within_a_day_lunch_and_interval_end() -> None:
    assert CN.add(sh(2026, 9, 30, 9, 0), 3600) == sh(2026, 9, 30, 10, 0)
    assert CN.add(sh(2026, 9, 30, 11, 0), 3600) == sh(2026, 9, 30, 12, 0)  # exactly the interval end, not 13:30
    assert CN.add(sh(2026, 9, 30, 11, 0), 3601) == sh(2026, 9, 30, 13, 30, 1)
    assert CN.add(sh(2026, 9, 29, 9, 0), 27000) == sh(2026, 9, 29, 18, 0)  # a whole day ends at 18:00
    assert CN.add(sh(2026, 9, 29, 9, 0), 27001) == sh(2026, 9, 30, 9, 0, 1)


def test_add_outside_working_time_starts_at_next_opening() -> None:
    assert CN.add(sh(2026, 9, 29, 7, 0), 60) == sh(2026, 9, 29, 9, 1)
    assert CN.add(sh(2026, 9, 29, 12, 30), 60) == sh(2026, 9, 29, 13, 31)
    assert CN.add(sh(2026, 9, 29, 20, 0), 60) == sh(2026, 9, 30, 9, 1)
    assert CN.add(sh(2026, 9, 29, 20, 0), 0) == sh(2026, 9, 30, 9, 0)  # zero: the next opening
    assert CN.add(sh(2026, 9, 29, 10, 0), 0) == sh(2026, 9, 29, 10, 0)


def test_results_are_utc() -> None:
    assert CN.add(sh(2026, 9, 29, 9, 0), 60).tzinfo is UTC
    assert CN.next_opening(sh(2026, 9, 29, 20, 0)).tzinfo is UTC
    assert CN.next_opening(sh(2026, 9, 29, 10, 0)).tzinfo is UTC


def test_holiday_is_skipped_and_makeup_day_counts() -> None:
    assert not CN.is_working_time(sh(2026, 10, 1, 10, 0))  # National Day
    assert CN.day_kind(date(2026, 10, 3)) == "holiday"
    assert CN.is_working_time(sh(2026, 10, 10, 10, 0))  # Saturday make-up day (调休)
    assert CN.day_kind(date(2026, 10, 10)) == "makeup"
    assert not CN.is_working_time(sh(2026, 10, 11, 10, 0))  # ordinary Sunday
    assert CN.next_opening(sh(2026, 9, 30, 18, 0)) == sh(2026, 10, 8, 9, 0)
    assert CN.between(sh(2026, 9, 30, 17, 0), sh(2026, 10, 8, 10, 0)) == 7200
    # 3 working days from 17:00 the day before National Day: 1 h + Oct 8 + Oct 9 + the make-up Saturday to 17:00.
    assert CN.add(sh(2026, 9, 30, 17, 0), 3 * 27000) == sh(2026, 10, 10, 17, 0)


def test_three_working_days_from_friday_afternoon_before_spring_festival() -> None:
    # Fri 2026-02-13 15:00: 3 h that day, make-up Saturday Feb 14, holidays Feb 15-23, Tue Feb 24 full,
    # Wed Feb 25 09:00-12:00 and 13:30-15:00 (3 + 7.5 + 7.5 + 4.5 h = 22.5 h = 81000 s).
    deadline = CN.add(sh(2026, 2, 13, 15, 0), target_seconds(ClockSpec(target="3d", calendar="business"), CN))
    assert deadline == sh(2026, 2, 25, 15, 0)


def test_three_working_days_from_friday_afternoon_without_makeup() -> None:
    cal = BusinessCalendar(spec(hours=CN_HOURS, holidays=[date(2026, 5, d) for d in range(4, 9)]))
    # Fri 2026-05-01 16:00: 2 h, weekend, holiday week May 4-8, Mon 11 and Tue 12 full (7.5 h each),
    # Wed 13 09:00-12:00 and 13:30-16:00 (2 + 7.5 + 7.5 + 5.5 h = 22.5 h = 81000 s).
    assert cal.add(sh(2026, 5, 1, 16, 0), 81000) == sh(2026, 5, 13, 16, 0)


def test_holidays_on_weekends_and_makeups_on_weekdays_change_nothing() -> None:
    plain = BusinessCalendar(spec())
    noisy = BusinessCalendar(spec(holidays=[date(2026, 10, 3), date(2026, 10, 3)], makeup_days=[date(2026, 10, 5)]))
    start = sh(2026, 9, 28, 10, 0)
    assert noisy.add(start, 40 * 3600) == plain.add(start, 40 * 3600)


def test_between_is_zero_for_reversed_or_closed_time() -> None:
    assert CN.between(sh(2026, 10, 1, 10, 0), sh(2026, 10, 7, 10, 0)) == 0
    assert CN.between(sh(2026, 9, 30, 11, 0), sh(2026, 9, 30, 10, 0)) == 0
    assert CN.between(sh(2026, 9, 30, 12, 0), sh(2026, 9, 30, 13, 30)) == 0


def test_far_spans_are_bounded_work() -> None:
    start = sh(2026, 9, 30, 17, 0)
    began = timer.thread_time()  # this thread's CPU time: a loaded machine's preemption is not the calendar's work
    far = CN.add(start, 1_000_000 * 27000.0)  # a million working days: a day loop would take seconds
    assert timer.thread_time() - began < 0.25
    assert far.year > 5000
    assert CN.between(start, far) == 1_000_000 * 27000


def test_dates_before_the_internal_epoch() -> None:
    cal = BusinessCalendar(spec(holidays=[date(1999, 12, 31)]))
    start = datetime(1999, 12, 30, 16, 0, tzinfo=SH)
    assert cal.add(start, 2 * 3600) == datetime(2000, 1, 3, 10, 0, tzinfo=SH)  # Fri Dec 31 is a holiday
    assert cal.between(start, datetime(2000, 1, 3, 10, 0, tzinfo=SH)) == 7200


# -- DST (wall-clock intervals) ----------------------------------------------------------------------------
def test_business_hours_follow_wall_clock_across_spring_forward() -> None:
    cal = BusinessCalendar(spec("Europe/Berlin"))
    start = datetime(2026, 3, 27, 13, 0, tzinfo=BERLIN)  # Friday, CET (+01:00)
    deadline = cal.add(start, 8 * 3600)
    assert deadline == datetime(2026, 3, 30, 13, 0, tzinfo=BERLIN)  # Monday, CEST (+02:00)
    assert deadline == datetime(2026, 3, 30, 11, 0, tzinfo=UTC)
    assert cal.between(start, deadline) == 8 * 3600


def test_business_hours_follow_wall_clock_across_fall_back() -> None:
    cal = BusinessCalendar(spec("America/New_York"))
    start = datetime(2026, 10, 30, 15, 0, tzinfo=NEW_YORK)  # Friday, EDT (-04:00)
    deadline = cal.add(start, 4 * 3600)
    assert deadline == datetime(2026, 11, 2, 11, 0, tzinfo=NEW_YORK)  # Monday, EST (-05:00)
    assert deadline == datetime(2026, 11, 2, 16, 0, tzinfo=UTC)
    assert cal.next_opening(datetime(2026, 11, 1, 12, 0, tzinfo=NEW_YORK)) == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)


def test_nonexistent_opening_moves_forward_to_the_transition() -> None:
    # Berlin skips 02:00-03:00 on Sunday 2026-03-29: an interval opening at 02:30 opens at 03:00 CEST that day.
    cal = BusinessCalendar(spec("Europe/Berlin", hours=(("02:30", "06:00"),), weekdays=[7]))
    opening = cal.next_opening(datetime(2026, 3, 29, 0, 30, tzinfo=BERLIN))
    assert opening == datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert cal.is_working_time(opening)
    assert not cal.is_working_time(opening - timedelta(microseconds=1))
    # The interval still counts its wall-clock 3.5 h: the lost half hour is credited when it ends.
    assert cal.between(opening, datetime(2026, 3, 29, 6, 0, tzinfo=BERLIN)) == 3.5 * 3600
    assert cal.add(opening, 2 * 3600) == datetime(2026, 3, 29, 5, 0, tzinfo=BERLIN)


def test_repeated_hour_counts_once() -> None:
    # Berlin repeats 02:00-03:00 on Sunday 2026-10-25: 00:00-06:00 still counts 6 h, the extra hour at its end.
    cal = BusinessCalendar(spec("Europe/Berlin", hours=(("00:00", "06:00"),), weekdays=[7]))
    day_start = datetime(2026, 10, 25, 0, 0, tzinfo=BERLIN)
    day_end = datetime(2026, 10, 25, 6, 0, tzinfo=BERLIN)
    assert day_end.astimezone(UTC) - day_start.astimezone(UTC) == timedelta(hours=7)
    assert cal.between(day_start, day_end) == 6 * 3600
    assert cal.add(day_start, 6 * 3600) == datetime(2026, 10, 25, 5, 0, tzinfo=BERLIN)  # 6 h of elapsed time
    second_pass = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=1)
    assert cal.between(day_start, second_pass) == 3.5 * 3600  # measured in elapsed time, never backwards
    assert cal.add(second_pass, 60) > second_pass


# -- closures and coverage (SEEDS §4.4; issue 16: calendars that never silently run out) -------------------------
def test_a_closure_is_a_day_off_even_on_a_makeup_day() -> None:
    cal = BusinessCalendar(cn_2026_spec().model_copy(update={"closures": [date(2026, 10, 10), date(2026, 12, 24)]}))
    assert cal.day_kind(date(2026, 10, 10)) == "holiday" and cal.day_kind(date(2026, 12, 24)) == "holiday"
    assert CN.day_kind(date(2026, 10, 10)) == "makeup"
    assert cal.add(sh(2026, 9, 30, 17, 0), 3 * 27000) == sh(2026, 10, 12, 17, 0)  # the Saturday no longer counts


def test_a_spec_without_coverage_is_never_provisional() -> None:
    assert CN.covers is None and CN.is_covered(date(2031, 1, 1))
    assert not CN.provisional(sh(2026, 12, 31, 15, 0), sh(2027, 1, 5, 15, 0))
    assert not AlwaysOpen().provisional(sh(2026, 12, 31, 15, 0), sh(2027, 1, 5, 15, 0))


def test_a_span_leaving_the_covered_dates_is_provisional() -> None:
    cal = BusinessCalendar(cn_2026_spec().model_copy(
        update={"covers": CalendarCoverage(first=date(2026, 1, 1), last=date(2026, 12, 31))}))
    assert not cal.provisional(sh(2026, 12, 28, 9, 0), sh(2026, 12, 31, 23, 59))
    assert cal.provisional(sh(2026, 12, 31, 15, 0), sh(2027, 1, 1, 0, 0))  # local date decides, not UTC's
    assert not cal.provisional(sh(2026, 12, 31, 15, 0), datetime(2026, 12, 31, 15, 59, tzinfo=UTC))
    assert cal.provisional(sh(2025, 12, 31, 15, 0), sh(2026, 1, 5, 15, 0))
    assert not cal.is_covered(date(2027, 1, 1)) and cal.is_covered(date(2026, 6, 1))
    with pytest.raises(ValueError, match="naive"):
        cal.provisional(datetime(2026, 12, 31, 15, 0), sh(2027, 1, 5, 15, 0))


# -- calendar_for / target_seconds ---------------------------------------------------------------------------
def test_calendar_for_caches_per_spec_and_kind() -> None:
    first = calendar_for(cn_2026_spec(), "business")
    assert calendar_for(cn_2026_spec(), "business") is first
    assert isinstance(first, BusinessCalendar)
    assert calendar_for(spec(), "business") is not first
    assert calendar_for(cn_2026_spec(), "24x7").kind == "24x7"
    with pytest.raises(ValueError, match="unknown calendar kind"):
        calendar_for(cn_2026_spec(), "lunar")


@pytest.mark.parametrize(
    ("target", "always", "business"),
    [("10m", 600, 600), ("24h", 86400, 86400), ("3d", 259200, 81000), ("1w", 604800, 135000), ("30s", 30, 30)],
)
def test_target_seconds(target: str, always: float, business: float) -> None:
    assert target_seconds(ClockSpec(target=target), AlwaysOpen()) == always
    assert target_seconds(ClockSpec(target=target, calendar="business"), CN) == business


def test_business_week_follows_the_working_weekdays() -> None:
    six_days = BusinessCalendar(spec(weekdays=[1, 2, 3, 4, 5, 6]))
    assert target_seconds(ClockSpec(target="1w", calendar="business"), six_days) == 6 * 8 * 3600


# -- properties --------------------------------------------------------------------------------------------
DAY_MINUTES = st.integers(min_value=6 * 60, max_value=23 * 60)  # DST zones move their clocks at night


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    zone = draw(st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "America/New_York"]))
    cuts = sorted(draw(st.sets(DAY_MINUTES, min_size=2, max_size=6)))
    if len(cuts) % 2:
        cuts = cuts[:-1]
    pairs = zip(cuts[::2], cuts[1::2], strict=True)
    hours = [WorkingInterval(start=time(a // 60, a % 60), end=time(b // 60, b % 60)) for a, b in pairs]
    weekdays = sorted(draw(st.sets(st.integers(1, 7), min_size=1, max_size=7)))
    days = st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31))
    holidays = draw(st.sets(days, max_size=40))
    makeups = draw(st.sets(days, max_size=10)) - holidays
    return BusinessCalendar(
        CalendarSpec(
            timezone=zone, working_hours=hours, weekdays=weekdays, holidays=sorted(holidays), makeup_days=list(makeups)
        )
    )


def instants(zone: ZoneInfo = SH) -> st.SearchStrategy[datetime]:
    return st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2027, 1, 31)).map(
        lambda d: d.replace(tzinfo=zone)
    )


SPANS = st.floats(min_value=0.000001, max_value=40 * 27000, allow_nan=False)
PROPS = settings(max_examples=200, deadline=None)


def _at_interval_end(cal: BusinessCalendar, moment: datetime) -> bool:
    local = moment.astimezone(cal.zone)
    return cal.is_working_day(local.date()) and local.time() in {i.end for i in cal.working_hours}


@PROPS
@given(start=instants(), seconds=SPANS)
def test_deadline_never_outside_working_time(start: datetime, seconds: float) -> None:
    deadline = CN.add(start, seconds)
    assert CN.is_working_time(deadline) or _at_interval_end(CN, deadline)
    assert CN.is_working_time(deadline - timedelta(microseconds=1))  # the last counted microsecond works


@PROPS
@given(start=instants(), seconds=SPANS)
def test_add_and_between_are_inverse(start: datetime, seconds: float) -> None:
    assert CN.between(start, CN.add(start, seconds)) == pytest.approx(seconds, abs=1e-6)


MILLI_SPANS = st.integers(min_value=1, max_value=40 * 27000 * 1000).map(lambda ms: ms / 1000)


@PROPS
@given(start=instants(), first=MILLI_SPANS, second=MILLI_SPANS)
def test_add_composes(start: datetime, first: float, second: float) -> None:
    assert CN.add(CN.add(start, first), second) == CN.add(start, first + second)


@PROPS
@given(moments=st.lists(instants(), min_size=3, max_size=3))
def test_between_is_additive(moments: list[datetime]) -> None:
    a, b, c = sorted(moments)
    assert CN.between(a, b) + CN.between(b, c) == pytest.approx(CN.between(a, c), abs=1e-6)


@PROPS
@given(moment=instants())
def test_next_opening_is_the_first_working_instant(moment: datetime) -> None:
    opening = CN.next_opening(moment)
    assert opening >= moment
    assert CN.is_working_time(opening)
    assert CN.between(moment, opening) == 0


NIGHT_HOURS = (("00:30", "02:30"), ("02:45", "04:00"), ("05:00", "23:00"))  # cross every DST transition
NIGHT_SHIFT = {z: BusinessCalendar(spec(z.key, hours=NIGHT_HOURS, weekdays=[*range(1, 8)])) for z in (BERLIN, NEW_YORK)}


@PROPS
@given(
    zone=st.sampled_from([BERLIN, NEW_YORK]),
    offset=st.integers(min_value=-6 * 3600, max_value=30 * 3600),
    seconds=st.integers(min_value=1, max_value=3 * 86400),
    transition=st.sampled_from([date(2026, 3, 29), date(2026, 10, 25), date(2026, 3, 8), date(2026, 11, 1)]),
)
def test_dst_inside_working_hours_stays_sane(zone: ZoneInfo, offset: int, seconds: int, transition: date) -> None:
    cal = NIGHT_SHIFT[zone]
    start = datetime.combine(transition, time(0), tzinfo=zone) + timedelta(seconds=offset)
    deadline = cal.add(start, seconds)
    assert deadline > start
    assert cal.is_working_time(deadline - timedelta(microseconds=1))
    assert cal.between(start, deadline) >= seconds - 1e-6  # equal unless a spring gap was credited
    assert cal.next_opening(start) >= start


@settings(max_examples=150, deadline=None)
@given(cal=calendars(), data=st.data())
def test_matches_day_by_day_reference(cal: BusinessCalendar, data: st.DataObject) -> None:
    start = data.draw(instants(cal.zone), label="start")
    seconds = data.draw(st.integers(min_value=1, max_value=30 * 86400), label="seconds")
    assert cal.add(start, seconds) == ref_add(cal, start, seconds)
    end = start + timedelta(seconds=data.draw(st.integers(min_value=0, max_value=60 * 86400), label="span"))
    assert cal.between(start, end) == pytest.approx(ref_between(cal, start, end), abs=1e-6)
