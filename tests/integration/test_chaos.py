"""Issues 7 and 15, small size: no request, audit row or notice is lost or duplicated when the worker process is
SIGKILLed mid-run and the dev server restarts in between, and open requests and their timers survive a restart of
the file-backed dev server. The full size is `python -m bench.chaos` (docs/performance.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import chaos, server_restart

pytestmark = pytest.mark.integration


async def test_worker_kills_and_a_server_restart_lose_and_duplicate_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEFU_POLICY_PATH", "")  # chaos() sets it for this process; restored afterwards
    result = await chaos(requests=20, kills=3, restarts=1, seed=11, work=tmp_path, budget_s=180, down_s=3)
    assert result["kills"] == 3 and result["restarts"] == 1, result
    # every event hit live requests
    assert all(result["in_flight_at_kills"]) and all(r["in_flight"] for r in result["restart_moments"]), result
    assert result["failures"] == [] and result["problems"] == [], result
    assert result["lost"] == 0 and result["lost_rows"] == 0 and result["completed"] == 20, result
    assert result["duplicates"] == 0, result


async def test_open_requests_and_timers_survive_a_server_restart(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEFU_POLICY_PATH", "")
    result = await server_restart(requests=10, first_response_s=8, down_s=6, work=tmp_path)
    assert result["deadlines_passed_while_down"] > 0, result
    assert result["breached"] == 10 and result["running"] == 10, result
