"""Chaos: no request is lost when the worker process or the Temporal server dies (issue 7).

Worker crash: `requests` customer-service requests are driven through every stage (submit, respond, resolve,
confirm, survey) against a file-backed dev server while the worker, a separate OS process (`python worker.py`),
is SIGKILLed at seeded random moments `kills` times and restarted after a short pause. Every update carries a
fixed update id, so a retry after a crash reaches the same update instead of acting twice. At the end every
workflow must have completed, and the archive must hold, per request: audit seq numbers exactly 0..n-1, one
acknowledgement, one resolution and one revisit notice per closure, one progress notice for the one response, unique
outbox keys, one archive record per closure, projection stage "completed".

Server restart: requests whose first-response deadline is a few seconds out are started, then the worker and
the dev server are stopped and the server restarted on the same state file and port; every request's
first-response breach must still fire, and every workflow must still be running.

    python -m bench.chaos --requests 200 --kills 10 [--seed 7] [--json]
    python -m bench.chaos --server-restart --requests 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError

from archive.store import Archive
from bench.breach_bench import bench_intake, write_fast_pack
from cli.main import submit
from infra.logconfig import configure_logging
from models.actions import Act, Confirm, SurveyAnswer
from models.intake import Intake
from models.status import RequestStatus
from worker import connect_when_ready, dev_server
from workflows.service_request import ServiceRequestWorkflow

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
TRANSIENT = (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError, asyncio.TimeoutError)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkerProcess:
    """`python worker.py` as its own OS process, so it can be SIGKILLed."""

    def __init__(self, address: str, database_url: str, task_queue: str, policy_dir: Path, log_path: Path) -> None:
        self.env = {**os.environ, "TEMPORAL_ADDRESS": address, "DATABASE_URL": database_url,
                    "KEFU_TASK_QUEUE": task_queue, "KEFU_POLICY_PATH": str(policy_dir)}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_offset = 0

    def start(self) -> None:
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "worker.py"], env=self.env, cwd=ROOT, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1

    async def ready(self, timeout: float = 60.0) -> bool:
        """Wait until this process polls its task queue (worker.py prints so once the worker runs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive():
            with self.log_path.open("rb") as log:
                log.seek(self.log_offset)
                if b"worker polling task queue" in log.read():
                    return True
            await asyncio.sleep(0.1)
        return False

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, whatever the worker was doing is cut off."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


async def durable(call: Callable[[], Awaitable[T]], deadline: float, attempt_timeout: float = 30.0) -> T:
    """Retry `call` across worker (or server) outages until the monotonic `deadline`."""
    while True:
        try:
            return await asyncio.wait_for(call(), timeout=attempt_timeout)
        except TRANSIENT:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def query_status(handle: WorkflowHandle, deadline: float) -> RequestStatus:
    return await durable(lambda: handle.query(ServiceRequestWorkflow.status, rpc_timeout=timedelta(seconds=5)),
                         deadline, attempt_timeout=10)


async def status_until(handle: WorkflowHandle, ready: Callable[[RequestStatus], bool], deadline: float,
                       what: str) -> RequestStatus:
    while True:
        status = await query_status(handle, deadline)
        if ready(status):
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"{handle.id}: {what} not reached (stage {status.stage}, last {status.last_action})")
        await asyncio.sleep(0.3)


def act(kind: str, **fields: Any) -> Act:
    return Act.model_validate({"actor": {"id": "agent-chaos", "role": "agent"}, "action": {"kind": kind, **fields}})


@dataclass
class Tally:
    retries: int = 0
    refused: list[str] = field(default_factory=list)
    started: int = 0
    finished: int = 0


async def update(handle: WorkflowHandle, method: Any, arg: Any, update_id: str, deadline: float,
                 tally: Tally) -> RequestStatus:
    """An update with a fixed id: retried after a crash, the server answers with the first attempt's outcome."""
    attempts = 0

    async def once() -> RequestStatus:
        nonlocal attempts
        attempts += 1
        return await handle.execute_update(method, arg, id=update_id, rpc_timeout=timedelta(seconds=20))

    try:
        return await durable(once, deadline)
    except WorkflowUpdateFailedError as exc:
        tally.refused.append(f"{handle.id} {update_id}: {exc.cause}")
        raise
    finally:
        tally.retries += attempts - 1


async def drive(client: Client, n: int, policy: str, task_queue: str, prefix: str, delay: float,
                budget: float, tally: Tally) -> RequestStatus:
    """One request through every stage on real time; every call survives a worker outage."""
    await asyncio.sleep(delay)
    deadline = time.monotonic() + budget
    intake = bench_intake(n, policy, prefix)
    tally.started += 1
    try:
        return await lifecycle(client, intake, task_queue, deadline, tally)
    finally:
        tally.finished += 1


async def lifecycle(client: Client, intake: Intake, task_queue: str, deadline: float,
                    tally: Tally) -> RequestStatus:
    handle, _ = await durable(lambda: submit(client, intake, wait_for_ticket=False, task_queue=task_queue), deadline)
    rid = intake.request_id
    await status_until(handle, lambda st: st.stage == "handling", deadline, "handling")
    await update(handle, ServiceRequestWorkflow.act, act("respond", message="您好，已受理"), f"{rid}-respond",
                 deadline, tally)
    await update(handle, ServiceRequestWorkflow.act, act("resolve", summary="已处理"), f"{rid}-resolve",
                 deadline, tally)
    await status_until(handle, lambda st: st.stage == "resolved" and st.last_action == "result_reported",
                       deadline, "result reported")
    await update(handle, ServiceRequestWorkflow.confirm, Confirm(accepted=True), f"{rid}-confirm", deadline, tally)
    await status_until(handle, lambda st: st.stage == "revisit", deadline, "revisit")
    await update(handle, ServiceRequestWorkflow.survey, SurveyAnswer(score=95, nps=9), f"{rid}-survey",
                 deadline, tally)
    return await durable(lambda: handle.result(rpc_timeout=timedelta(seconds=20)), deadline)


async def killer(worker: WorkerProcess, kills: int, rng: random.Random, done: asyncio.Event,
                 gap: tuple[float, float], pause: tuple[float, float], tally: Tally) -> list[dict[str, float]]:
    """SIGKILL the worker `kills` times at random moments once it polls, restarting it after a short pause.
    Returns each kill's moment and the requests in flight then."""
    moments: list[dict[str, float]] = []
    began = time.monotonic()
    for _ in range(kills):
        await worker.ready()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=rng.uniform(*gap))
        if done.is_set():
            break
        worker.kill()
        moments.append({"at_s": round(time.monotonic() - began, 2), "in_flight": tally.started - tally.finished})
        await asyncio.sleep(rng.uniform(*pause))
        worker.start()
    return moments


def audit_archive(archive: Archive, finals: dict[str, RequestStatus]) -> dict[str, Any]:
    """Per request: seq 0..n-1, each driven action audited once (per closure), one acknowledgement, one
    resolution and one revisit notice per closure, one progress notice for the one response, one archive record per
    closure, projection completed. Returns the duplicates counted and every problem found."""
    problems: list[str] = []
    duplicates = 0
    keys = Counter(row["key"] for row in archive.outbox())
    duplicates += sum(count - 1 for count in keys.values() if count > 1)
    for rid, final in finals.items():
        trail = archive.audit_trail(rid)
        seqs = [row["seq"] for row in trail]
        if seqs != list(range(len(seqs))) or not seqs:
            problems.append(f"{rid}: audit seq {seqs}")
            duplicates += len(seqs) - len(set(seqs))
        closures = final.reopen_count + 1
        actions = Counter(row["action"] for row in trail)  # a retried update or activity must not act twice
        once = {"accepted": 1, "respond": 1, "resolve": closures, "confirm": closures, "survey": closures,
                "completed": 1}
        for action, count in once.items():
            if actions[action] != count:
                problems.append(f"{rid}: {actions[action]} {action} audit events, expected {count}")
                duplicates += max(0, actions[action] - count)
        templates = Counter(row["template"] for row in archive.outbox(rid))
        # the driver responds once: one progress notice
        expected = {"acknowledgement": 1, "resolution": closures, "revisit": closures, "progress": 1}
        for template, count in expected.items():
            if templates[template] != count:
                problems.append(f"{rid}: {templates[template]} {template} notices, expected {count}")
                duplicates += max(0, templates[template] - count)
        records = archive.archive_records(rid)
        if len(records) != closures:
            problems.append(f"{rid}: {len(records)} archive records for {closures} closures")
            duplicates += max(0, len(records) - closures)
        row = archive.get(rid)
        if row is None or row["stage"] != "completed":
            problems.append(f"{rid}: projection stage {row and row['stage']}")
    return {"duplicates": duplicates, "problems": problems}


async def worker_crash(requests: int = 200, kills: int = 10, seed: int = 7, work: Path | None = None,
                       spread_s: float | None = None, budget_s: float = 240.0) -> dict[str, Any]:
    """Drive `requests` requests to completion while the worker is SIGKILLed `kills` times. Returns the figures."""
    work = work or Path(tempfile.mkdtemp(prefix="kefu-chaos-"))
    policy_dir = work / "policies"
    policy_dir.mkdir(parents=True, exist_ok=True)
    policy = write_fast_pack(policy_dir, pack_id="chaos_sc", customer_window_s=120, revisit_delay_s=2)
    os.environ["KEFU_POLICY_PATH"] = str(policy_dir)  # this process reads the pack too (status, submit)
    rng = random.Random(seed)
    gap, pause = (1.5, 4.0), (0.5, 1.5)
    # requests start across the whole kill schedule (a restart takes ~2 s), so every kill finds requests in flight
    spread = spread_s if spread_s is not None else kills * (sum(gap) / 2 + sum(pause) / 2 + 2.0)
    port = free_port()
    database_url = f"sqlite:///{work / 'chaos.db'}"
    task_queue = f"kefu-chaos-{seed}"
    began = time.monotonic()
    async with dev_server(port=port, ui_port=free_port(), state_dir=work / "temporal") as address:
        client = await connect_when_ready(address)
        worker = WorkerProcess(address, database_url, task_queue, policy_dir, work / "worker.log")
        worker.start()
        tally = Tally()
        done = asyncio.Event()
        kill_task = asyncio.create_task(killer(worker, kills, rng, done, gap, pause, tally))
        try:
            drivers = [drive(client, n, policy, task_queue, "chaos", spread * n / max(1, requests), budget_s, tally)
                       for n in range(requests)]
            results = await asyncio.gather(*drivers, return_exceptions=True)
        finally:
            done.set()
            moments = await kill_task
            worker.stop()
        wall = time.monotonic() - began
    finals: dict[str, RequestStatus] = {}
    failures: list[str] = []
    for n, result in enumerate(results):
        rid = bench_intake(n, policy, "chaos").request_id
        if isinstance(result, BaseException):
            failures.append(f"{rid}: {type(result).__name__}: {result}")
        elif result.stage != "completed":
            failures.append(f"{rid}: ended in {result.stage}")
        else:
            finals[rid] = result
    archive = Archive(database_url)
    try:
        checked = audit_archive(archive, finals)
    finally:
        archive.close()
    return {"requests": requests, "kills": len(moments), "kill_moments_s": [m["at_s"] for m in moments],
            "in_flight_at_kills": [m["in_flight"] for m in moments], "completed": len(finals),
            "lost": requests - len(finals), "duplicates": checked["duplicates"], "update_retries": tally.retries,
            "refused": tally.refused, "failures": failures, "problems": checked["problems"],
            "wall_s": round(wall, 1), "seed": seed, "work_dir": str(work)}


async def server_restart(requests: int = 20, first_response_s: int = 8, down_s: float = 6.0,
                         work: Path | None = None, timeout_s: float = 120.0) -> dict[str, Any]:
    """Start requests, stop worker and dev server before their first-response deadline, keep the server down for
    `down_s` (so deadlines pass while it is down), restart both on the same state file and port, and check every
    breach fires and every workflow is still running."""
    work = work or Path(tempfile.mkdtemp(prefix="kefu-restart-"))
    policy_dir = work / "policies"
    policy_dir.mkdir(parents=True, exist_ok=True)
    policy = write_fast_pack(policy_dir, first_response_s, pack_id="restart_sc")
    os.environ["KEFU_POLICY_PATH"] = str(policy_dir)
    port, ui_port = free_port(), free_port()
    state_dir = work / "temporal"
    database_url = f"sqlite:///{work / 'restart.db'}"
    task_queue = "kefu-restart"
    began = time.monotonic()
    ids: list[str] = []
    async with dev_server(port=port, ui_port=ui_port, state_dir=state_dir) as address:
        client = await connect_when_ready(address)
        worker = WorkerProcess(address, database_url, task_queue, policy_dir, work / "worker.log")
        worker.start()
        try:
            deadline = time.monotonic() + 60
            for n in range(requests):
                handle, _ = await submit(client, bench_intake(n, policy, "restart"), wait_for_ticket=False,
                                         task_queue=task_queue)
                ids.append(handle.id)
            for workflow_id in ids:  # every request registered and its clocks armed before the server dies
                await status_until(client.get_workflow_handle(workflow_id), lambda st: bool(st.ticket)
                                   and "first_response" in st.clocks, deadline, "ticket")
        finally:
            worker.stop()
    stopped_at, stopped_wall = time.monotonic(), datetime.now(UTC)
    await asyncio.sleep(down_s)
    async with dev_server(port=port, ui_port=ui_port, state_dir=state_dir) as address:
        restarted_in, restarted_wall = time.monotonic() - stopped_at, datetime.now(UTC)
        client = await connect_when_ready(address)
        worker = WorkerProcess(address, database_url, task_queue, policy_dir, work / "worker.log")
        worker.start()
        try:
            deadline = time.monotonic() + timeout_s
            breached, running, passed_while_down, late = 0, 0, 0, []
            for workflow_id in ids:
                handle = client.get_workflow_handle(workflow_id)
                st = await status_until(handle, lambda s: s.clocks["first_response"].breached, deadline,
                                        "first-response breach")
                clock = st.clocks["first_response"]
                passed_while_down += clock.deadline is not None and stopped_wall < clock.deadline < restarted_wall
                if clock.breached_at is not None:
                    breached += 1
                    late.append((clock.breached_at - clock.deadline).total_seconds())
                described = await handle.describe()
                running += described.status == WorkflowExecutionStatus.RUNNING
        finally:
            for workflow_id in ids:
                with contextlib.suppress(RPCError):
                    await client.get_workflow_handle(workflow_id).terminate("chaos restart check done")
            worker.stop()
    return {"requests": requests, "breached": breached, "running": running,
            "deadlines_passed_while_down": passed_while_down,
            "server_down_s": round(restarted_in, 1), "late_max_s": round(max(late), 2) if late else None,
            "wall_s": round(time.monotonic() - began, 1), "work_dir": str(work)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--server-restart", action="store_true", help="the server-restart check instead")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure_logging(level="WARNING")
    if args.server_restart:
        result = asyncio.run(server_restart(args.requests))
        ok = result["breached"] == result["running"] == args.requests
    else:
        result = asyncio.run(worker_crash(args.requests, args.kills, args.seed))
        ok = result["lost"] == 0 and result["duplicates"] == 0 and not result["problems"]
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    elif args.server_restart:
        print(f"server restart: {result['requests']} requests, server down {result['server_down_s']} s; "
              f"{result['deadlines_passed_while_down']} deadlines passed while it was down; "
              f"breaches fired {result['breached']}, still running {result['running']} "
              f"(latest breach {result['late_max_s']} s after its deadline); wall {result['wall_s']} s")
    else:
        print(f"worker crash: {result['requests']} requests, {result['kills']} SIGKILLs "
              f"at {result['kill_moments_s']} s with {result['in_flight_at_kills']} requests in flight; "
              f"completed {result['completed']}, lost {result['lost']}, "
              f"duplicates {result['duplicates']}, "
              f"update retries {result['update_retries']}; wall {result['wall_s']} s")
        for line in [*result["failures"], *result["problems"], *result["refused"]][:20]:
            print(f"  {line}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
