"""Open requests held: N requests open at once, every one with armed timers (its SLA clocks), on one machine.

Starts N requests with bounded concurrency and a bounded backlog (a start counts once the worker has run the
request's first workflow task: its archive row has left `accepted`, so its clocks are armed), samples the RSS and
CPU of this process (worker + client + driver) and of the dev server against the open requests, and checks that
deadlines still fire: a sample of the N (every `probe_every`-th, "probes") runs under a pack whose first-response
target is `probe_target_s` seconds, the rest ("bulk") under one whose first response is due in 24 h (handling
24 h and closure 3 working days are armed as well). Every probe's breach is read from the archive (audit event
`sla_breach`: recorded time minus the exact deadline).

    python -m bench.scale --requests 100000 --json .data/bench-100k.json [--time-limit 2400]
    python -m bench --only scale --scale 100000          # the same phase inside the full harness

The worker is `worker.build_worker` as deployed (its max_cached_workflows is reported): open requests beyond the
cache are evicted and replayed from history on their next task, so worker RSS is bounded by the cache, not by N.
With --time-limit the starts stop at that many seconds and the result says how far they got (`completed`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from temporalio.client import Client

from archive.store import Archive
from archive.tables import AuditRow, RequestRow
from bench.breach_bench import bench_intake, percentile, write_fast_pack
from bench.throughput import Progress
from cli.main import submit
from infra.logconfig import configure_logging
from worker import build_worker, connect_when_ready, dev_server

BULK_PREFIX, PROBE_PREFIX = "bench-open", "bench-probe"
BULK_FIRST_RESPONSE_S = 24 * 3600  # the bulk's clocks are armed but do not fire during the run


def rss_mib(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU of a process (and its reaped children), from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def dev_server_pid(port: int) -> int | None:
    """The `temporal server start-dev --port PORT` process (worker.dev_server does not expose it)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"start-dev" in args and b"--port" in args and args[args.index(b"--port") + 1] == str(port).encode():
            return int(entry.name)
    return None


def write_packs(directory: Path, probe_target_s: int) -> tuple[str, str]:
    """The bulk pack (first response in 24 h) and the probe pack (first response in probe_target_s)."""
    return (write_fast_pack(directory, BULK_FIRST_RESPONSE_S, "bench_open"),
            write_fast_pack(directory, probe_target_s, "bench_probe"))


def _slope_kib(samples: list[dict[str, Any]], key: str, from_open: int = 0) -> float | None:
    """Least-squares growth of samples[key] (MiB) per open request, in KiB, over samples with open >= from_open."""
    pts = [(s["open"], s[key]) for s in samples if s["open"] >= from_open]
    if len(pts) < 3 or pts[-1][0] - pts[0][0] < 10:
        return None
    mx, my = statistics.fmean(x for x, _ in pts), statistics.fmean(y for _, y in pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return round(1024 * sum((x - mx) * (y - my) for x, y in pts) / sxx, 2) if sxx else None


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class GcTimer:
    """Time this process spends in the cyclic garbage collector (every generation), while in gc.callbacks."""

    def __init__(self) -> None:
        self.seconds, self.full, self._t0 = 0.0, 0, 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._t0
            self.full += info.get("generation") == 2


class Counter:
    """Archive reads on an engine of their own (one connection, never one of the worker's pooled ones; SQLite in
    WAL mode, so the worker's writes are not blocked)."""

    def __init__(self, archive: Archive, policies: tuple[str, str]) -> None:
        self.engine = create_engine(archive.url, poolclass=NullPool, connect_args={"timeout": 30})
        self.policies = policies

    def _open(self) -> int:
        with Session(self.engine) as session:
            return session.execute(select(func.count()).select_from(RequestRow).where(
                RequestRow.policy_id.in_(self.policies), RequestRow.stage != "accepted")).scalar_one()

    def _breached(self, policy: str) -> int:
        with Session(self.engine) as session:
            return session.execute(select(func.count()).select_from(RequestRow).where(
                RequestRow.policy_id == policy, RequestRow.breached.is_(True))).scalar_one()

    def _lateness(self) -> dict[str, float]:
        """request_id -> breach recorded minus the exact deadline, in seconds, for every probe breach."""
        late: dict[str, float] = {}
        with Session(self.engine) as session:
            rows = session.execute(select(AuditRow.request_id, AuditRow.at, AuditRow.detail).where(
                AuditRow.request_id.like(f"{PROBE_PREFIX}-%"), AuditRow.action == "sla_breach")).all()
        for request_id, at, detail in rows:
            if (detail or {}).get("clock") == "first_response" and request_id not in late:
                deadline = _utc(datetime.fromisoformat(detail["deadline"]))
                late[request_id] = (_utc(at) - deadline).total_seconds()
        return late

    async def open(self) -> int:
        return await asyncio.to_thread(self._open)

    async def breached(self, policy: str) -> int:
        return await asyncio.to_thread(self._breached, policy)

    async def lateness(self) -> dict[str, float]:
        return await asyncio.to_thread(self._lateness)


async def measure(client: Client, task_queue: str, bulk_policy: str, probe_policy: str, requests: int,
                  archive: Archive, server_port: int, probe_target_s: int, *, probe_every: int = 1,
                  concurrency: int = 50, backlog: int = 200, sample_every_s: float = 1.0,
                  time_limit_s: float | None = None, cache_size: int | None = None,
                  checkpoint: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    server_pid = dev_server_pid(server_port)
    counter = Counter(archive, (bulk_policy, probe_policy))
    base = {"worker_rss_mib": rss_mib(), "server_rss_mib": rss_mib(server_pid) if server_pid else 0.0,
            "worker_cpu_s": cpu_seconds(), "server_cpu_s": cpu_seconds(server_pid) if server_pid else 0.0}
    samples: list[dict[str, Any]] = []
    state = {"started": 0, "open": 0, "probes": 0, "rpc_errors": 0, "held": 0}
    probe_started: dict[str, float] = {}
    began = time.monotonic()
    progress = Progress(f"open {requests} requests", requests)
    more = asyncio.Event()  # set whenever a sample moves `open` on: starters blocked on the backlog re-check
    stop_starting = False

    def sample() -> dict[str, Any]:
        t = time.monotonic() - began
        row = {"t_s": round(t, 1), "started": state["started"], "open": state["open"],
               "worker_gc_s": round(gc_timer.seconds, 1),
               "worker_rss_mib": round(rss_mib(), 1),
               "server_rss_mib": round(rss_mib(server_pid), 1) if server_pid else 0.0,
               "worker_cpu_s": round(cpu_seconds() - base["worker_cpu_s"], 1),
               "server_cpu_s": round(cpu_seconds(server_pid) - base["server_cpu_s"], 1) if server_pid else 0.0}
        samples.append(row)
        return row

    def snapshot(phase: str) -> dict[str, Any]:
        return {"phase": phase, "open_requests_target": requests, "open_reached": state["open"],
                "started": state["started"], "elapsed_s": round(time.monotonic() - began, 1),
                "samples": samples}

    async def sampler() -> None:
        last_checkpoint = time.monotonic()
        while True:
            with contextlib.suppress(Exception):  # a busy archive: keep the last count
                state["open"] = await counter.open()
            more.set()
            row = sample()
            rate = row["open"] / row["t_s"] if row["t_s"] else 0.0
            if not state["held"]:
                progress.update(row["open"], f"open · {row['started']} started · {rate:.1f}/s · worker "
                                             f"{row['worker_rss_mib']:.0f} MiB · server "
                                             f"{row['server_rss_mib']:.0f} MiB")
            if checkpoint and time.monotonic() - last_checkpoint > 30:
                checkpoint(snapshot("starting"))
                last_checkpoint = time.monotonic()
            await asyncio.sleep(sample_every_s)

    async def starter(seq: list[int]) -> None:
        nonlocal stop_starting
        while seq and not stop_starting:
            if time_limit_s is not None and time.monotonic() - began > time_limit_s:
                stop_starting = True
                return
            if state["started"] - state["open"] >= backlog:
                more.clear()
                await more.wait()
                continue
            i = seq.pop()
            probe = i % probe_every == 0
            prefix, policy = (PROBE_PREFIX, probe_policy) if probe else (BULK_PREFIX, bulk_policy)
            state["started"] += 1
            for attempt in range(5):
                try:
                    await submit(client, bench_intake(i, policy, prefix), wait_for_ticket=False,
                                 task_queue=task_queue)
                    break
                except Exception:  # a saturated server times a start out: retry (starts are idempotent)
                    state["rpc_errors"] += 1
                    if attempt == 4:
                        raise
                    await asyncio.sleep(1 + attempt)
            if probe:
                probe_started[f"{prefix}-{i:05d}"] = time.monotonic() - began
                state["probes"] += 1

    seq = list(range(requests - 1, -1, -1))  # pop() from the end: 0, 1, 2, ...
    gc_timer = GcTimer()
    gc.callbacks.append(gc_timer)
    sampling = asyncio.create_task(sampler())
    try:
        await asyncio.gather(*(starter(seq) for _ in range(concurrency)))
        rpc_done = time.monotonic() - began
        started = state["started"]
        # every started request armed (its first workflow task done), or give up after a minute without progress
        last, stalled_since = -1, time.monotonic()
        while state["open"] < started and time.monotonic() - stalled_since < 60:
            if state["open"] != last:
                last, stalled_since = state["open"], time.monotonic()
            await asyncio.sleep(min(sample_every_s, 0.5))
        armed_in = time.monotonic() - began
        held = sample()
        state["held"] = 1
        progress.update(held["open"], f"open in {armed_in:.0f} s ({held['open'] / armed_in:.1f}/s)")
        if progress.done < progress.total:  # stopped early: end the bar's line
            sys.stderr.write("\n")
        if checkpoint:
            checkpoint(snapshot("held"))
        # deadlines still fire: every probe's first-response breach, read from the archive
        last_due = max(probe_started.values(), default=0.0) + probe_target_s
        fire_by = began + last_due + max(60.0, probe_target_s)
        fired = Progress("probe deadlines fired", max(1, state["probes"]))
        breached = 0
        while True:
            breached = await counter.breached(probe_policy)
            fired.update(breached)
            if breached >= state["probes"] or time.monotonic() > fire_by:
                break
            await asyncio.sleep(min(sample_every_s, 1.0))
        if breached < state["probes"]:
            fired.update(fired.total, f"(only {breached} fired)")
        end = sample()
    finally:
        sampling.cancel()
        gc.callbacks.remove(gc_timer)
    late_by_id = await counter.lateness()
    late = list(late_by_id.values())
    tail_from = 0.9 * max(probe_started.values(), default=0.0)
    late_tail = [v for k, v in late_by_id.items() if probe_started.get(k, 0.0) >= tail_from]
    open_reached = held["open"]
    rate = open_reached / armed_in if armed_in else 0.0
    cache = cache_size or 0
    result: dict[str, Any] = {
        "open_requests": open_reached, "open_requests_target": requests, "completed": open_reached >= requests,
        "start_per_s": round(rate, 1), "start_seconds": round(armed_in, 1),
        "start_rpc_per_s": round(started / rpc_done, 1) if rpc_done else None,
        "start_concurrency": concurrency, "start_backlog": backlog, "start_rpc_retries": state["rpc_errors"],
        "max_cached_workflows": cache_size,
        "probes": state["probes"], "probe_every": probe_every, "probe_target_s": probe_target_s,
        "deadlines_fired": breached, "fired_fraction": round(breached / max(1, state["probes"]), 4),
        "late_sample": len(late),
        "late_p50_s": round(percentile(late, 0.5), 2) if late else None,
        "late_p99_s": round(percentile(late, 0.99), 2) if late else None,
        "late_max_s": round(max(late), 2) if late else None,
        "late_last_decile_p50_s": round(percentile(late_tail, 0.5), 2) if late_tail else None,
        "late_last_decile_n": len(late_tail),
        "worker_rss_mib": held["worker_rss_mib"], "worker_rss_end_mib": end["worker_rss_mib"],
        "worker_rss_peak_mib": max(s["worker_rss_mib"] for s in samples),
        "worker_rss_growth_mib": round(held["worker_rss_mib"] - base["worker_rss_mib"], 1),
        "worker_kib_per_open_request": round(
            1024 * (held["worker_rss_mib"] - base["worker_rss_mib"]) / max(1, open_reached), 1),
        "worker_kib_per_open_beyond_cache": _slope_kib(samples, "worker_rss_mib", cache) if cache else None,
        "server_rss_mib": held["server_rss_mib"], "server_rss_end_mib": end["server_rss_mib"],
        "server_rss_peak_mib": max(s["server_rss_mib"] for s in samples),
        "server_rss_growth_mib": round(held["server_rss_mib"] - base["server_rss_mib"], 1),
        "server_kib_per_open_request": round(
            1024 * (held["server_rss_mib"] - base["server_rss_mib"]) / max(1, open_reached), 1),
        "server_kib_per_open_slope": _slope_kib(samples, "server_rss_mib"),
        "worker_cpu_s": held["worker_cpu_s"], "server_cpu_s": held["server_cpu_s"],
        "worker_gc_s": round(gc_timer.seconds, 1), "worker_gc_full_collections": gc_timer.full,
        "worker_cpu_ms_per_start": round(1000 * held["worker_cpu_s"] / max(1, open_reached), 1),
        "server_cpu_ms_per_start": round(1000 * held["server_cpu_s"] / max(1, open_reached), 1),
        "pid_rss_note": f"worker = this process (pid {os.getpid()}: worker, client and driver together)",
        "samples": _thin(samples, 200),
    }
    if not result["completed"] and rate > 0:
        result["extrapolated"] = extrapolate(result, requests)
    return result


def _thin(samples: list[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    step = max(1, len(samples) // keep)
    return [*samples[:-1:step], samples[-1]] if samples else []


def extrapolate(result: dict[str, Any], target: int) -> dict[str, Any]:
    """EXTRAPOLATION, not a measurement: the run stopped at `open_requests`; linear in the measured rate and in
    the RSS growth per open request beyond the cache (or overall when the cache was never filled)."""
    reached = result["open_requests"]
    worker_slope = result.get("worker_kib_per_open_beyond_cache")
    if worker_slope is None:
        worker_slope = result["worker_kib_per_open_request"]
    server_slope = result.get("server_kib_per_open_slope") or result["server_kib_per_open_request"]
    more = target - reached
    return {"note": "EXTRAPOLATED from the measured part of the run, linear", "to_open_requests": target,
            "start_seconds": round(target / result["start_per_s"], 0),
            "worker_rss_mib": round(result["worker_rss_mib"] + more * worker_slope / 1024, 0),
            "server_rss_mib": round(result["server_rss_mib"] + more * server_slope / 1024, 0)}


async def standalone(requests: int, port: int, probes: int, probe_target_s: int, concurrency: int, backlog: int,
                     time_limit_s: float | None, sample_every_s: float, json_path: Path | None) -> dict[str, Any]:
    from bench.harness import TASK_QUEUE, worker_settings  # here: the harness imports this module

    work = Path(tempfile.mkdtemp(prefix="kefu-bench-scale-"))
    os.environ["KEFU_POLICY_PATH"] = str(work)
    bulk, probe = write_packs(work, probe_target_s)
    head: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                            "command": f"python -m bench.scale --requests {requests} ...",
                            "machine_cores": os.cpu_count(), "state_dir": str(work)}

    def write(doc: dict[str, Any]) -> None:
        if json_path:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = json_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            tmp.replace(json_path)

    began = time.monotonic()
    async with dev_server(port=port, ui_port=port + 1000, state_dir=work) as address:
        client = await connect_when_ready(address)
        archive = Archive(f"sqlite:///{work / 'bench.db'}")
        kefu = build_worker(client, archive, task_queue=TASK_QUEUE)
        head["worker"] = worker_settings(kefu)
        cache = int(head["worker"]["max_cached_workflows"])
        async with kefu:
            result = await measure(
                client, TASK_QUEUE, bulk, probe, requests, archive, port, probe_target_s,
                probe_every=max(1, requests // max(1, probes)), concurrency=concurrency, backlog=backlog,
                sample_every_s=sample_every_s, time_limit_s=time_limit_s, cache_size=cache,
                checkpoint=lambda partial: write({**head, "partial": True, "scale": partial}))
    doc = {**head, "scale": result, "wall_seconds": round(time.monotonic() - began, 1)}
    doc["scale"]["db_mib"] = round(sum(f.stat().st_size for f in work.glob("*.db*")) / 2**20, 1)
    write(doc)
    return doc


def main(argv: list[str] | None = None) -> int:
    from bench.harness import summary  # here: the harness imports this module

    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=500, help="requests among them whose deadline must fire")
    parser.add_argument("--probe-target", type=int, default=120, help="the probes' first-response target, s")
    parser.add_argument("--concurrency", type=int, default=50, help="start calls in flight")
    parser.add_argument("--backlog", type=int, default=200, help="started requests not yet armed, at most")
    parser.add_argument("--time-limit", type=float, help="stop starting after this many seconds")
    parser.add_argument("--sample-every", type=float, default=5.0, help="RSS/CPU sample interval, s")
    parser.add_argument("--json", metavar="FILE", help="write the result (and checkpoints while running) here")
    parser.add_argument("--port", type=int, default=7394)
    args = parser.parse_args(argv)
    configure_logging(level="WARNING")
    doc = asyncio.run(standalone(args.requests, args.port, args.probes, args.probe_target, args.concurrency,
                                 args.backlog, args.time_limit, args.sample_every,
                                 Path(args.json) if args.json else None))
    print(summary(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
