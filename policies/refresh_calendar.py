"""Refresh a jurisdiction calendar (policies/calendars/<id>.yaml) from the `holidays` library (SEEDS §4.4, 调休).

    .venv/bin/python -m policies.refresh_calendar cn            # report only; exit 1 when --write would change it
    .venv/bin/python -m policies.refresh_calendar cn --write    # import newly published years, regenerate the rest

The worker never imports this module: it reads the YAML, which is reviewed data with a version. The library (a
pinned dev dependency) supplies two things:

- the official schedule of a year (holidays and 调休 make-up days) once a release carries the State Council's
  notice: imported as an official year, which extends what the calendar covers;
- the statutory days of the years after that (lunar dates, 清明, and 补假 on a working day for a holiday that falls
  on a weekend, as 全国年节及纪念日放假办法 requires), kept as provisional years with no make-up days.

Official years already in the file stay as typed; the report lists every day where they and the library disagree.
Any change of dates raises the calendar's version, which is what open requests are recomputed on.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from models.policy import CalendarYear, HolidayBreak, JurisdictionCalendar
from policies.loader import BUILTIN_DIR, CALENDARS, check_calendar

COUNTRIES = {"cn": "CN"}  # calendar id -> the library's country code
HORIZON_YEARS = 5  # provisional (statutory) years kept after the last official one
# The library's zh_CN holiday names -> break names; a break named by none of them is a day off of a notice.
NAMES = {"元旦": "元旦 New Year's Day", "农历除夕": "春节 Spring Festival", "春节": "春节 Spring Festival",
         "清明节": "清明节 Qingming Festival", "劳动节": "劳动节 Labour Day", "端午节": "端午节 Dragon Boat Festival",
         "中秋节": "中秋节 Mid-Autumn Festival", "国庆节": "国庆节 National Day"}
HEADER = """\
# Jurisdiction calendar (SEEDS §4.4: holidays and 调休 make-up days), kept once and referenced by the packs as
# `calendar: {ref: %(id)s, ...}`. Official years are the State Council's schedule; they are what the calendar
# covers. Provisional years (official: false) hold the statutory days only, with no 调休: a deadline that reaches
# them is marked provisional. Raise `version` on every change of dates.
# Canonical form written by `python -m policies.refresh_calendar %(id)s --write` (docs/policies.md#calendars).
"""


def _library(calendar_id: str, years: Iterable[int]) -> Any:
    try:
        import holidays
    except ImportError:  # a dev dependency (pyproject [dev], requirements.lock)
        raise SystemExit("refresh_calendar: needs the holidays library: make setup") from None
    if calendar_id not in COUNTRIES:
        raise SystemExit(f"refresh_calendar: no library source for calendar {calendar_id!r}; "
                         f"known: {', '.join(sorted(COUNTRIES))}")
    return holidays.country_holidays(COUNTRIES[calendar_id], years=list(years), language="zh_CN")


def library_version() -> str:
    import holidays

    return str(holidays.__version__)


def _break_name(labels: Iterable[str]) -> str:
    names: list[str] = []
    for label in labels:
        for part in label.split("; "):
            name = NAMES.get(part.split("（")[0].strip())
            if name and name not in names:
                names.append(name)
    return " + ".join(names) or "休息日 day off"


def breaks_of(days_off: dict[date, str], makeup: dict[date, date], weekdays: list[int]) -> list[HolidayBreak]:
    """Days off (date -> the library's label) as breaks the way a notice writes them: each run of days off, widened
    over the weekend days next to it that are not make-up days. ``makeup`` maps each make-up working day to the day
    off it pays for, which places it in that day's break."""
    off = set(days_off)
    grown = True
    while grown:
        edge = {d + timedelta(days=step) for d in off for step in (-1, 1)}
        wider = {d for d in edge - off if d.isoweekday() not in weekdays and d not in makeup}
        grown, off = bool(wider), off | wider
    runs: list[list[date]] = []
    for day in sorted(off):
        if runs and day - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return [HolidayBreak(name=_break_name(days_off[d] for d in run if d in days_off),
                         days=[run[0], run[-1]] if len(run) > 1 else [run[0]],
                         work=sorted(work for work, paid in makeup.items() if run[0] <= paid <= run[-1]))
            for run in runs]


def library_year(calendar_id: str, year: int, weekdays: list[int]) -> CalendarYear:
    """The library's view of ``year``: official when a release carries that year's notice (its substituted days
    give the make-up days), else the statutory days with 补假, provisional."""
    lib = _library(calendar_id, [year])
    days_off = {d: name for d, name in lib.items() if d.year == year}
    notice = getattr(lib, "special_public_holidays", {}).get(year)
    if notice is None:
        return CalendarYear(official=False, breaks=breaks_of(days_off, {}, weekdays),
                            source=f"statutory days and 补假 (全国年节及纪念日放假办法, 2024) from holidays "
                                   f"{library_version()}; no 调休 before the notice")
    # Each entry: (month, day) off, substituted from the make-up working day (month, day[, year]) of the notice.
    entries = [notice] if isinstance(notice[0], int) else notice
    makeup = {date(entry[4] if len(entry) > 4 else year, entry[2], entry[3]): date(year, entry[0], entry[1])
              for entry in entries}
    source = f"国务院办公厅关于{year}年部分节假日安排的通知, as carried by holidays {library_version()}"
    return CalendarYear(official=True, breaks=breaks_of(days_off, makeup, weekdays), source=source)


def working_days(years: dict[int, CalendarYear], weekdays: list[int], year: int) -> set[date]:
    """The working days of ``year`` under the breaks of ``years`` (a break may reach into a neighbouring year)."""
    off = {d for data in years.values() for b in data.breaks for d in b.days_off()}
    makeup = {d for data in years.values() for b in data.breaks for d in b.work}
    day, days = date(year, 1, 1), set()
    while day.year == year:
        if day in makeup or (day.isoweekday() in weekdays and day not in off):
            days.add(day)
        day += timedelta(days=1)
    return days


def refreshed(calendar: JurisdictionCalendar, through: int | None = None) -> JurisdictionCalendar:
    """``calendar`` with the official years the library has beyond its coverage, and provisional years regenerated
    up to ``through`` (default: HORIZON_YEARS after the last official year). Version raised when dates change."""
    years = {y: data for y, data in calendar.years.items() if data.official}
    year = max(years) + 1
    while (found := library_year(calendar.id, year, calendar.weekdays)).official:
        years[year] = found
        year += 1
    for later in range(year, (through or max(years) + HORIZON_YEARS) + 1):
        years[later] = library_year(calendar.id, later, calendar.weekdays)
    result = calendar.model_copy(update={"years": dict(sorted(years.items()))})
    if (result.holidays(), result.makeup_days()) != (calendar.holidays(), calendar.makeup_days()):
        result = result.model_copy(update={"version": calendar.version + 1})
    return JurisdictionCalendar.model_validate(result.model_dump())


def disagreements(calendar: JurisdictionCalendar) -> list[str]:
    """Days of the file's official years whose working status differs from the library's official schedule."""
    lines = []
    for year, data in sorted(calendar.years.items()):
        theirs = library_year(calendar.id, year, calendar.weekdays)
        if not data.official or not theirs.official:
            continue
        ours = working_days(calendar.years, calendar.weekdays, year)
        other = working_days({year: theirs}, calendar.weekdays, year)
        for day in sorted(ours ^ other):
            lines.append(f"{day}: the file says {'working' if day in ours else 'off'}, holidays "
                         f"{library_version()} says {'working' if day in other else 'off'}")
    return lines


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _dates(days: list[date]) -> str:
    return "[" + ", ".join(d.isoformat() for d in days) + "]"


def render(calendar: JurisdictionCalendar) -> str:
    """The canonical YAML of a calendar: one line per break, as a notice lists them."""
    out = [HEADER % {"id": calendar.id},
           f"id: {calendar.id}", f"title: {_q(calendar.title)}", f"version: {calendar.version}",
           f"timezone: {calendar.timezone}", f"weekdays: {calendar.weekdays}", f"source: {_q(calendar.source)}",
           "years:"]
    for year, data in sorted(calendar.years.items()):
        out += [f"  {year}:", f"    official: {str(data.official).lower()}", f"    source: {_q(data.source)}",
                "    breaks:"]
        for b in data.breaks:
            work = f", work: {_dates(b.work)}" if b.work else ""
            out.append(f"      - {{name: {_q(b.name)}, days: {_dates(b.days)}{work}}}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policies.refresh_calendar", description=__doc__.splitlines()[0])
    parser.add_argument("calendar", help="calendar id, e.g. cn")
    parser.add_argument("--file", type=Path, help="the calendar file (default: the built-in one)")
    parser.add_argument("--through", type=int, help="last provisional year (default: 5 after the last official)")
    parser.add_argument("--write", action="store_true", help="rewrite the file in canonical form")
    args = parser.parse_args(argv)
    path = args.file or BUILTIN_DIR / CALENDARS / f"{args.calendar}.yaml"
    calendar, problems = check_calendar(path)
    if calendar is None:
        print("\n".join(map(str, problems)), file=sys.stderr)
        return 2
    new = refreshed(calendar, args.through)
    print(f"{path}: {calendar.key} covers {calendar.covers.first}..{calendar.covers.last}; with holidays "
          f"{library_version()}: {new.key} covers {new.covers.first}..{new.covers.last}, provisional through "
          f"{max(new.years)}")
    for line in disagreements(calendar):
        print(f"  differs: {line}")
    text = render(new)
    if text == path.read_text(encoding="utf-8"):
        print("  up to date")
        return 0
    if args.write:
        path.write_text(text, encoding="utf-8")
        print(f"  written: {new.key}")
        return 0
    print("  --write would rewrite it")
    return 1


if __name__ == "__main__":
    sys.exit(main())
