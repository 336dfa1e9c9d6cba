"""`make bench`: every dev-server benchmark in one run on one embedded dev server, a summary table, and JSON.

    python -m bench [--quick] [--json FILE] [--scale N] [--only throughput,latency,breach,scale]

Phases, in order (the open requests of `scale` come last so they do not load the others):
  throughput  full-lifecycle requests/s over a bare workflow running as many no-op activities (target >= 1.0);
              history events per happy path and per request type
  latency     agent `act` update round trip p50/p99 with lifecycles arriving at ~50 % of the measured peak
  breach      timer precision: breach recorded vs exact deadline (bench.breach_bench.breach_lateness)
  scale       N open requests with armed timers: start rate, worker and server RSS, deadlines still fire
`--quick` (CI smoke, under a minute) uses tiny counts; the default run takes a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive.store import Archive
from bench import latency, scale, throughput
from bench.bare import bare_worker
from bench.breach_bench import breach_lateness, write_fast_pack
from logconfig import configure_logging
from worker import build_worker, connect_when_ready, dev_server

PHASES = ("throughput", "latency", "breach", "scale")
TASK_QUEUE = "kefu-bench"
CUSTOMER_WINDOW_S = 120  # confirmation and survey windows: the bench answers at once, well inside them
REVISIT_DELAY_S = 1

PROFILES: dict[str, dict[str, Any]] = {
    "quick": {"requests": 20, "rounds": 1, "concurrency": 20, "latency_s": 4.0, "breach_requests": 10,
              "breach_first_response_s": 3, "scale": 200},
    "normal": {"requests": 200, "rounds": 2, "concurrency": 50, "latency_s": 30.0, "breach_requests": 60,
               "breach_first_response_s": 8, "scale": 2000},
}


def worker_settings(worker: Any) -> dict[str, Any]:
    config = worker.config()
    keys = ("max_cached_workflows", "max_concurrent_workflow_tasks", "max_concurrent_activities",
            "max_concurrent_local_activities", "workflow_task_poller_behavior", "activity_task_poller_behavior",
            "nonsticky_to_sticky_poll_ratio")
    return {key: str(config.get(key)) for key in keys}


async def run(opts: dict[str, Any], phases: list[str], port: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="kefu-bench-"))
    os.environ["KEFU_POLICY_PATH"] = str(work)
    life = write_fast_pack(work, None, "bench_life", CUSTOMER_WINDOW_S, REVISIT_DELAY_S)
    fast = write_fast_pack(work, opts["breach_first_response_s"], "bench_sc")
    open_target = scale.breach_target_s(opts["scale"])
    held = write_fast_pack(work, open_target, "bench_open")
    result: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                              "command": " ".join(["python -m bench", *sys.argv[1:]]),
                              "profile": opts, "machine_cores": os.cpu_count(), "state_dir": str(work)}
    began = time.monotonic()
    async with dev_server(port=port, ui_port=port + 1000, state_dir=work) as address:
        client = await connect_when_ready(address)
        archive = Archive(f"sqlite:///{work / 'bench.db'}")
        kefu = build_worker(client, archive, task_queue=TASK_QUEUE)
        result["worker"] = worker_settings(kefu)
        async with kefu, bare_worker(client):
            if "throughput" in phases:
                mark = time.monotonic()
                result["throughput"] = await throughput.measure(
                    client, TASK_QUEUE, life, opts["requests"], opts["concurrency"], opts["rounds"],
                    REVISIT_DELAY_S)
                result["throughput"]["phase_seconds"] = round(time.monotonic() - mark, 1)
            if "latency" in phases:
                mark = time.monotonic()
                peak = result.get("throughput", {}).get("lifecycle_per_s") or 10.0
                result["latency"] = {"peak_per_s": peak, **await latency.measure(
                    client, TASK_QUEUE, life, peak / 2, opts["latency_s"], REVISIT_DELAY_S)}
                result["latency"]["offered_over_peak"] = round(result["latency"]["offered_per_s"] / peak, 2)
                result["latency"]["phase_seconds"] = round(time.monotonic() - mark, 1)
            if "breach" in phases:
                mark = time.monotonic()
                progress = throughput.Progress("breach lateness", 1)
                result["breach"] = await breach_lateness(client, TASK_QUEUE, fast, opts["breach_requests"])
                progress.step()
                result["breach"]["phase_seconds"] = round(time.monotonic() - mark, 1)
            if "scale" in phases:
                mark = time.monotonic()
                result["scale"] = await scale.measure(client, TASK_QUEUE, held, opts["scale"], archive, port,
                                                      open_target)
                result["scale"]["phase_seconds"] = round(time.monotonic() - mark, 1)
    result["wall_seconds"] = round(time.monotonic() - began, 1)
    return result


def summary(result: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []
    t = result.get("throughput")
    if t:
        rows += [
            ("throughput ratio: lifecycle / bare (target >= 1.0)",
             f"{t['ratio']} ({t['lifecycle_per_s']}/s vs {t['bare_per_s']}/s, {t['bare_activities']} activities)"),
            ("  ratio vs bare with local activities", f"{t['ratio_vs_local']} (bare local {t['bare_local_per_s']}/s)"),
            ("history events per happy path (inquiry)",
             f"{t['happy_path_events']} (mean of {t['happy_path_sampled']})"),
            ("history events per request type",
             " / ".join(f"{k} {v}" for k, v in t["events_per_type"].items())),
        ]
    lat = result.get("latency")
    if lat:
        rows.append(("act update round trip p50 / p99",
                     f"{lat['act_p50_ms']} / {lat['act_p99_ms']} ms at {lat['offered_over_peak']} of peak "
                     f"({lat['updates']} updates)"))
    b = result.get("breach")
    if b:
        rows.append((f"breach lateness p50 / p99 ({b['requests']} together)",
                     f"{b['late_p50_s']} / {b['late_p99_s']} s; 5-min poller mean = {b['poll_mean_over_p99']}x p99"))
    s = result.get("scale")
    if s:
        rows += [
            (f"open requests held ({s['open_requests']}): start rate", f"{s['start_per_s']}/s"),
            ("  deadlines fired", f"{s['deadlines_fired']}/{s['open_requests']} (late p50 / p99 "
                                  f"{s['late_p50_s']} / {s['late_p99_s']} s, sample {s['late_sample']})"),
            ("  worker RSS (this process)",
             f"{s['worker_rss_mib']} MiB, +{s['worker_kib_per_open_request']} KiB per open request"),
            ("  dev server RSS",
             f"{s['server_rss_mib']} MiB, +{s['server_kib_per_open_request']} KiB per open request"),
        ]
    rows.append(("wall time", f"{result['wall_seconds']} s"))
    width = max(len(name) for name, _ in rows)
    head = f"{'measure':<{width}}  figure"
    return "\n".join([head, "-" * len(head), *(f"{name:<{width}}  {value}" for name, value in rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts: a smoke run under a minute")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--scale", type=int, help="open requests held (default 200 quick, 2000 normal)")
    parser.add_argument("--requests", type=int, help="lifecycles (and bare workflows) per throughput round")
    parser.add_argument("--concurrency", type=int, help="lifecycles in flight during the throughput phase")
    parser.add_argument("--latency-seconds", type=float, dest="latency_s", help="length of the latency phase")
    parser.add_argument("--breach-requests", type=int, dest="breach_requests", help="requests breaching together")
    parser.add_argument("--only", help=f"comma-separated phases of {','.join(PHASES)}")
    parser.add_argument("--port", type=int, default=7392)
    args = parser.parse_args(argv)
    opts = dict(PROFILES["quick" if args.quick else "normal"])
    for key in ("scale", "requests", "concurrency", "latency_s", "breach_requests"):
        if getattr(args, key) is not None:
            opts[key] = getattr(args, key)
    phases = [p for p in (args.only.split(",") if args.only else PHASES) if p]
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"--only: unknown phase(s) {', '.join(sorted(unknown))}")
    configure_logging(level="WARNING")
    result = asyncio.run(run(opts, phases, args.port))
    print(summary(result))
    if args.json:
        with contextlib.suppress(FileExistsError):
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    return 0
