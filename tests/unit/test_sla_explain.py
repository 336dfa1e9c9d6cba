"""`kefu sla` explanation: deadlines and the reasons behind them (SEEDS §4.1, §4.4)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bench.calendar_bench import cn_2026_spec
from cli.sla_explain import explain, render_text
from models.policy import PolicyPack

SH = ZoneInfo("Asia/Shanghai")


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
