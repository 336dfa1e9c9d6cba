"""`python -m bench --quick` with tiny counts on a real dev server: the JSON has every figure, the lifecycle
completes, deadlines fire. CI sees a regression in the throughput ratio or the history size here."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


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
        [sys.executable, "-m", "bench", "--quick", "--requests", "6", "--concurrency", "6", "--scale", "20",
         "--latency-seconds", "2", "--breach-requests", "4", "--port", str(port), "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    t = result["throughput"]
    for key in ("lifecycle_per_s", "bare_per_s", "bare_local_per_s", "ratio", "ratio_vs_local", "bare_activities",
                "happy_path_events", "events_per_type"):
        assert key in t, key
    assert t["ratio"] > 0 and t["bare_activities"] > 0
    assert set(t["events_per_type"]) == {"inquiry", "complaint", "suggestion", "repair", "transaction"}
    assert t["happy_path_events"] < 200  # a happy path stays small (57 events when written)
    assert {"act_p50_ms", "act_p99_ms", "offered_over_peak"} <= set(result["latency"])
    assert {"late_p50_s", "late_p99_s", "requests"} <= set(result["breach"])
    scale = result["scale"]
    assert {"start_per_s", "worker_rss_mib", "server_rss_mib", "deadlines_fired"} <= set(scale)
    assert scale["deadlines_fired"] == scale["open_requests"] == 20
    assert "ratio" in proc.stdout  # the summary table was printed
