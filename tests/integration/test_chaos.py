"""Issue 7, small size: no request is lost when the worker process is SIGKILLed mid-run, and open requests and
their timers survive a restart of the file-backed dev server. The full size is `python -m bench.chaos`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import server_restart, worker_crash

pytestmark = pytest.mark.integration


async def test_worker_sigkill_loses_and_duplicates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEFU_POLICY_PATH", "")  # worker_crash sets it for this process; restored afterwards
    result = await worker_crash(requests=20, kills=3, seed=11, work=tmp_path, budget_s=150)
    assert result["kills"] == 3 and all(result["in_flight_at_kills"]), result  # every kill hit live requests
    assert result["failures"] == [] and result["problems"] == [], result
    assert result["lost"] == 0 and result["completed"] == 20, result
    assert result["duplicates"] == 0, result


async def test_open_requests_and_timers_survive_a_server_restart(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEFU_POLICY_PATH", "")
    result = await server_restart(requests=10, first_response_s=8, down_s=6, work=tmp_path)
    assert result["deadlines_passed_while_down"] > 0, result
    assert result["breached"] == 10 and result["running"] == 10, result
