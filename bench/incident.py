"""Incident broadcast: how long until every request linked to one incident has moved on after `resolve`?

Starts a dev server and the kefu worker, submits N complaints under the finance pack (with an incidents section),
links them all to one incident, resolves it, and times the resolution reaching every request (their archive rows'
resolved_at), per request too.

    python -m bench.incident [--requests 1000] [--json FILE] [--port 7433]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from archive.store import REQUESTS, Archive
from bench.chaos import free_port
from bench.throughput import run_many
from cli.incidents import declare_incident
from cli.main import submit
from infra.logconfig import configure_logging
from models.incident import MAX_LINK, Declare, IncidentStatus, Link, Resolve
from models.intake import Intake
from policies.loader import BUILTIN_DIR
from worker import build_worker, connect_when_ready, dev_server
from workflows.incident import IncidentWorkflow

TASK_QUEUE = "kefu-bench-incident"
SUPERVISOR = {"id": "sup-bench", "role": "supervisor"}
# 000 §7.2 / 001 Ch6 four levels; the figures are the project's example, the lead posts progress this often
INCIDENTS: dict[str, Any] = {
    "levels": {
        1: {"label": "一级 major", "report_to": ["senior_management", "supervisor"], "report_within": "15m",
            "update_every": "1h"},
        2: {"label": "二级 significant", "report_to": ["supervisor"], "report_within": "30m", "update_every": "2h"},
        3: {"label": "三级 general", "report_to": ["supervisor"], "report_within": "1h", "update_every": "4h"},
        4: {"label": "四级 minor", "report_to": ["team_lead"], "report_within": "2h", "update_every": "8h"},
    },
    "auto": {"customers": 3, "window": "1h", "level": 3, "lead": "duty-supervisor"},
    "review_within": "3d",
    "source": "000 §7.1–7.2, 001 Ch6 (intervals: project default)",
}


def write_incident_pack(directory: Path, base: str = "finance", pack_id: str | None = None, **section: Any) -> str:
    """policies/<base>.yaml with an incidents section (INCIDENTS, top-level keys overridden by `section`; auto=None
    turns detection off), written to `directory` as `pack_id` (default: the same id, overriding the built-in pack;
    put the directory on KEFU_POLICY_PATH). Returns the pack id."""
    pack = yaml.safe_load((BUILTIN_DIR / f"{base}.yaml").read_text(encoding="utf-8"))
    pack["id"] = pack_id or base
    pack["incidents"] = {key: value for key, value in {**INCIDENTS, **section}.items() if value is not None}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{pack['id']}.yaml").write_text(yaml.safe_dump(pack, allow_unicode=True), encoding="utf-8")
    return str(pack["id"])


def complaint(n: int, prefix: str, policy: str = "finance") -> Intake:
    return Intake.model_validate({
        "request_id": f"{prefix}-{n:05d}", "policy": policy, "channel": "phone",
        "customer": {"id": f"C{n}", "name": "Bench", "phone": "13800000000"},
        "description": "手机银行无法登录，我要投诉", "type_hint": "complaint"})


def resolved_count(archive: Archive, request_ids: list[str]) -> int:
    with Session(archive.engine) as session:
        return int(session.execute(select(func.count()).select_from(REQUESTS).where(
            REQUESTS.c.request_id.in_(request_ids), REQUESTS.c.resolved_at.is_not(None))).scalar() or 0)


async def incident_status(handle: WorkflowHandle, ready: Any, timeout: float) -> IncidentStatus:
    """Poll the incident's status query; a query that times out on a saturated worker is asked again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = await handle.query(IncidentWorkflow.status)
        except RPCError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)
            continue
        if ready(status) or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.2)


def registered_count(archive: Archive, request_ids: list[str]) -> int:
    with Session(archive.engine) as session:
        return int(session.execute(select(func.count()).select_from(REQUESTS).where(
            REQUESTS.c.request_id.in_(request_ids), REQUESTS.c.ticket.is_not(None))).scalar() or 0)


async def link_all(client: Client, task_queue: str, incident_id: str, prefix: str, requests: int,
                   archive: Archive, concurrency: int = 50,
                   timeout: float = 900.0) -> tuple[WorkflowHandle, list[str]]:
    """Submit `requests` complaints, wait until the archive has registered them all, then declare one incident
    linking them (MAX_LINK per declaration or update)."""
    intakes = [complaint(n, prefix) for n in range(requests)]
    request_ids = [intake.request_id for intake in intakes]
    await run_many(requests, concurrency,
                   lambda i: submit(client, intakes[i], wait_for_ticket=False, task_queue=task_queue))
    deadline = time.monotonic() + timeout
    while registered_count(archive, request_ids) < requests and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    handle = await declare_incident(client, Declare.model_validate({
        "incident_id": incident_id, "policy": "finance", "level": 1, "title": "手机银行登录故障",
        "lead": "sup-bench", "declared_by": SUPERVISOR, "request_ids": request_ids[:MAX_LINK]}), task_queue)
    for i in range(MAX_LINK, len(request_ids), MAX_LINK):
        await handle.execute_update(IncidentWorkflow.link, Link.model_validate(
            {"actor": SUPERVISOR, "request_ids": request_ids[i:i + MAX_LINK]}))
    return handle, request_ids


async def measure(client: Client, archive: Archive, task_queue: str, requests: int, prefix: str,
                  timeout: float = 600.0) -> dict[str, Any]:
    began = time.monotonic()
    handle, ids = await link_all(client, task_queue, f"{prefix}-inc", prefix, requests, archive)
    linked = await incident_status(handle, lambda s: s.linked == requests and s.broadcast_pending == 0, timeout)
    setup_s = time.monotonic() - began
    mark = time.monotonic()
    await handle.execute_update(IncidentWorkflow.resolve, Resolve.model_validate(
        {"actor": SUPERVISOR, "summary": "登录服务已恢复", "root_cause": "认证服务证书过期"}))
    done = 0
    while time.monotonic() - mark < timeout:
        done = resolved_count(archive, ids)
        if done == requests:
            break
        await asyncio.sleep(0.1)
    seconds = time.monotonic() - mark
    final = await incident_status(handle, lambda s: s.broadcast_pending == 0, 60)
    return {"requests": requests, "linked": linked.linked, "resolved": done,
            "seconds_to_every_request_resolved": round(seconds, 2),
            "ms_per_request": round(1000 * seconds / requests, 2), "setup_seconds": round(setup_s, 1),
            "broadcast_pending": final.broadcast_pending}


async def run(requests: int, port: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="kefu-bench-incident-"))
    os.environ["KEFU_POLICY_PATH"] = str(work)
    write_incident_pack(work, auto=None)  # one declared incident: no detection from the bench's complaints
    async with dev_server(port=port, ui_port=port + 1000, state_dir=work) as address:
        client = await connect_when_ready(address)
        archive = Archive(f"sqlite:///{work / 'bench.db'}")
        async with build_worker(client, archive, task_queue=TASK_QUEUE):
            result = await measure(client, archive, TASK_QUEUE, requests, "inc")
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(["python -m bench.incident", *sys.argv[1:]]), "machine_cores": os.cpu_count(),
            **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.incident", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--port", type=int, default=0, help="dev server port (default: a free one)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON ('-' for stdout only)")
    args = parser.parse_args(argv)
    configure_logging(level="WARNING")
    port = args.port or free_port()
    while not args.port and port + 1000 > 65535:
        port = free_port()
    result = asyncio.run(run(args.requests, port))
    text = json.dumps(result, ensure_ascii=False, indent=2)
    if args.json and args.json != "-":
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    if args.json == "-":
        print(text)
    else:
        print(f"{result['resolved']}/{result['requests']} linked requests resolved "
              f"{result['seconds_to_every_request_resolved']} s after the incident's resolve "
              f"({result['ms_per_request']} ms per request)")
    return 0 if result["resolved"] == result["requests"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
