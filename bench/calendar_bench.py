"""Micro-benchmark: µs per BusinessCalendar.add for 1, 5, 15 and 60 working days (must be flat in the span).

    python -m bench.calendar_bench [--json] [--pack service_center]

The calendar carries the real 2026 schedule of Chinese public holidays and make-up days (调休), checked against
the State Council notice 国务院办公厅关于2026年部分节假日安排的通知 (published 2025-11-04): New Year is Jan 1-3
with make-up Sunday Jan 4 (not Jan 1 alone); the other dates are as below. No absolute time is asserted.
The packs take these dates from policies/calendars/cn.yaml; this typed copy is the independent check that they are
unchanged (tests/unit/test_calendar_data.py). `--pack` times a pack's resolved calendar instead, which also holds
the statutory days of the provisional years (SEEDS §4.4, docs/policies.md#calendars).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from domain.calendar import BusinessCalendar
from models.policy import CalendarSpec, WorkingInterval


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


CN_2026_HOLIDAYS: list[date] = [
    *_days(date(2026, 1, 1), date(2026, 1, 3)),  # 元旦 New Year
    *_days(date(2026, 2, 15), date(2026, 2, 23)),  # 春节 Spring Festival
    *_days(date(2026, 4, 4), date(2026, 4, 6)),  # 清明 Qingming
    *_days(date(2026, 5, 1), date(2026, 5, 5)),  # 劳动节 Labour Day
    *_days(date(2026, 6, 19), date(2026, 6, 21)),  # 端午 Dragon Boat
    *_days(date(2026, 9, 25), date(2026, 9, 27)),  # 中秋 Mid-Autumn
    *_days(date(2026, 10, 1), date(2026, 10, 7)),  # 国庆 National Day
]
CN_2026_MAKEUP_DAYS: list[date] = [
    date(2026, 1, 4),  # New Year
    date(2026, 2, 14),  # Spring Festival
    date(2026, 2, 28),  # Spring Festival
    date(2026, 5, 9),  # Labour Day
    date(2026, 9, 20),  # National Day
    date(2026, 10, 10),  # National Day
]


def cn_2026_spec() -> CalendarSpec:
    """09:00-12:00 + 13:30-18:00 (27000 s a day), Mon-Fri, Asia/Shanghai, 2026 holidays and make-up days."""
    return CalendarSpec(
        timezone="Asia/Shanghai",
        working_hours=[
            WorkingInterval.model_validate({"start": "09:00", "end": "12:00"}),
            WorkingInterval.model_validate({"start": "13:30", "end": "18:00"}),
        ],
        holidays=CN_2026_HOLIDAYS,
        makeup_days=CN_2026_MAKEUP_DAYS,
    )


SPANS_DAYS = (1, 5, 15, 60)


def run(iterations: int = 40000, calendar: BusinessCalendar | None = None) -> dict[str, float]:
    """µs per add() call for each span, starting from a spread of instants across 2026 (some before holidays)."""
    calendar = calendar or BusinessCalendar(cn_2026_spec())
    zone = ZoneInfo("Asia/Shanghai")
    first = datetime(2026, 1, 1, 8, 0, tzinfo=zone)
    starts = [first + timedelta(days=d, hours=h) for d in range(0, 300, 7) for h in (1, 9)]
    targets = {f"{days}d": days * calendar.day_seconds for days in SPANS_DAYS}
    best = dict.fromkeys(targets, float("inf"))
    repeats = 20
    rounds = max(1, iterations // (len(starts) * repeats))
    for _ in range(repeats):  # spans interleaved and best-of-repeats, so machine noise hits them alike
        for key, seconds in targets.items():
            began = time.perf_counter()
            for _ in range(rounds):
                for start in starts:
                    calendar.add(start, seconds)
            best[key] = min(best[key], (time.perf_counter() - began) / (rounds * len(starts)))
    results = {key: value * 1e6 for key, value in best.items()}
    results["ratio_60d_1d"] = results["60d"] / results["1d"]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--iterations", type=int, default=40000)
    parser.add_argument("--pack", help="time this policy pack's resolved business calendar")
    args = parser.parse_args(argv)
    calendar = None
    if args.pack:
        from domain.calendar import business_calendar
        from policies.loader import get_pack

        calendar = business_calendar(get_pack(args.pack).calendar)
    results = run(args.iterations, calendar)
    if args.json:
        print(json.dumps({k: round(v, 3) for k, v in results.items()}))
        return 0
    print(f"{'target':>8}  {'µs/add':>8}")
    for days in SPANS_DAYS:
        print(f"{days:>6} d  {results[f'{days}d']:>8.2f}")
    print(f"ratio 60d/1d: {results['ratio_60d_1d']:.2f} (flat in span when near 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
