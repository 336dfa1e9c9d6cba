"""Chaos: nothing is lost or duplicated when the worker process or the Temporal server dies (issues 7 and 15).

Chaos run (the default): `requests` customer-service requests are driven through every stage (submit, respond,
resolve, confirm, survey) against a file-backed dev server while the worker, a separate OS process
(`python worker.py`), is SIGKILLed `kills` times at seeded random moments and restarted after a short pause, and the
dev server is stopped and started again on the same state file and port `restarts` times in between (the worker
keeps running through it). Every update carries a fixed update id, so a retry after a crash reaches the same update
instead of acting twice. The customer answers as soon as the question is in the outbox (confirmation on the
`resolution` notice, survey on the `revisit` notice): a worker killed after writing the notice but before its
workflow task completed retries the step, so the answer can reach the workflow with or before the question.
At the end every workflow must have completed, in exactly one run, and the archive must hold, per request: audit
seq numbers exactly 0..n-1, each driven action audited once per closure, one acknowledgement, one resolution and one
revisit notice per closure, one progress notice for the one response, notice keys numbered 1..n per kind (none
lost) and each queued once, one archive record per closure, projection stage "completed".

Timers across a restart (--server-restart): requests whose first-response deadline is a few seconds out are
started, then the worker and the dev server are stopped and the server restarted on the same state file and port;
every request's first-response breach must still fire, and every workflow must still be running.

    python -m bench.chaos --requests 300 --kills 10 --restarts 1 [--seed 7] [--json FILE]
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
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine
from sqlmodel import Session, col, select
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError

from archive.store import Archive
from archive.tables import OutboxRow
from bench.breach_bench import bench_intake, write_fast_pack
from cli.main import submit
from infra.logconfig import configure_logging
from models.actions import Act, Confirm, SurveyAnswer
from models.intake import Intake, workflow_id_for
from models.status import RequestStatus
from worker import connect_when_ready, dev_server
from workflows.service_request import ServiceRequestWorkflow

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
TRANSIENT = (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError, asyncio.TimeoutError)


_quiet: Runtime | None = None


def quiet_runtime() -> Runtime:
    """For the driver's own client, which retries through the outages it causes: no core retry warnings."""
    global _quiet
    if _quiet is None:
        quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
        _quiet = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet)))
    return _quiet


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


class DevServer:
    """worker.dev_server on fixed ports and one state file, so it can be stopped and started again on the same state
    (a restart, as an operator or a supervisor would do it)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.port, self.ui_port = free_port(), free_port()
        self.address = f"localhost:{self.port}"
        self.stack: contextlib.AsyncExitStack | None = None

    async def start(self, timeout: float = 60.0) -> str:
        # the ports were free a moment ago; a restart can find the old listener still closing: try again
        deadline = time.monotonic() + timeout
        while True:
            stack = contextlib.AsyncExitStack()
            try:
                address = await stack.enter_async_context(dev_server(self.port, self.ui_port, self.state_dir))
            except RuntimeError:
                await stack.aclose()
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
                continue
            self.stack = stack
            return address

    async def stop(self) -> None:
        """SIGTERM (worker.dev_server's exit); the state file stays."""
        if self.stack is not None:
            stack, self.stack = self.stack, None
            await stack.aclose()


class OutboxWatch:
    """Polls the archive's outbox (as the notification sender would) and wakes whoever waits for a notice."""

    def __init__(self, database_url: str, every: float = 0.25) -> None:
        self.engine = create_engine(database_url)  # an engine of its own: not the worker's, not the audit's
        self.every = every
        self.waiting: dict[tuple[str, str], asyncio.Event] = defaultdict(asyncio.Event)
        self.last_id = 0

    def _poll(self) -> list[tuple[int, str, str]]:
        query = (select(OutboxRow.id, OutboxRow.request_id, OutboxRow.template)
                 .where(col(OutboxRow.id) > self.last_id).order_by(col(OutboxRow.id)))
        with Session(self.engine) as session:
            return [(int(row[0] or 0), row[1], row[2]) for row in session.exec(query).all()]

    async def run(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # the worker may hold the write lock: read again next time
                for row_id, request_id, template in await asyncio.to_thread(self._poll):
                    self.last_id = max(self.last_id, row_id)
                    self.waiting[(request_id, template)].set()
            await asyncio.sleep(self.every)

    async def notice(self, request_id: str, template: str, deadline: float) -> None:
        """Until the request's first `template` notice is queued (TimeoutError at the monotonic deadline)."""
        left = max(0.1, deadline - time.monotonic())
        await asyncio.wait_for(self.waiting[(request_id, template)].wait(), timeout=left)

    def close(self) -> None:
        self.engine.dispose()


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
                budget: float, tally: Tally, outbox: OutboxWatch) -> RequestStatus:
    """One request through every stage on real time; every call survives a worker or server outage."""
    await asyncio.sleep(delay)
    deadline = time.monotonic() + budget
    intake = bench_intake(n, policy, prefix)
    tally.started += 1
    try:
        return await lifecycle(client, intake, task_queue, deadline, tally, outbox)
    finally:
        tally.finished += 1


async def lifecycle(client: Client, intake: Intake, task_queue: str, deadline: float, tally: Tally,
                    outbox: OutboxWatch) -> RequestStatus:
    handle, _ = await durable(lambda: submit(client, intake, wait_for_ticket=False, task_queue=task_queue), deadline)
    rid = intake.request_id
    await status_until(handle, lambda st: st.stage == "handling", deadline, "handling")
    await update(handle, ServiceRequestWorkflow.act, act("respond", message="您好，已受理"), f"{rid}-respond",
                 deadline, tally)
    await update(handle, ServiceRequestWorkflow.act, act("resolve", summary="已处理"), f"{rid}-resolve",
                 deadline, tally)
    # the customer answers once the question reached the outbox: possibly before the workflow task that wrote it
    # completed (a worker killed then retries the step, and the answer arrives with or before the question)
    await outbox.notice(rid, "resolution", deadline)
    await update(handle, ServiceRequestWorkflow.confirm, Confirm(accepted=True), f"{rid}-confirm", deadline, tally)
    await outbox.notice(rid, "revisit", deadline)
    await update(handle, ServiceRequestWorkflow.survey, SurveyAnswer(score=95, nps=9), f"{rid}-survey",
                 deadline, tally)
    return await durable(lambda: handle.result(rpc_timeout=timedelta(seconds=20)), deadline)


@dataclass
class Chaos:
    """What the chaos schedule did: each event's moment (s since the start) and the requests in flight then."""
    kills: list[dict[str, float]] = field(default_factory=list)
    restarts: list[dict[str, float]] = field(default_factory=list)
    worker_exits: int = 0  # the worker ended by itself (not by a kill): restarted, as a supervisor would


def schedule(kills: int, restarts: int, rng: random.Random) -> list[str]:
    """Kills in order, with each server restart at a seeded position after the first kill."""
    events = ["kill"] * kills
    for _ in range(restarts):
        events.insert(rng.randint(min(1, len(events)), len(events)), "restart")
    return events


async def chaos_monkey(worker: WorkerProcess, server: DevServer, events: list[str], rng: random.Random,
                       done: asyncio.Event, gap: tuple[float, float], pause: tuple[float, float], down_s: float,
                       tally: Tally) -> Chaos:
    """Each event at a random moment once the worker polls: SIGKILL the worker and restart it after a short pause,
    or stop the dev server for `down_s` and start it again on the same state (the worker keeps running)."""
    did = Chaos()
    began = time.monotonic()
    for event in events:
        if not worker.alive():
            did.worker_exits += 1
            worker.start()
        await worker.ready()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=rng.uniform(*gap))
        if done.is_set():
            break
        moment = {"at_s": round(time.monotonic() - began, 2), "in_flight": tally.started - tally.finished}
        if event == "kill":
            worker.kill()
            did.kills.append(moment)
            await asyncio.sleep(rng.uniform(*pause))
            worker.start()
        else:
            stopping = time.monotonic()
            await server.stop()
            stopped = time.monotonic()
            await asyncio.sleep(down_s)
            await server.start()
            did.restarts.append(moment | {"stop_s": round(stopped - stopping, 1),
                                          "down_s": round(time.monotonic() - stopped, 1)})
    # requests still in flight need a worker: keep one running until they are done
    while not done.is_set():
        if not worker.alive():
            did.worker_exits += 1
            worker.start()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=1.0)
    return did


async def runs_per_workflow(client: Client, task_queue: str, expected: int, timeout: float = 60.0) -> Counter[str]:
    """How many runs each workflow id has on the task queue (a retried start must reach the same run). Visibility
    lags a little behind the runs: read again until `expected` workflow ids are listed, or the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        runs: Counter[str] = Counter()
        async for execution in client.list_workflows(f'TaskQueue = "{task_queue}"'):
            runs[execution.id] += 1
        if len(runs) >= expected or time.monotonic() > deadline:
            return runs
        await asyncio.sleep(1.0)


def audit_archive(archive: Archive, finals: dict[str, RequestStatus], runs: Counter[str]) -> dict[str, Any]:
    """Per request: one run; seq 0..n-1; each driven action audited once (per closure); one acknowledgement, one
    resolution and one revisit notice per closure, one progress notice for the one response; notice keys numbered
    1..n per kind and each queued once; one archive record per closure; projection completed. Returns the lost and
    duplicated rows counted and every problem found."""
    problems: list[str] = []
    duplicates = lost = early = 0
    outbox = archive.outbox()
    keys = Counter(row["key"] for row in outbox)
    duplicates += sum(count - 1 for count in keys.values() if count > 1)
    numbered: dict[str, list[int]] = defaultdict(list)  # "<request>:<template>:<audience>:<recipient>" -> n
    for key in keys:
        kind, _, n = key.rpartition(":")
        numbered[kind].append(int(n))
    for kind, ns in numbered.items():
        if sorted(ns) != list(range(1, len(ns) + 1)):
            problems.append(f"{kind}: notice numbers {sorted(ns)}")
            lost += max(ns) - len(ns)
    for rid, final in finals.items():
        if runs[workflow_id_for(rid)] != 1:
            problems.append(f"{rid}: {runs[workflow_id_for(rid)]} workflow runs")
            duplicates += max(0, runs[workflow_id_for(rid)] - 1)
        trail = archive.audit_trail(rid)
        seqs = [row["seq"] for row in trail]
        if seqs != list(range(len(seqs))) or not seqs:
            problems.append(f"{rid}: audit seq {seqs}")
            duplicates += len(seqs) - len(set(seqs))
            lost += (max(seqs) + 1 - len(set(seqs))) if seqs else 1
        closures = final.reopen_count + 1
        actions = Counter(row["action"] for row in trail)  # a retried update or activity must not act twice
        once = {"accepted": 1, "respond": 1, "resolve": closures, "result_reported": closures, "confirm": closures,
                "closed": closures, "survey_sent": closures, "survey": closures, "completed": 1}
        first = {row["action"]: row["seq"] for row in reversed(trail)}
        # the race of issue 15: the answer taken with or before its question (a retried step after a kill)
        early += ("confirm" in first and first["confirm"] < first.get("result_reported", -1))
        early += ("survey" in first and first["survey"] < first.get("survey_sent", -1))
        for action, count in once.items():
            if actions[action] != count:
                problems.append(f"{rid}: {actions[action]} {action} audit events, expected {count}")
                duplicates += max(0, actions[action] - count)
                lost += max(0, count - actions[action])
        templates = Counter(row["template"] for row in outbox if row["request_id"] == rid)
        # the driver responds once: one progress notice
        expected = {"acknowledgement": 1, "resolution": closures, "revisit": closures, "progress": 1}
        for template, count in expected.items():
            if templates[template] != count:
                problems.append(f"{rid}: {templates[template]} {template} notices, expected {count}")
                duplicates += max(0, templates[template] - count)
                lost += max(0, count - templates[template])
        records = archive.archive_records(rid)
        if len(records) != closures:
            problems.append(f"{rid}: {len(records)} archive records for {closures} closures")
            duplicates += max(0, len(records) - closures)
            lost += max(0, closures - len(records))
        row = archive.get(rid)
        if row is None or row["stage"] != "completed":
            problems.append(f"{rid}: projection stage {row and row['stage']}")
    return {"duplicates": duplicates, "lost_rows": lost, "problems": problems, "answers_before_question": early,
            "audit_rows": sum(len(archive.audit_trail(rid)) for rid in finals), "notices": len(outbox)}


async def chaos(requests: int = 300, kills: int = 10, restarts: int = 1, seed: int = 7, work: Path | None = None,
                spread_s: float | None = None, budget_s: float = 600.0, down_s: float = 5.0) -> dict[str, Any]:
    """Drive `requests` requests to completion while the worker is SIGKILLed `kills` times and the dev server
    restarted `restarts` times. Returns the figures."""
    work = work or Path(tempfile.mkdtemp(prefix="kefu-chaos-"))
    policy_dir = work / "policies"
    policy_dir.mkdir(parents=True, exist_ok=True)
    policy = write_fast_pack(policy_dir, pack_id="chaos_sc", customer_window_s=120, revisit_delay_s=2)
    os.environ["KEFU_POLICY_PATH"] = str(policy_dir)  # this process reads the pack too (status, submit)
    rng = random.Random(seed)
    events = schedule(kills, restarts, rng)
    gap, pause = (1.5, 4.0), (0.5, 1.5)
    # requests start across the whole schedule (a worker restart takes ~2 s, a server restart ~down_s + 3 s) and at
    # most ~4 a second (the machine's rate), so every event finds requests in flight
    per_event = sum(gap) / 2 + sum(pause) / 2 + 2.0
    spread = spread_s if spread_s is not None else max(kills * per_event + restarts * (down_s + 5), requests / 4)
    database_url = f"sqlite:///{work / 'chaos.db'}"
    task_queue = f"kefu-chaos-{seed}"
    began = time.monotonic()
    server = DevServer(work / "temporal")
    address = await server.start()
    outbox = OutboxWatch(database_url)
    try:
        client = await connect_when_ready(address, quiet_runtime())
        worker = WorkerProcess(address, database_url, task_queue, policy_dir, work / "worker.log")
        worker.start()
        tally = Tally()
        done = asyncio.Event()
        monkey = asyncio.create_task(chaos_monkey(worker, server, events, rng, done, gap, pause, down_s, tally))
        watcher = asyncio.create_task(outbox.run())
        try:
            drivers = [drive(client, n, policy, task_queue, "chaos", spread * n / max(1, requests), budget_s, tally,
                             outbox) for n in range(requests)]
            results = await asyncio.gather(*drivers, return_exceptions=True)
        finally:
            done.set()
            did = await monkey
            watcher.cancel()
            worker.stop()
        wall = time.monotonic() - began
        runs = await durable(lambda: runs_per_workflow(client, task_queue, requests), time.monotonic() + 60,
                             attempt_timeout=90)
    finally:
        outbox.close()
        await server.stop()
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
        checked = audit_archive(archive, finals, runs)
    finally:
        archive.close()
    return {"requests": requests, "kills": len(did.kills), "kill_moments_s": [m["at_s"] for m in did.kills],
            "in_flight_at_kills": [m["in_flight"] for m in did.kills], "restarts": len(did.restarts),
            "restart_moments": did.restarts, "worker_exits": did.worker_exits, "completed": len(finals),
            "lost": requests - len(finals), "lost_rows": checked["lost_rows"], "duplicates": checked["duplicates"],
            "audit_rows": checked["audit_rows"], "notices": checked["notices"],
            "answers_before_question": checked["answers_before_question"], "update_retries": tally.retries,
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
    server = DevServer(work / "temporal")
    database_url = f"sqlite:///{work / 'restart.db'}"
    task_queue = "kefu-restart"
    began = time.monotonic()
    ids: list[str] = []
    address = await server.start()
    try:
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
    finally:
        await server.stop()
    stopped_at, stopped_wall = time.monotonic(), datetime.now(UTC)
    await asyncio.sleep(down_s)
    address = await server.start()
    try:
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
    finally:
        await server.stop()
    return {"requests": requests, "breached": breached, "running": running,
            "deadlines_passed_while_down": passed_while_down,
            "server_down_s": round(restarted_in, 1), "late_max_s": round(max(late), 2) if late else None,
            "wall_s": round(time.monotonic() - began, 1), "work_dir": str(work)}


def chaos_ok(result: dict[str, Any]) -> bool:
    return (result["lost"] == result["lost_rows"] == result["duplicates"] == 0 and not result["problems"]
            and not result["failures"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--restarts", type=int, default=1, help="dev server restarts during the run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--server-restart", action="store_true", help="the timers-across-a-restart check instead")
    parser.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    args = parser.parse_args()
    configure_logging(level="WARNING")
    if args.server_restart:
        result = asyncio.run(server_restart(args.requests))
        ok = result["breached"] == result["running"] == args.requests
        print(f"server restart: {result['requests']} requests, server down {result['server_down_s']} s; "
              f"{result['deadlines_passed_while_down']} deadlines passed while it was down; "
              f"breaches fired {result['breached']}, still running {result['running']} "
              f"(latest breach {result['late_max_s']} s after its deadline); wall {result['wall_s']} s")
    else:
        result = asyncio.run(chaos(args.requests, args.kills, args.restarts, args.seed))
        ok = chaos_ok(result)
        restarts = ", ".join(f"at {r['at_s']} s, {r['in_flight']} in flight, stopped in {r['stop_s']} s, "
                             f"down {r['down_s']} s" for r in result["restart_moments"])
        print(f"chaos: {result['requests']} requests, {result['kills']} worker SIGKILLs "
              f"at {result['kill_moments_s']} s with {result['in_flight_at_kills']} requests in flight, "
              f"{result['restarts']} server restart(s) ({restarts}), worker exits {result['worker_exits']}; "
              f"completed {result['completed']}, lost {result['lost']} requests and {result['lost_rows']} rows, "
              f"duplicates {result['duplicates']} ({result['audit_rows']} audit rows, {result['notices']} notices), "
              f"answers taken before their question {result['answers_before_question']}, "
              f"update retries {result['update_retries']}; wall {result['wall_s']} s")
        for line in [*result["failures"], *result["problems"], *result["refused"]][:20]:
            print(f"  {line}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
