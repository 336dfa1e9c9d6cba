"""Jurisdiction calendars (SEEDS §4.4, issue 16 "calendars that never silently run out"): policies/calendars/cn.yaml
is kept once and referenced by the four packs; 2026 is exactly what the packs typed in before; past the official
years the statutory holidays apply and deadlines are provisional; the data agrees with the pinned `holidays`
library; coverage warnings come 60 days ahead."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from bench.calendar_bench import CN_2026_HOLIDAYS, CN_2026_MAKEUP_DAYS, cn_2026_spec
from domain.calendar import BusinessCalendar, business_calendar
from domain.ledger import SlaClock
from models.policy import CalendarSpec, ClockSpec, JurisdictionCalendar
from policies import refresh_calendar
from policies.loader import (
    BUILTIN_DIR,
    CALENDARS,
    PolicyError,
    check_calendar,
    check_pack,
    coverage_warnings,
    get_pack,
    load_all,
    load_pack,
)

SH = ZoneInfo("Asia/Shanghai")
PACKS = ("finance", "general", "service_center", "telecom")
CN_FILE = BUILTIN_DIR / CALENDARS / "cn.yaml"
CLOSURE_3D = ClockSpec(target="3d", calendar="business")


@pytest.fixture(autouse=True)
def _no_operator_packs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEFU_POLICY_PATH", raising=False)


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)  # type: ignore[misc]


def cn() -> JurisdictionCalendar:
    calendar, problems = check_calendar(CN_FILE)
    assert calendar is not None, problems
    return calendar


def raw(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def dump(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def days_of(year: int) -> list[date]:
    return [date(year, 1, 1) + timedelta(days=n) for n in range((date(year + 1, 1, 1) - date(year, 1, 1)).days)]


# --- the data --------------------------------------------------------------------------------------------------------
def test_cn_covers_2026_officially_and_later_years_provisionally() -> None:
    calendar = cn()
    assert calendar.key == "cn@v1" and calendar.timezone == "Asia/Shanghai"
    assert (calendar.covers.first, calendar.covers.last) == (date(2026, 1, 1), date(2026, 12, 31))
    assert [y for y, data in calendar.years.items() if not data.official] == list(range(2027, 2032))
    # No 调休 is invented for a year whose notice is not out (issue 16).
    assert not [d for d in calendar.makeup_days() if d.year >= 2027]


def test_2026_is_what_the_packs_typed_in() -> None:
    calendar = cn()
    assert [d for d in calendar.holidays() if d.year == 2026] == sorted(CN_2026_HOLIDAYS)
    assert calendar.makeup_days() == sorted(CN_2026_MAKEUP_DAYS)


@pytest.mark.parametrize("pack_id", PACKS)
def test_every_pack_references_cn_and_keeps_its_2026_days_and_deadlines(pack_id: str) -> None:
    spec = get_pack(pack_id).calendar
    assert spec.key == "cn@v1" and spec.covers is not None and spec.closures == []
    before = BusinessCalendar(cn_2026_spec().model_copy(update={"working_hours": spec.working_hours}))
    now = business_calendar(spec)
    assert [now.day_kind(d) for d in days_of(2026)] == [before.day_kind(d) for d in days_of(2026)]
    for start in (sh(2026, 1, 1, 8) + timedelta(days=d, hours=h) for d in range(0, 350, 3) for h in (1, 6, 11)):
        for days in (1, 3, 5):
            seconds = days * now.day_seconds
            if now.add(start, seconds).astimezone(SH).year == 2026:
                assert now.add(start, seconds) == before.add(start, seconds), (start, days)
                assert not now.provisional(start, now.add(start, seconds))


def test_new_years_day_2027_is_not_a_working_day_and_the_deadline_is_provisional() -> None:
    spec = get_pack("service_center").calendar
    cal = business_calendar(spec)
    assert not cal.is_working_day(date(2027, 1, 1)) and not cal.is_covered(date(2027, 1, 1))
    clock = SlaClock.start("closure", CLOSURE_3D, spec, sh(2026, 12, 31, 15, 0))
    # 3 h on Dec 31, New Year's Day and the weekend off, Jan 4 and 5 full, 4.5 h on Jan 6.
    assert clock.deadline(sh(2026, 12, 31, 15, 0)) == sh(2027, 1, 6, 15, 0)
    view = clock.view(sh(2026, 12, 31, 15, 0))
    assert view.provisional and clock.provisional(sh(2026, 12, 31, 15, 0))
    assert not SlaClock.start("closure", CLOSURE_3D, spec, sh(2026, 12, 1, 15, 0)).view(sh(2026, 12, 1)).provisional


@pytest.mark.parametrize("start", [sh(2027, 2, 3, 15, 0), sh(2027, 2, 4, 15, 0), sh(2027, 2, 4, 17, 0)])
def test_a_spring_festival_2027_deadline_is_never_inside_the_statutory_holiday(start: datetime) -> None:
    spec = get_pack("service_center").calendar
    for target in ("1d", "2d", "3d", "5d"):
        clock = SlaClock.start("closure", ClockSpec(target=target, calendar="business"), spec, start)
        deadline = clock.deadline(start).astimezone(SH)
        assert not date(2027, 2, 5) <= deadline.date() <= date(2027, 2, 8), (target, deadline)  # 除夕 .. 初三
        assert clock.view(start).provisional
    assert SlaClock.start("closure", CLOSURE_3D, spec, sh(2027, 2, 4, 15, 0)).deadline(start) == sh(2027, 2, 15, 15, 0)


def test_a_pack_pinned_before_calendars_had_coverage_still_loads_and_is_never_provisional() -> None:
    """The recorded histories carry packs with the 2026 lists inline and no `covers`: they must replay unchanged."""
    legacy = CalendarSpec.model_validate(cn_2026_spec().model_dump(mode="json", exclude_defaults=True))
    assert legacy.covers is None and legacy.key is None
    clock = SlaClock.start("closure", CLOSURE_3D, legacy, sh(2026, 12, 31, 15, 0))
    assert clock.deadline(sh(2026, 12, 31, 15, 0)) == sh(2027, 1, 5, 15, 0)  # as before: 2027 unknown to it
    assert not clock.view(sh(2026, 12, 31, 15, 0)).provisional


# --- rules of the data --------------------------------------------------------------------------------------------
def _refused(data: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        JurisdictionCalendar.model_validate(data)


def test_a_provisional_year_has_no_makeup_days() -> None:
    data = raw(CN_FILE)
    data["years"][2027]["breaks"][0]["work"] = ["2027-01-04"]
    _refused(data, "provisional year has no make-up days")


def test_official_years_are_one_run() -> None:
    data = raw(CN_FILE)
    data["years"][2028]["official"] = True  # 2027 would be an unknown year inside the coverage
    _refused(data, r"official years \[2026, 2028\] have a gap")
    data = raw(CN_FILE)
    for year in data["years"].values():
        year["official"] = False
        for b in year["breaks"]:
            b.pop("work", None)
    _refused(data, "no official year")


def test_a_day_cannot_be_both_off_and_a_makeup_day() -> None:
    data = raw(CN_FILE)
    data["years"][2026]["breaks"][0]["work"] = ["2026-02-16"]
    _refused(data, "2026-02-16 is both a day off and a make-up working day")
    data = raw(CN_FILE)
    data["years"][2026]["breaks"][0]["work"] = ["2026-01-02"]
    _refused(data, "lies inside the break")


# --- the loader -------------------------------------------------------------------------------------------------
def test_a_pack_cannot_also_list_the_calendars_holidays(tmp_path: Path) -> None:
    pack = raw(BUILTIN_DIR / "telecom.yaml")
    pack["calendar"]["holidays"] = ["2027-01-01"]
    with pytest.raises(PolicyError, match=r"calendar\.holidays: comes from calendar 'cn'.*closures"):
        load_pack(dump(tmp_path / "telecom.yaml", pack))


def test_an_unknown_calendar_is_named(tmp_path: Path) -> None:
    pack = raw(BUILTIN_DIR / "telecom.yaml")
    pack["calendar"]["ref"] = "hk"
    _, problems = check_pack(dump(tmp_path / "telecom.yaml", pack))
    assert [(p.field, p.message.split(";")[0]) for p in problems] == [("calendar.ref", "unknown calendar 'hk'")]


def test_closures_add_to_the_calendar_and_a_bad_calendar_file_is_named(tmp_path: Path) -> None:
    pack = raw(BUILTIN_DIR / "telecom.yaml")
    pack["calendar"]["closures"] = ["2026-12-24"]
    pack["calendar"]["weekdays"] = [1, 2, 3, 4, 5, 6]  # a pack may keep its own weekly pattern
    spec = load_pack(dump(tmp_path / "telecom.yaml", pack)).calendar
    assert spec.closures == [date(2026, 12, 24)] and spec.weekdays == [1, 2, 3, 4, 5, 6] and spec.key == "cn@v1"
    assert not business_calendar(spec).is_working_day(date(2026, 12, 24))
    broken = raw(CN_FILE)
    broken["timezone"] = "Asia/Beijing"
    dump(tmp_path / CALENDARS / "cn.yaml", broken)  # the pack's own folder's calendars/ come last and win
    _, problems = check_pack(tmp_path / "telecom.yaml")
    assert [str(p) for p in problems] == [f"{tmp_path / CALENDARS / 'cn.yaml'}: timezone: unknown time zone "
                                          "'Asia/Beijing'"]
    renamed = raw(CN_FILE)
    dump(tmp_path / CALENDARS / "cn.yaml", {**renamed, "id": "prc"})
    assert "differs from the file name" in check_calendar(tmp_path / CALENDARS / "cn.yaml")[1][0].message


def test_an_operator_drops_in_next_years_schedule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The State Council publishes 2027: an operator's calendars/cn.yaml on KEFU_POLICY_PATH extends the coverage
    of every pack with a new version, and load_all sees it without a restart (its cache keys on the calendars)."""
    assert get_pack("finance").calendar.key == "cn@v1"
    data = raw(CN_FILE)
    data["version"] = 2
    data["years"][2027] = {"official": True, "source": "a 2027 notice (test data, not the real schedule)",
                           "breaks": [{"name": "元旦", "days": ["2027-01-01", "2027-01-03"]},
                                      {"name": "春节", "days": ["2027-02-05", "2027-02-12"],
                                       "work": ["2027-01-31", "2027-02-20"]}]}
    dump(tmp_path / CALENDARS / "cn.yaml", data)
    monkeypatch.setenv("KEFU_POLICY_PATH", str(tmp_path))
    packs = load_all()
    assert {p.calendar.key for p in packs.values()} == {"cn@v2"}
    spec = packs["finance"].calendar
    assert spec.covers is not None and spec.covers.last == date(2027, 12, 31)
    cal = business_calendar(spec)
    assert cal.day_kind(date(2027, 2, 20)) == "makeup" and cal.day_kind(date(2027, 2, 11)) == "holiday"
    assert not cal.provisional(sh(2027, 2, 4, 15, 0), sh(2027, 2, 22, 15, 0))


# --- the library and the refresh command --------------------------------------------------------------------------
def test_the_file_is_canonical_and_up_to_date_with_the_pinned_library() -> None:
    calendar = cn()
    assert refresh_calendar.render(calendar) == CN_FILE.read_text(encoding="utf-8")
    assert refresh_calendar.refreshed(calendar) == calendar
    assert refresh_calendar.disagreements(calendar) == []


def test_the_librarys_2026_notice_gives_the_typed_breaks() -> None:
    theirs = refresh_calendar.library_year("cn", 2026, [1, 2, 3, 4, 5])
    assert theirs.official and theirs.breaks == cn().years[2026].breaks
    assert not refresh_calendar.library_year("cn", 2027, [1, 2, 3, 4, 5]).official  # holidays 0.108: no notice


def test_a_typing_error_in_an_official_year_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = raw(CN_FILE)
    data["years"][2026]["breaks"][3]["work"] = ["2026-05-10"]  # a Sunday instead of Saturday May 9
    path = dump(tmp_path / "cn.yaml", data)
    assert refresh_calendar.main(["cn", "--file", str(path)]) == 1
    out = capsys.readouterr().out
    assert "differs: 2026-05-09: the file says off, holidays 0.108 says working" in out
    assert "differs: 2026-05-10: the file says working" in out
    assert refresh_calendar.main(["cn", "--file", str(path), "--write"]) == 0
    assert check_calendar(path)[0] == JurisdictionCalendar.model_validate(data)  # official years stay as typed


def test_refresh_imports_a_published_year_and_raises_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    real = refresh_calendar.library_year

    def with_2027(calendar_id: str, year: int, weekdays: list[int]) -> Any:
        found = real(calendar_id, year, weekdays)
        return found.model_copy(update={"official": True}) if year == 2027 else found

    monkeypatch.setattr(refresh_calendar, "library_year", with_2027)
    new = refresh_calendar.refreshed(cn())
    assert new.key == "cn@v2" and new.covers.last == date(2027, 12, 31) and max(new.years) == 2032


# --- coverage warnings (doctor, worker) -----------------------------------------------------------------------------
def test_coverage_warns_within_60_days_and_after_the_end() -> None:
    packs = load_all()
    assert coverage_warnings(packs, datetime(2026, 10, 31, tzinfo=UTC)) == []  # 61 days left
    [line] = coverage_warnings(packs, datetime(2026, 12, 1, 4, 0, tzinfo=UTC))
    assert line.startswith("calendar cn@v1 covers official schedules until 2026-12-31 (30 days left), used by "
                           "finance, general, service_center, telecom: deadlines after it are provisional")
    assert "2027 schedule" in line
    [line] = coverage_warnings(packs, datetime(2027, 1, 2, tzinfo=UTC))
    assert "ran out on 2026-12-31" in line


def test_a_pack_listing_its_own_holidays_is_told_it_cannot_warn() -> None:
    legacy = get_pack("telecom").model_copy(update={"calendar": cn_2026_spec()})
    assert coverage_warnings({"telecom": legacy}, datetime(2026, 1, 1, tzinfo=UTC)) == []  # telecom: 24x7 only
    service = get_pack("service_center").model_copy(update={"calendar": cn_2026_spec()})
    [line] = coverage_warnings({"service_center": service}, datetime(2026, 1, 1, tzinfo=UTC))
    assert line.startswith("pack service_center: its calendar lists its own holidays")
