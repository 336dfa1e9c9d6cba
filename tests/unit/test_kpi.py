"""KPI figures (SEEDS §9) against ten projection rows whose expected values were worked out by hand.

Times are UTC; the report's days, hours and weekdays are Asia/Shanghai (UTC+8). 2026-06-01 is a Monday.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reports.kpi import compute, render_text

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
M, H, D = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


def row(request_id: str, accepted: datetime, *, policy: str = "service_center", channel: str, type_: str,
        priority: str, stage: str = "completed", fr: timedelta | None = None, res: timedelta | None = None,
        closed: timedelta | None = None, done: timedelta | None = None, breached: list[str] | None = None,
        esc: int = 0, reopen: int = 0, sat: int | None = None, nps: int | None = None,
        fcr: bool = False) -> dict[str, Any]:
    def at(delta: timedelta | None) -> datetime | None:
        return accepted + delta if delta is not None else None

    return {"request_id": request_id, "ticket": f"KF-{request_id}", "workflow_id": f"kefu-sr-{request_id}",
            "policy_id": policy, "channel": channel, "request_type": type_, "priority": priority, "stage": stage,
            "accepted_at": accepted, "first_response_at": at(fr), "resolved_at": at(res), "closed_at": at(closed),
            "completed_at": at(done), "breached_clocks": breached or [], "escalation_level": esc,
            "reopen_count": reopen, "satisfaction": sat, "nps": nps, "first_contact_resolution": fcr}


def t(day: int, hour: int) -> datetime:
    return datetime(2026, 6, day, hour, tzinfo=UTC)


ROWS = [
    row("r1", t(1, 0), channel="phone", type_="inquiry", priority="normal", fr=10 * M, res=2 * H, closed=3 * H,
        done=D, sat=95, nps=10),
    row("r2", t(1, 2), channel="phone", type_="complaint", priority="urgent", fr=30 * M, res=10 * H, closed=11 * H,
        done=2 * D, breached=["first_response"], esc=1, sat=80, nps=6),
    row("r3", t(2, 1), channel="web", type_="repair", priority="normal", fr=5 * M, res=H, closed=2 * H, done=D,
        reopen=1, sat=90, nps=9),
    row("r4", t(2, 3), channel="chatbot", type_="inquiry", priority="normal", fr=0 * M, res=0 * M, closed=M, done=D,
        sat=100, nps=10, fcr=True),
    row("r5", t(3, 4), channel="app", type_="repair", priority="urgent", fr=20 * M, res=20 * H, closed=30 * H,
        done=2 * D, breached=["handling", "closure"], esc=2, sat=70, nps=3),
    row("r6", t(3, 5), policy="telecom", channel="phone", type_="complaint", priority="important", fr=15 * M,
        res=5 * H, closed=6 * H, done=D, sat=88, nps=8),  # 88 is below telecom's 90: not satisfied
    row("r7", t(8, 12), channel="web", type_="inquiry", priority="normal", stage="handling", fr=M),
    row("r8", t(5, 12), channel="phone", type_="complaint", priority="urgent", stage="handling",
        breached=["first_response"], esc=3),
    row("r9", t(10, 6), channel="email", type_="suggestion", priority="normal", stage="accepted"),
    row("r10", t(9, 0), channel="app", type_="transaction", priority="normal", stage="resolved", fr=40 * M,
        res=30 * H, esc=1),
]
THRESHOLDS = {"service_center": 85, "telecom": 90}


@pytest.fixture(scope="module")
def k() -> dict[str, Any]:
    return compute(ROWS, NOW, csat_thresholds=THRESHOLDS)


def test_volume(k: dict[str, Any]) -> None:
    assert k["volume"]["total"] == 10
    assert list(k["volume"]["by_channel"].items()) == [("phone", 4), ("app", 2), ("web", 2), ("chatbot", 1),
                                                       ("email", 1)]
    assert k["volume"]["by_type"] == {"inquiry": 3, "complaint": 3, "repair": 2, "suggestion": 1, "transaction": 1}
    assert k["volume"]["by_priority"] == {"normal": 6, "urgent": 3, "important": 1}


def test_first_response_and_resolution_times(k: dict[str, Any]) -> None:
    # first response (s): 0 60 300 600 900 1200 1800 2400 -> mean 7260/8; p50 between 600 and 900; p90 at rank 6.3
    assert k["first_response_time"] == {"n": 8, "mean": 907.5, "p50": 750.0, "p90": pytest.approx(1980.0)}
    # resolution (s): 0 3600 7200 18000 36000 72000 108000 -> mean 244800/7; p50 18000; p90 at rank 5.4
    res = k["resolution_time"]
    assert (res["n"], res["p50"]) == (7, 18000.0)
    assert res["mean"] == pytest.approx(34971.43, abs=0.01)
    assert res["p90"] == pytest.approx(86400.0)


def test_sla_compliance_per_clock(k: dict[str, Any]) -> None:
    sla = k["sla"]
    # r8 never responded but breached: settled; r9 has not responded and not breached: not settled
    assert (sla["first_response"]["settled"], sla["first_response"]["breached"]) == (9, 2)
    assert sla["first_response"]["compliance"] == pytest.approx(7 / 9)
    assert (sla["handling"]["settled"], sla["handling"]["breached"], sla["handling"]["met"]) == (7, 1, 6)
    assert sla["closure"]["compliance"] == pytest.approx(5 / 6)
    assert (sla["revisit"]["settled"], sla["revisit"]["compliance"]) == (6, 1.0)
    assert (sla["all"]["met"], sla["all"]["compliance"]) == (7, 0.7)  # service conformity


def test_rates(k: dict[str, Any]) -> None:
    assert k["first_contact_resolution"] == {"n": 7, "count": 1, "rate": pytest.approx(1 / 7)}
    assert k["reopen"] == {"n": 6, "count": 1, "rate": pytest.approx(1 / 6)}
    assert k["escalation"] == {"n": 10, "count": 4, "rate": 0.4}
    assert k["complaint"] == {"n": 10, "count": 3, "rate": 0.3}


def test_csat_uses_each_packs_threshold_and_nps(k: dict[str, Any]) -> None:
    csat = k["csat"]
    assert (csat["n"], csat["satisfied"], csat["rate"]) == (6, 3, 0.5)  # r1 95, r3 90, r4 100
    assert csat["mean_score"] == pytest.approx(523 / 6)
    nps = k["nps"]
    assert (nps["n"], nps["promoters"], nps["passives"], nps["detractors"]) == (6, 3, 1, 2)
    assert nps["score"] == pytest.approx(100 / 6)
    # an unknown pack falls back to 85: r6's 88 then counts
    assert compute(ROWS, NOW)["csat"]["satisfied"] == 4


def test_backlog_and_aging(k: dict[str, Any]) -> None:
    backlog = k["backlog"]
    assert backlog["open"] == 4
    handling = backlog["by_stage"]["handling"]  # r7 2 days old, r8 5 days
    assert (handling["count"], handling["mean_age"], handling["max_age"]) == (2, 302400.0, 432000.0)
    assert handling["buckets"] == {"< 1 d": 0, "1–3 d": 1, "3–7 d": 1, "≥ 7 d": 0}
    assert backlog["by_stage"]["accepted"]["buckets"]["< 1 d"] == 1  # r9, 6 h
    assert backlog["by_stage"]["resolved"]["max_age"] == 129600.0  # r10, 1.5 days
    assert backlog["by_stage"]["closed"]["count"] == 0
    assert "completed" not in backlog["by_stage"]


def test_trend_by_local_day_with_quiet_days(k: dict[str, Any]) -> None:
    trend = {d["day"]: (d["volume"], d["compliant"]) for d in k["trend"]}
    assert list(trend) == [f"2026-06-{d:02d}" for d in range(1, 11)]
    assert trend["2026-06-01"] == (2, 1)
    assert trend["2026-06-03"] == (2, 1)
    assert trend["2026-06-04"] == (0, 0)
    assert trend["2026-06-05"] == (1, 0)
    assert trend["2026-06-10"] == (1, 1)  # r9: 06:00 UTC is 14:00 in Shanghai


def test_heatmap_in_shanghai_time(k: dict[str, Any]) -> None:
    heat = k["heatmap"]["counts"]
    # without breach events: at acceptance; r2 Mon 10:00, r5 (two clocks) Wed 12:00, r8 Fri 20:00 (CST)
    assert (heat[0][10], heat[2][12], heat[4][20]) == (1, 2, 1)
    assert k["heatmap"]["total"] == 4 == sum(map(sum, heat))
    events = [{"request_id": "r2", "clock": "first_response", "at": "2026-06-01T02:10:00+00:00"},
              {"request_id": "elsewhere", "clock": "handling", "at": "2026-06-02T02:10:00+00:00"}]
    placed = compute(ROWS, NOW, breaches=events)["heatmap"]
    assert placed["total"] == 1
    assert placed["counts"][0][10] == 1


def test_empty_period_and_text() -> None:
    empty = compute([], NOW)
    assert empty["csat"]["rate"] is None and empty["first_response_time"]["p50"] is None
    assert "0 requests" in render_text(empty)
    text = render_text(compute(ROWS, NOW, csat_thresholds=THRESHOLDS))
    assert "first response" in text and "77.8%" in text and "+17" in text
