"""SLA clock ledger: pauses, extensions, reclassification, warnings (催办) and breach (SEEDS §4, §5)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.calendar_bench import cn_2026_spec
from domain.calendar import BusinessCalendar, business_calendar
from domain.ledger import ClockEvent, Pause, SlaClock
from models.policy import ClockSpec

SH = ZoneInfo("Asia/Shanghai")
CAL_SPEC = cn_2026_spec()
CN = business_calendar(CAL_SPEC)
CLOSURE = ClockSpec(target="3d", calendar="business", warn_at=[0.5, 0.8])
HANDLING = ClockSpec(target="24h", calendar="24x7", warn_at=[0.5, 0.8])


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)  # type: ignore[misc]


def clock(spec: ClockSpec = CLOSURE, at: datetime | None = None, name: str = "closure") -> SlaClock:
    return SlaClock.start(name, spec, CAL_SPEC, at or sh(2026, 9, 30, 17, 0))


def test_start_builds_calendar_and_target() -> None:
    c = clock()
    assert isinstance(c.calendar, BusinessCalendar)
    assert c.business is CN
    assert c.target == 81000
    assert c.running and not c.paused and not c.stopped
    assert c.deadline(c.started_at) == sh(2026, 10, 10, 17, 0)  # 3 working days across National Day
    h = clock(HANDLING, name="handling")
    assert h.calendar.kind == "24x7"
    assert h.deadline(h.started_at) == sh(2026, 10, 1, 17, 0)
    with pytest.raises(ValueError, match="naive"):
        clock(at=datetime(2026, 9, 30, 17, 0))


def test_pause_shifts_deadline_and_counts_only_working_time() -> None:
    c = clock(at=sh(2026, 9, 28, 9, 0))  # Monday
    before = c.deadline(sh(2026, 9, 28, 9, 0))
    c.pause(sh(2026, 9, 28, 10, 0))
    assert c.paused and not c.running
    # An open pause counts up to `at`; over lunch nothing more accrues.
    assert c.paused_seconds(sh(2026, 9, 28, 13, 0)) == 7200
    assert c.consumed(sh(2026, 9, 28, 13, 0)) == 3600
    assert c.deadline(sh(2026, 9, 28, 13, 0)) == CN.add(before, 7200)  # "if resumed now"
    c.resume(sh(2026, 9, 28, 14, 0))
    assert c.paused_seconds(sh(2026, 9, 29, 9, 0)) == 7200 + 1800
    assert c.deadline(sh(2026, 9, 29, 9, 0)) == CN.add(before, 9000)
    assert c.remaining(sh(2026, 9, 28, 15, 0)) == 81000 - 3600 - 3600


def test_state_errors_are_clear() -> None:
    c = clock()
    with pytest.raises(ValueError, match="not paused"):
        c.resume(sh(2026, 9, 30, 17, 30))
    c.pause(sh(2026, 9, 30, 17, 30))
    with pytest.raises(ValueError, match="already paused"):
        c.pause(sh(2026, 9, 30, 17, 40))
    with pytest.raises(ValueError, match="before"):
        c.resume(sh(2026, 9, 30, 17, 0))
    c.stop(sh(2026, 9, 30, 17, 45))  # stopping closes the open pause
    assert c.pauses == [Pause(sh(2026, 9, 30, 17, 30), sh(2026, 9, 30, 17, 45))]
    with pytest.raises(ValueError, match="stopped"):
        c.pause(sh(2026, 9, 30, 17, 50))
    with pytest.raises(ValueError, match="already stopped"):
        c.stop(sh(2026, 9, 30, 17, 50))
    with pytest.raises(ValueError, match="stopped"):
        c.extend(3600)
    fixed = clock(ClockSpec(target="1h", pausable=False), name="first_response")
    with pytest.raises(ValueError, match="non-pausable"):
        fixed.pause(sh(2026, 9, 30, 17, 10))
    with pytest.raises(ValueError, match="positive"):
        fixed.extend(0)


def test_stop_freezes_the_clock() -> None:
    c = clock(HANDLING, at=sh(2026, 9, 30, 17, 0), name="handling")
    c.stop(sh(2026, 9, 30, 18, 0))
    later = sh(2026, 10, 5, 0, 0)
    assert c.consumed(later) == 3600
    assert c.deadline(later) == sh(2026, 10, 1, 17, 0)
    assert c.next_event(later) is None


def test_extension_moves_the_deadline() -> None:
    c = clock(HANDLING, name="handling")
    c.extend(86400)  # 000 §2.2: extended after telling the customer
    assert c.deadline(c.started_at) == sh(2026, 10, 2, 17, 0)
    assert c.remaining(c.started_at) == 2 * 86400
    assert c.view(c.started_at).extended_seconds == 86400


def test_events_in_order_then_breach() -> None:
    c = clock(HANDLING, name="handling")
    now = c.started_at
    first = c.next_event(now)
    assert first == ClockEvent("handling", "warning", sh(2026, 10, 1, 5, 0), 0.5)
    c.mark_warned(0.5)
    second = c.next_event(now)
    assert second is not None and second.fraction == 0.8 and second.at == sh(2026, 10, 1, 12, 12)
    c.mark_warned(0.8)
    breach = c.next_event(now)
    assert breach == ClockEvent("handling", "breach", sh(2026, 10, 1, 17, 0), None)
    c.mark_breached(breach.at)
    assert c.next_event(breach.at) is None  # a breached clock has no further events
    assert c.view(breach.at).breached


def test_overdue_warnings_fire_at_once_unless_the_breach_is_overdue() -> None:
    c = clock(HANDLING, name="handling")
    late = sh(2026, 10, 1, 13, 0)  # after both warnings, before the breach
    event = c.next_event(late)
    assert event is not None and event.kind == "warning" and event.fraction == 0.5 and event.at < late
    after = sh(2026, 10, 1, 18, 0)
    assert c.next_event(after) == ClockEvent("handling", "breach", sh(2026, 10, 1, 17, 0), None)


def test_no_events_while_paused() -> None:
    c = clock()
    c.pause(sh(2026, 9, 30, 17, 10))
    assert c.next_event(sh(2026, 9, 30, 17, 20)) is None


def test_warnings_in_business_hours_for_a_24x7_clock() -> None:
    spec = ClockSpec(target="72h", calendar="24x7", warn_at=[0.5, 0.8], warn_in_business_hours=True)
    c = clock(spec, at=sh(2026, 9, 18, 17, 0), name="closure")  # Friday; Sep 20 (Sunday) is a make-up day
    now = c.started_at
    first = c.next_event(now)
    # 50 % = Sun Sep 20 05:00, outside hours -> the make-up Sunday's opening 09:00.
    assert first == ClockEvent("closure", "warning", sh(2026, 9, 20, 9, 0), 0.5)
    c.mark_warned(0.5)
    second = c.next_event(now)
    # 80 % = Mon Sep 21 02:36 -> Monday 09:00.
    assert second == ClockEvent("closure", "warning", sh(2026, 9, 21, 9, 0), 0.8)


def test_warning_moved_past_the_breach_is_dropped() -> None:
    spec = ClockSpec(target="10h", calendar="24x7", warn_at=[0.5], warn_in_business_hours=True)
    c = clock(spec, at=sh(2026, 9, 25, 17, 0), name="handling")  # holiday weekend: next opening Sep 28
    assert c.next_event(c.started_at) == ClockEvent("handling", "breach", sh(2026, 9, 26, 3, 0), None)


def test_retarget_restart() -> None:
    c = clock()
    c.pause(sh(2026, 9, 30, 17, 10))
    c.mark_warned(0.5)
    c.extend(600)
    c.retarget(27000, sh(2026, 10, 8, 9, 0), "restart")
    assert c.started_at == sh(2026, 10, 8, 9, 0)
    assert c.pauses == [Pause(sh(2026, 10, 8, 9, 0))]  # still waiting on the customer
    assert c.warned == [] and c.extended == 0 and c.target == 27000
    c.resume(sh(2026, 10, 8, 10, 0))
    assert c.deadline(sh(2026, 10, 8, 10, 0)) == sh(2026, 10, 9, 10, 0)


def test_retarget_on_a_stopped_clock_only_records_the_target() -> None:
    c = clock()
    c.stop(sh(2026, 9, 30, 17, 30))
    c.retarget(27000, sh(2026, 10, 8, 9, 0), "restart")
    assert c.started_at == sh(2026, 9, 30, 17, 0) and c.target == 27000 and c.stopped


def test_reclassify_switches_calendar() -> None:
    c = clock()  # normal closure: 3 working days (002 §2.1.3)
    c.reclassify(ClockSpec(target="72h", calendar="24x7"), CAL_SPEC, sh(2026, 9, 30, 18, 0))  # urgent: 72 h
    assert c.calendar.kind == "24x7"
    assert c.deadline(sh(2026, 9, 30, 18, 0)) == sh(2026, 10, 3, 17, 0)


def test_view() -> None:
    c = clock()
    c.pause(sh(2026, 9, 30, 17, 30))
    view = c.view(sh(2026, 9, 30, 17, 45))
    assert view.name == "closure" and view.calendar == "business" and view.target_seconds == 81000
    assert view.paused and view.paused_seconds == 900 and view.consumed_seconds == 1800
    assert view.deadline == CN.add(sh(2026, 10, 10, 17, 0), 900)
    assert view.deadline.tzinfo is UTC


# -- properties --------------------------------------------------------------------------------------------
INSTANTS = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 1)).map(
    lambda d: d.replace(tzinfo=SH)
)
OFFSETS = st.integers(min_value=0, max_value=20 * 86400)
PROPS = settings(max_examples=200, deadline=None)


@PROPS
@given(start=INSTANTS, spec=st.sampled_from([CLOSURE, HANDLING]), gap=OFFSETS, length=OFFSETS)
def test_pause_shifts_deadline_by_its_calendar_seconds(start: datetime, spec: ClockSpec, gap: int, length: int) -> None:
    c = clock(spec, at=start)
    before = c.deadline(start)
    pause_at = start + timedelta(seconds=gap)
    resume_at = pause_at + timedelta(seconds=length)
    c.pause(pause_at)
    c.resume(resume_at)
    d = c.calendar.between(pause_at, resume_at)
    after = c.deadline(resume_at)
    assert c.calendar.between(before, after) == pytest.approx(d, abs=1e-6)
    assert after == c.calendar.add(before, d) or d == 0


@PROPS
@given(
    start=INSTANTS,
    spec=st.sampled_from([CLOSURE, HANDLING]),
    new_target=st.integers(min_value=60, max_value=10 * 86400),
    offsets=st.lists(OFFSETS, min_size=0, max_size=6),
    extra=st.integers(min_value=0, max_value=86400),
)
def test_retarget_carry_over_equals_from_scratch(
    start: datetime, spec: ClockSpec, new_target: int, offsets: list[int], extra: int
) -> None:
    c = clock(spec, at=start)
    moments = [start + timedelta(seconds=s) for s in sorted(offsets)]
    for i, moment in enumerate(moments):
        (c.pause if i % 2 == 0 else c.resume)(moment)
    now = (moments[-1] if moments else start) + timedelta(seconds=extra)
    fresh = replace(clock(spec, at=start), target=float(new_target), pauses=[replace(p) for p in c.pauses])
    c.retarget(float(new_target), now, "carry_over")
    assert c.deadline(now) == fresh.deadline(now)
    assert c.consumed(now) == fresh.consumed(now)
    assert c.next_event(now) == fresh.next_event(now)


@PROPS
@given(start=INSTANTS, gap=OFFSETS)
def test_consumed_plus_remaining_is_the_target(start: datetime, gap: int) -> None:
    c = clock(at=start)
    at = start + timedelta(seconds=gap)
    assert c.consumed(at) + c.remaining(at) == pytest.approx(c.target)
    assert c.consumed(c.deadline(at)) == pytest.approx(c.target, abs=1e-6)


def test_reopen_after_a_rejected_result_counts_the_gap() -> None:
    c = clock(at=sh(2026, 3, 2, 9))
    c.stop(sh(2026, 3, 2, 10))
    deadline = c.deadline(sh(2026, 3, 2, 10))
    c.reopen(sh(2026, 3, 3, 10))
    assert c.running and c.deadline(sh(2026, 3, 3, 10)) == deadline  # same deadline: the time since the stop counts
    assert c.consumed(sh(2026, 3, 3, 10)) == 27000 + 3600  # Mon 09:00 → Tue 10:00
    c.reopen(sh(2026, 3, 3, 11))  # never stopped again: nothing to do
    assert c.running
