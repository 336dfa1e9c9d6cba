"""Latency: round trip of the agent's `act` update (respond, resolve) while lifecycles arrive at a fixed rate,
about half the peak lifecycle throughput measured in the same run (open loop: arrivals do not wait)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from temporalio.client import Client

from bench.breach_bench import percentile
from bench.throughput import Progress, drive_lifecycle


async def measure(client: Client, task_queue: str, policy: str, rate_per_s: float, seconds: float,
                  revisit_delay_s: float) -> dict[str, Any]:
    count = max(1, round(rate_per_s * seconds))
    progress = Progress(f"latency at {rate_per_s:.1f}/s", count)
    latencies: list[float] = []

    async def one(i: int) -> None:
        await drive_lifecycle(client, task_queue, policy, f"bench-lat-{i:05d}", "inquiry", revisit_delay_s,
                              latencies)
        progress.step()

    began = time.perf_counter()
    tasks = []
    for i in range(count):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(max(0.0, began + (i + 1) / rate_per_s - time.perf_counter()))
    offered = count / (time.perf_counter() - began)
    await asyncio.gather(*tasks)
    return {"offered_per_s": round(offered, 2), "requests": count, "updates": len(latencies),
            "act_p50_ms": round(1000 * percentile(latencies, 0.5), 1),
            "act_p99_ms": round(1000 * percentile(latencies, 0.99), 1),
            "act_max_ms": round(1000 * max(latencies), 1)}
