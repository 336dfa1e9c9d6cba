"""`python -m bench --quick` with tiny counts on a real dev server: the JSON has every figure, the lifecycle
completes, deadlines fire. CI sees a regression in the throughput ratio or the history size here: the figures are
reported as a warning (BenchFigures) in the pytest summary of `make test`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class BenchFigures(UserWarning):
    """Not a problem: the smoke run's headline figures, so that they show in CI's pytest summary."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.integration
def test_bench_quick_smoke(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    port = _free_port()
    while port + 1000 > 65535:
        port = _free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--requests", "4", "--rounds", "2", "--concurrency", "4",
         "--scale", "20", "--latency-seconds", "2", "--breach-requests", "4", "--port", str(port), "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)  # ~30 s quiet; a guard against a hang, not a budget
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    t = result["throughput"]
    for key in ("lifecycle_per_s", "bare_per_s", "bare_local_per_s", "ratio", "ratio_spread", "ratio_rounds",
                "ratio_vs_local", "bare_activities", "happy_path_events", "events_per_type", "inquiry_breakdown"):
        assert key in t, key
    assert t["ratio"] > 0 and t["ratio_vs_local"] > 0 and t["bare_activities"] > 0
    assert len(t["ratio_rounds"]) == 2 and t["ratio_min"] <= t["ratio"] <= t["ratio_max"]
    assert set(t["events_per_type"]) == {"inquiry", "complaint", "suggestion", "repair", "transaction"}
    assert all(0 < events < 200 for events in t["events_per_type"].values())  # a happy path stays small (59)
    assert t["inquiry_breakdown"]["total"] == t["events_per_type"]["inquiry"]
    assert 0 < t["happy_path_events"] < 200
    lat = result["latency"]
    assert lat["updates"] > 0 and 0 < lat["act_p50_ms"] <= lat["act_p99_ms"]
    b = result["breach"]
    assert b["requests"] == 4 and b["late_p50_s"] is not None and b["late_p50_s"] <= b["late_p99_s"]
    scale = result["scale"]
    assert {"start_per_s", "worker_rss_mib", "server_rss_mib", "max_cached_workflows", "samples"} <= set(scale)
    assert scale["completed"] and scale["start_per_s"] > 0 and scale["worker_rss_mib"] > 0
    assert scale["deadlines_fired"] == scale["probes"] == scale["open_requests"] == 20  # every deadline fired
    assert scale["late_sample"] == 20
    for phase in ("throughput", "latency", "breach", "scale"):
        assert result[phase]["phase_seconds"] > 0 and "cpu_seconds" in result[phase]
    assert isinstance(result["over_budget"], bool) and result["budget_seconds"] == 60
    assert "ratio" in proc.stdout  # the summary table was printed
    warnings.warn(BenchFigures(
        f"bench --quick (tiny counts, {result['wall_seconds']} s): throughput ratio {t['ratio']} "
        f"(rounds {t['ratio_rounds']}, load average {t['load_average_per_round']}); happy path "
        f"{t['happy_path_events']} events; act p50/p99 {lat['act_p50_ms']}/{lat['act_p99_ms']} ms; "
        f"deadlines fired {scale['deadlines_fired']}/{scale['open_requests']}"), stacklevel=1)
