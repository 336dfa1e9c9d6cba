"""Open requests held: N requests open at once, every one with armed timers (its SLA clocks), on one machine.

Measures the start rate, the RSS of this process (worker + client) and of the dev server, and that the deadlines
still fire: every request's first-response clock (a fast pack, target a little past the end of the starts)
must be breached, as read from the archive projection, with lateness sampled from the `status` query.

100,000 open requests (not in CI; needs a cache larger than build_worker's 2,000 or a worker that evicts):
    python -m bench --scale 100000 --only scale
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from archive.store import Archive
from bench.breach_bench import bench_intake, percentile
from bench.throughput import Progress, run_many
from starter import submit, wait_for_status


def rss_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


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


def breach_target_s(requests: int) -> int:
    """First-response target for the scale pack: past the end of the starts (~100/s here), plus margin."""
    return 10 + requests // 60


async def measure(client: Client, task_queue: str, policy: str, requests: int, archive: Archive,
                  server_port: int, target_s: int, concurrency: int = 50) -> dict[str, Any]:
    server_pid = dev_server_pid(server_port)
    rss_before = rss_mib()
    server_before = rss_mib(server_pid) if server_pid else 0.0
    progress = Progress(f"open {requests} requests", requests)

    async def job(i: int) -> Any:
        handle, _ = await submit(client, bench_intake(i, policy, "bench-open"), wait_for_ticket=False,
                                 task_queue=task_queue)
        return handle

    began = time.monotonic()
    start_rate, handles = await run_many(requests, concurrency, job, progress)
    started_in = time.monotonic() - began
    await asyncio.sleep(1)
    rss_open, server_open = rss_mib(), rss_mib(server_pid) if server_pid else 0.0
    # every deadline must fire: poll the archive projection until every request shows its breach
    fire_by = began + target_s + started_in + 120
    breached = 0
    fired = Progress("deadlines fired", requests)
    while time.monotonic() < fire_by:
        breached = len(archive.list_requests(policy_id=policy, breached=True, limit=requests + 1))
        fired.done = breached
        fired.show()
        if breached >= requests:
            break
        await asyncio.sleep(2)
    if breached < requests:
        fired.done = fired.total
        fired.show()
    sample = random.Random(8).sample(handles, min(30, len(handles)))
    late = []
    for handle in sample:
        try:
            st = await wait_for_status(handle, lambda s: "first_response" in s.clocks
                                       and s.clocks["first_response"].breached, timeout=5)
        except RPCError:  # a saturated worker lets a query time out: the sample is smaller, the run goes on
            continue
        clock = st.clocks.get("first_response")  # absent when the request's first task has not run yet
        if clock and clock.breached_at:
            late.append((clock.breached_at - clock.deadline).total_seconds())
    return {"open_requests": requests, "start_per_s": round(start_rate, 1), "start_seconds": round(started_in, 1),
            "start_concurrency": concurrency, "first_response_target_s": target_s,
            "deadlines_fired": breached, "fired_fraction": round(breached / requests, 4),
            "late_sample": len(late), "late_p50_s": round(percentile(late, 0.5), 2) if late else None,
            "late_p99_s": round(percentile(late, 0.99), 2) if late else None,
            "worker_rss_mib": round(rss_open, 1), "worker_rss_growth_mib": round(rss_open - rss_before, 1),
            "worker_kib_per_open_request": round(1024 * (rss_open - rss_before) / requests, 1),
            "server_rss_mib": round(server_open, 1), "server_rss_growth_mib": round(server_open - server_before, 1),
            "server_kib_per_open_request": round(1024 * (server_open - server_before) / requests, 1),
            "pid_rss_note": f"worker = this process (pid {os.getpid()}: worker, client and driver together)"}
