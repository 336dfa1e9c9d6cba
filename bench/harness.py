"""`make bench`: every dev-server benchmark in one run on one embedded dev server, a summary table, and JSON.

    python -m bench [--quick] [--json FILE] [--scale N] [--only throughput,latency,breach,scale]

Phases, in order (the open requests of `scale` come last so they do not load the others):
  throughput  full-lifecycle requests/s over a bare workflow running as many no-op activities (target >= 1.0);
              history events per happy path and per request type
  latency     agent `act` update round trip p50/p99 with lifecycles arriving at ~50 % of the measured peak
  breach      timer precision: breach recorded vs exact deadline (bench.breach_bench.breach_lateness)
  scale       N open requests with armed timers: start rate, worker and server RSS, deadlines still fire
`--quick` (CI smoke) must finish within 60 s and the default run within 600 s (BUDGET_S): past that the harness
prints a warning and the JSON says `over_budget: true`. `phase_seconds` and `cpu_seconds` (this process = worker
+ client + driver, and the dev server) per phase show where the time goes.
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
from infra.logconfig import configure_logging
from worker import build_worker, connect_when_ready, dev_server

PHASES = ("throughput", "latency", "breach", "scale")
TASK_QUEUE = "kefu-bench"
CUSTOMER_WINDOW_S = 120  # confirmation and survey windows: the bench answers at once, well inside them
REVISIT_DELAY_S = 1

PROFILES: dict[str, dict[str, Any]] = {
    # throughput: `rounds` x (lifecycle batch + bare batch + bare-local batch) of `requests` each, `concurrency` in
    # flight; scale: starts with `scale_concurrency` calls in flight and at most `scale_backlog` started requests
    # whose first workflow task has not run yet (a deeper backlog only queues in the worker: first tasks then pass
    # the 10 s workflow-task timeout and are retried). Throughput runs enough in flight to saturate the worker:
    # with few in flight the lifecycle's own waits (confirmation, the revisit delay) set its rate, not its cost.
    "quick": {"requests": 20, "rounds": 3, "concurrency": 20, "latency_s": 4.0, "breach_requests": 10,
              "breach_first_response_s": 3, "scale": 40, "probe_every": 1, "probe_target_s": 5,
              "scale_concurrency": 10, "scale_backlog": 20},
    "normal": {"requests": 40, "rounds": 6, "concurrency": 30, "latency_s": 20.0, "breach_requests": 60,
               "breach_first_response_s": 8, "scale": 500, "probe_every": 5, "probe_target_s": 20,
               "scale_concurrency": 20, "scale_backlog": 40},
}
BUDGET_S = {"quick": 60.0, "normal": 600.0}


def worker_settings(worker: Any) -> dict[str, Any]:
    config = worker.config()
    keys = ("max_cached_workflows", "max_concurrent_workflow_tasks", "max_concurrent_activities",
            "max_concurrent_local_activities", "workflow_task_poller_behavior", "activity_task_poller_behavior",
            "nonsticky_to_sticky_poll_ratio")
    return {key: str(config.get(key)) for key in keys}


class Phase:
    """Wall and CPU seconds of one phase, for this process and the dev server."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.mark, self.cpu, self.server_cpu = time.monotonic(), scale.cpu_seconds(), self._server()

    def _server(self) -> float:
        return scale.cpu_seconds(self.server_pid) if self.server_pid else 0.0

    def stamp(self, into: dict[str, Any]) -> None:
        into["phase_seconds"] = round(time.monotonic() - self.mark, 1)
        into["cpu_seconds"] = {"worker": round(scale.cpu_seconds() - self.cpu, 1),
                               "server": round(self._server() - self.server_cpu, 1)}


async def run(opts: dict[str, Any], phases: list[str], port: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="kefu-bench-"))
    os.environ["KEFU_POLICY_PATH"] = str(work)
    life = write_fast_pack(work, None, "bench_life", CUSTOMER_WINDOW_S, REVISIT_DELAY_S)
    fast = write_fast_pack(work, opts["breach_first_response_s"], "bench_sc")
    bulk, probe = scale.write_packs(work, opts["probe_target_s"])
    result: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                              "command": " ".join(["python -m bench", *sys.argv[1:]]),
                              "profile": opts, "machine_cores": os.cpu_count(),
                              "load_average_before": [round(x, 2) for x in os.getloadavg()], "state_dir": str(work)}
    began = time.monotonic()
    async with dev_server(port=port, ui_port=port + 1000, state_dir=work) as address:
        client = await connect_when_ready(address)
        server_pid = scale.dev_server_pid(port)
        archive = Archive(f"sqlite:///{work / 'bench.db'}")
        kefu = build_worker(client, archive, task_queue=TASK_QUEUE)
        result["worker"] = worker_settings(kefu)
        result["startup_seconds"] = round(time.monotonic() - began, 1)
        async with kefu, bare_worker(client):
            if "throughput" in phases:
                phase = Phase(server_pid)
                result["throughput"] = await throughput.measure(
                    client, TASK_QUEUE, life, opts["requests"], opts["concurrency"], opts["rounds"],
                    REVISIT_DELAY_S)
                phase.stamp(result["throughput"])
            if "latency" in phases:
                phase = Phase(server_pid)
                peak = result.get("throughput", {}).get("lifecycle_per_s") or 3.0
                result["latency"] = {"peak_per_s": peak, **await latency.measure(
                    client, TASK_QUEUE, life, peak / 2, opts["latency_s"], REVISIT_DELAY_S)}
                result["latency"]["offered_over_peak"] = round(result["latency"]["offered_per_s"] / peak, 2)
                phase.stamp(result["latency"])
            if "breach" in phases:
                phase = Phase(server_pid)
                progress = throughput.Progress("breach lateness", 1)
                result["breach"] = await breach_lateness(client, TASK_QUEUE, fast, opts["breach_requests"])
                progress.step()
                phase.stamp(result["breach"])
            if "scale" in phases:
                phase = Phase(server_pid)
                result["scale"] = await scale.measure(
                    client, TASK_QUEUE, bulk, probe, opts["scale"], archive, port, opts["probe_target_s"],
                    probe_every=opts["probe_every"], concurrency=opts["scale_concurrency"],
                    backlog=opts["scale_backlog"], sample_every_s=0.5 if opts["scale"] <= 5000 else 5.0,
                    cache_size=int(result["worker"]["max_cached_workflows"]))
                phase.stamp(result["scale"])
    result["wall_seconds"] = round(time.monotonic() - began, 1)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


def check_budget(result: dict[str, Any], budget_s: float, elapsed_s: float) -> str | None:
    """Record the budget in the result; a warning line when the run (process start to end) went over it."""
    result["budget_seconds"], result["elapsed_seconds"] = budget_s, round(elapsed_s, 1)
    result["over_budget"] = elapsed_s > budget_s
    if not result["over_budget"]:
        return None
    phases = ", ".join(f"{name} {result[name]['phase_seconds']} s" for name in PHASES if name in result)
    return (f"WARNING: over budget: the run took {elapsed_s:.0f} s, budget {budget_s:.0f} s "
            f"(startup {result.get('startup_seconds')} s, {phases}; load average {result.get('load_average_after')})")


def summary(result: dict[str, Any]) -> str:
    rows = table_rows(result)
    width = max(len(name) for name, _ in rows)
    head = f"{'measure':<{width}}  figure"
    return "\n".join([head, "-" * len(head), *(f"{name:<{width}}  {value}" for name, value in rows)])


def markdown(result: dict[str, Any]) -> str:
    """The summary as a markdown table (docs/performance.md, the README), headed by the date and command."""
    lines = [f"`{result.get('command', 'python -m bench')}`, {result.get('date', '')[:10]}, "
             f"{result.get('machine_cores')} cores", "", "| measure | figure |", "|---|---|"]
    lines += [f"| {name.strip()} | {value} |" for name, value in table_rows(result)]
    return "\n".join(lines)


def table_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    t = result.get("throughput")
    if t:
        rows += [
            ("throughput ratio: lifecycle / bare (target >= 1.0)",
             f"{t['ratio']} median of {t['rounds']} rounds (range {t['ratio_min']}-{t['ratio_max']}); "
             f"{t['lifecycle_per_s']}/s vs {t['bare_per_s']}/s, {t['bare_activities']} activities"),
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
        reached = "" if s["completed"] else f" of {s['open_requests_target']} (stopped at the time limit)"
        rows += [
            (f"open requests held ({s['open_requests']}{reached}): start rate",
             f"{s['start_per_s']}/s armed ({s['start_concurrency']} starts in flight, "
             f"backlog <= {s['start_backlog']})"),
            ("  deadlines fired (probes)", f"{s['deadlines_fired']}/{s['probes']} (late p50 / p99 "
                                           f"{s['late_p50_s']} / {s['late_p99_s']} s)"),
            (f"  worker RSS (cache {s['max_cached_workflows']} workflows)",
             f"{s['worker_rss_mib']} MiB (peak {s['worker_rss_peak_mib']}), "
             f"+{s['worker_kib_per_open_request']} KiB per open request"
             + (f", +{s['worker_kib_per_open_beyond_cache']} KiB beyond the cache"
                if s.get("worker_kib_per_open_beyond_cache") is not None else "")),
            ("  dev server RSS",
             f"{s['server_rss_mib']} MiB (peak {s['server_rss_peak_mib']}), "
             f"+{s['server_kib_per_open_request']} KiB per open request"),
        ]
        if s.get("extrapolated"):
            x = s["extrapolated"]
            rows.append((f"  EXTRAPOLATED to {x['to_open_requests']}",
                         f"start {x['start_seconds']} s, worker {x['worker_rss_mib']} MiB, "
                         f"server {x['server_rss_mib']} MiB (linear, not measured)"))
    budget = f" (budget {result['budget_seconds']:.0f} s{', OVER' if result.get('over_budget') else ''})" \
        if "budget_seconds" in result else ""
    rows.append(("wall time", f"{result['wall_seconds']} s{budget}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts: a smoke run under a minute")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--scale", type=int, help="open requests held (default 40 quick, 500 normal)")
    parser.add_argument("--rounds", type=int, help="throughput rounds (lifecycle, bare and bare-local batches)")
    parser.add_argument("--requests", type=int, help="lifecycles (and bare workflows) per throughput batch")
    parser.add_argument("--concurrency", type=int, help="lifecycles in flight during the throughput phase")
    parser.add_argument("--latency-seconds", type=float, dest="latency_s", help="length of the latency phase")
    parser.add_argument("--breach-requests", type=int, dest="breach_requests", help="requests breaching together")
    parser.add_argument("--only", help=f"comma-separated phases of {','.join(PHASES)}")
    parser.add_argument("--port", type=int, default=7392)
    args = parser.parse_args(argv)
    profile = "quick" if args.quick else "normal"
    opts = dict(PROFILES[profile])
    for key in ("scale", "requests", "rounds", "concurrency", "latency_s", "breach_requests"):
        if getattr(args, key) is not None:
            opts[key] = getattr(args, key)
    opts["probe_every"] = max(opts["probe_every"], opts["scale"] // 500)  # at most ~500 probes
    if opts["scale"] > 5000:  # starts take minutes: the probes' deadlines fall well after their own eviction
        opts["probe_target_s"] = max(opts["probe_target_s"], 120)
    phases = [p for p in (args.only.split(",") if args.only else PHASES) if p]
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"--only: unknown phase(s) {', '.join(sorted(unknown))}")
    configure_logging(level="WARNING")
    began = time.monotonic()
    result = asyncio.run(run(opts, phases, args.port))
    warning = check_budget(result, BUDGET_S[profile], time.monotonic() - began)
    print(summary(result))
    if warning:
        print(warning)
    if args.json:
        with contextlib.suppress(FileExistsError):
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    return 0
