"""`kefu sla` explanation: deadlines and the reasons behind them (SEEDS §4.1, §4.4)."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bench.calendar_bench import cn_2026_spec
from cli.main import main as kefu
from cli.sla_explain import explain, render_text
from models.policy import PolicyPack
from policies.loader import get_pack

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def _no_operator_packs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEFU_POLICY_PATH", raising=False)


def pack() -> PolicyPack:
    clocks = {
        "first_response": {"target": "10m", "calendar": "24x7", "source": "002 §2.1.2"},
        "handling": {"target": "24h", "calendar": "24x7", "source": "002 §2.1.3"},
        "closure": {"target": "3d", "calendar": "business", "source": "002 §2.1.3, §2.2.2"},
    }
    return PolicyPack.model_validate(
        {
            "id": "test_pack",
            "version": 1,
            "title": "test",
            "manual": "002",
            "calendar": cn_2026_spec().model_dump(),
            "channels": ["phone"],
            "request_types": ["inquiry"],
            "classes": {"normal": {"label": "普通 normal", "clocks": clocks, "retention_years": 5}},
            "classification": {"default_priority": "normal"},
            "complaint_grades": {"major": {"label": "重大", "start_level": 0}},
            "escalation": [{"level": 0, "role": "agent", "title": "Agent"}],
            "extensions": {"max_count": 1},
            "closure": {"confirmation_window": "72h"},
            "revisit": {"delay": "1d", "window": "3d", "reopen_below": 60, "reopen_cap": 2},
        }
    )


def test_explains_three_working_days_across_national_day() -> None:
    result = explain(pack(), "normal", datetime(2026, 9, 30, 17, 0, tzinfo=SH))
    assert result["policy"] == "test_pack@v1"
    clocks = {c["clock"]: c for c in result["clocks"]}
    assert list(clocks) == ["first_response", "handling", "closure"]
    closure = clocks["closure"]
    assert closure["calendar"] == "business" and closure["target_seconds"] == 81000
    assert closure["deadline_utc"] == "2026-10-10T09:00:00Z"
    assert closure["deadline_local"] == "2026-10-10T17:00:00+08:00"
    lines = closure["reasoning"]
    assert lines[0].startswith("start 2026-09-30 17:00 +08:00 (Wednesday) is a working day")
    assert "3 working day(s) = 3 × 27000 s = 81000 working seconds" in lines
    assert "skips holidays 2026-10-01..2026-10-07" in lines
    assert any(line.startswith("2026-10-10 (Saturday) is a make-up working day") for line in lines)
    assert clocks["first_response"]["deadline_utc"] == "2026-09-30T09:10:00Z"
    assert [w["fraction"] for w in closure["warnings"]] == [0.5, 0.8]


def test_start_outside_hours_and_naive_start_in_pack_zone() -> None:
    result = explain(pack(), "normal", datetime(2026, 10, 2, 10, 0))  # naive: read as Asia/Shanghai
    closure = result["clocks"][2]
    first_line = closure["reasoning"][0]
    assert "is a holiday, not counted: counting begins at the next opening 2026-10-08 09:00 +08:00" in first_line
    assert result["start_utc"] == "2026-10-02T02:00:00Z"


def test_24x7_clock_notes_business_hours() -> None:
    handling = explain(pack(), "normal", datetime(2026, 9, 30, 17, 0, tzinfo=SH))["clocks"][1]
    assert handling["deadline_utc"] == "2026-10-01T09:00:00Z"
    assert "24 h = 86400 s of absolute time" in handling["reasoning"]
    assert any("outside business hours" in line for line in handling["reasoning"])


def test_unknown_class() -> None:
    with pytest.raises(ValueError, match="unknown service class 'vip'"):
        explain(pack(), "vip", datetime(2026, 9, 30, 17, 0, tzinfo=SH))


def test_render_text() -> None:
    text = render_text(explain(pack(), "normal", datetime(2026, 9, 30, 17, 0, tzinfo=SH)))
    assert "closure: 3d (business, 81000 s) → deadline 2026-10-10T17:00:00+08:00 = 2026-10-10T09:00:00Z" in text
    assert "  - skips holidays 2026-10-01..2026-10-07" in text
    assert text.endswith("\n")


# --- issue 16: calendars that never silently run out ------------------------------------------------------------
def test_kefu_sla_past_the_calendar_skips_new_years_day_2027_and_says_provisional(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert kefu(["sla", "service_center", "normal", "--start", "2026-12-31T15:00+08:00"]) == 0
    text = capsys.readouterr().out
    assert ("closure: 3d (business, 81000 s) → deadline 2027-01-06T15:00:00+08:00 = 2027-01-06T07:00:00Z "
            "(provisional)") in text
    assert "  - skips statutory holidays 2027-01-01..2027-01-03 (provisional)" in text
    assert "counts 1 full working day(s) 2027-01-01" not in text
    assert "outside the official schedules of calendar cn@v1 (2026-01-01..2026-12-31)" in text
    assert "handling: 24h (24x7, 86400 s) → deadline 2027-01-01T15:00:00+08:00 = 2027-01-01T07:00:00Z\n" in text

    assert kefu(["sla", "service_center", "normal", "--start", "2026-12-31T15:00+08:00", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["calendar"] == {"key": "cn@v1", "covers": {"first": "2026-01-01", "last": "2026-12-31"}}
    assert [(c["clock"], c["provisional"]) for c in result["clocks"]] == [
        ("first_response", False), ("handling", False), ("closure", True)]


def test_a_deadline_inside_the_covered_year_is_not_provisional() -> None:
    result = explain(get_pack("service_center"), "normal", datetime(2026, 9, 30, 17, 0, tzinfo=SH))
    closure = result["clocks"][2]
    assert closure["deadline_local"] == "2026-10-10T17:00:00+08:00" and not closure["provisional"]
    assert not any("provisional" in line for line in closure["reasoning"])
    assert "(provisional)" not in render_text(result)


def test_a_pack_listing_its_own_holidays_is_never_provisional() -> None:
    closure = explain(pack(), "normal", datetime(2026, 12, 31, 15, 0, tzinfo=SH))["clocks"][2]
    assert closure["deadline_local"] == "2027-01-05T15:00:00+08:00" and not closure["provisional"]
