"""Timer precision: how late is a breach recorded after its exact deadline, on the dev server under load?

Starts N requests under a copy of the service_center pack whose first-response target is a few seconds, lets
them all breach unanswered, and reads each breach time against its deadline from the `status` query. Compared
with a poller that checks every 5 minutes (the field's best; many poll hourly): its expected lateness is 150 s,
its worst 300 s.

    python -m bench.breach_bench [--requests 60] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from temporalio.client import Client

from archive.store import Archive
from cli.main import submit, wait_for_status
from infra.logconfig import configure_logging
from models.intake import Intake
from policies.loader import BUILTIN_DIR
from worker import build_worker, connect_when_ready, dev_server

POLL_INTERVAL_S = 300.0  # the field's 5-minute breach poll


def write_fast_pack(directory: Path, first_response_s: int | None = None, pack_id: str = "bench_sc",
                    customer_window_s: int | None = None, revisit_delay_s: int | None = None) -> str:
    """A copy of service_center under `pack_id`, written to `directory` (put it on KEFU_POLICY_PATH).

    first_response_s: a first-response target of that many seconds (24x7) for every class, so requests breach.
    customer_window_s / revisit_delay_s: the confirmation window and survey window, and the revisit delay, in
    seconds, so a lifecycle driven at once completes in about revisit_delay_s. Everything else is unchanged."""
    pack = yaml.safe_load((BUILTIN_DIR / "service_center.yaml").read_text(encoding="utf-8"))
    pack["id"] = pack_id
    if first_response_s is not None:
        for cls in pack["classes"].values():
            cls["clocks"]["first_response"] = {"target": f"{first_response_s}s", "calendar": "24x7",
                                               "warn_at": [0.5]}
    if customer_window_s is not None:
        pack["closure"]["confirmation_window"] = f"{customer_window_s}s"
        pack["revisit"]["window"] = f"{customer_window_s}s"
    if revisit_delay_s is not None:
        pack["revisit"]["delay"] = f"{revisit_delay_s}s"
    (directory / f"{pack_id}.yaml").write_text(yaml.safe_dump(pack, allow_unicode=True), encoding="utf-8")
    return pack_id


def bench_intake(n: int, policy: str, prefix: str = "bench", type_hint: str = "inquiry") -> Intake:
    return Intake.model_validate({
        "request_id": f"{prefix}-{n:05d}", "policy": policy, "channel": "phone",
        "customer": {"id": f"C{n}", "name": "Bench", "phone": "13800000000"},
        "description": "benchmark request", "type_hint": type_hint})


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def breach_lateness(client: Client, task_queue: str, policy: str, requests: int,
                          prefix: str = "bench") -> dict[str, float]:
    """Start `requests` requests under a fast pack (see write_fast_pack) on a running worker, wait until every one
    has breached its first-response clock, and measure breach time minus deadline."""
    began = time.monotonic()
    handles = []
    for n in range(requests):  # throttled starts: ~requests per second the SQLite dev server takes
        handle, _ = await submit(client, bench_intake(n, policy, prefix), wait_for_ticket=False, task_queue=task_queue)
        handles.append(handle)
    started_in = time.monotonic() - began
    late: list[float] = []
    for handle in handles:
        st = await wait_for_status(handle, lambda s: s.clocks.get("first_response") is not None
                                   and s.clocks["first_response"].breached, timeout=120)
        clock = st.clocks["first_response"]
        if clock.breached_at is None:
            raise RuntimeError(f"{st.request_id}: no breach recorded within 120 s")
        late.append((clock.breached_at - clock.deadline).total_seconds())
    for handle in handles:
        await handle.terminate("benchmark done")
    p50, p99 = percentile(late, 0.5), percentile(late, 0.99)
    return {"requests": requests, "start_seconds": round(started_in, 2), "late_p50_s": round(p50, 3),
            "late_p99_s": round(p99, 3), "late_max_s": round(max(late), 3),
            "late_mean_s": round(statistics.fmean(late), 3),
            "poll_mean_over_p99": round((POLL_INTERVAL_S / 2) / max(p99, 0.001), 1),
            "poll_worst_over_p99": round(POLL_INTERVAL_S / max(p99, 0.001), 1)}


async def measure(requests: int, first_response_s: int, port: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="kefu-bench-"))
    os.environ["KEFU_POLICY_PATH"] = str(work)
    policy = write_fast_pack(work, first_response_s)
    async with dev_server(port=port, ui_port=port + 1000, state_dir=work) as address:
        client = await connect_when_ready(address)
        archive = Archive(f"sqlite:///{work / 'bench.db'}")
        task_queue = "kefu-bench"
        async with build_worker(client, archive, task_queue=task_queue):
            return await breach_lateness(client, task_queue, policy, requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--first-response", type=int, default=8, help="seconds")
    parser.add_argument("--port", type=int, default=7391)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure_logging(level="WARNING")
    result = asyncio.run(measure(args.requests, args.first_response, args.port))
    if args.json:
        print(json.dumps(result))
        return
    print(f"breach lateness over {result['requests']} requests on the dev server "
          f"(started in {result['start_seconds']} s, all armed together):")
    print(f"  p50 {result['late_p50_s']} s · p99 {result['late_p99_s']} s · max {result['late_max_s']} s")
    print(f"  a 5-minute poller is late by 150 s on average ({result['poll_mean_over_p99']}× our p99) "
          f"and up to 300 s ({result['poll_worst_over_p99']}× our p99)")


if __name__ == "__main__":
    main()
