"""Incident broadcast on the dev server (SEEDS §11): 100 linked requests, the incident resolved, the worker process
SIGKILLed while the resolution is being delivered and a new one started; every request is resolved, with exactly
one `incident_resolved` line and one `resolve` line in its audit trail (heartbeat resume + (incident, seq) dedup)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from archive import incidents as incident_store
from archive.store import Archive
from bench.chaos import WorkerProcess
from bench.incident import SUPERVISOR, incident_status, link_all, resolved_count, write_incident_pack
from models.incident import Resolve, incident_workflow_id
from models.intake import workflow_id_for
from tests.integration.conftest import dev_address
from workflows.incident import IncidentWorkflow

pytestmark = pytest.mark.integration
REQUESTS = 100


async def test_resolution_reaches_every_request_once_across_a_worker_kill(
        dev_env: WorkflowEnvironment, started: list[str], unique_queue: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    policies = tmp_path / "policies"
    write_incident_pack(policies, auto=None)  # one declared incident; no detection from 100 complaints
    monkeypatch.setenv("KEFU_POLICY_PATH", str(policies))
    url = f"sqlite:///{tmp_path / 'kefu.db'}"
    archive = Archive(url)
    archive.create_schema()
    worker = WorkerProcess(dev_address(dev_env), url, unique_queue, policies, tmp_path / "worker.log")
    worker.env["KEFU_BROADCAST_CONCURRENCY"] = "4"  # a slower delivery, so the kill lands inside it
    prefix = f"ib-{uuid.uuid4().hex[:6]}"
    incident_id = f"{prefix}-inc"
    worker.start()
    try:
        assert await worker.ready(), "worker did not start"
        started.append(incident_workflow_id(incident_id))
        started.extend(workflow_id_for(f"{prefix}-{n:05d}") for n in range(REQUESTS))
        handle, ids = await link_all(dev_env.client, unique_queue, incident_id, prefix, REQUESTS, archive)
        linked = await incident_status(handle, lambda s: s.linked == REQUESTS and s.broadcast_pending == 0, 120)
        assert linked.linked == REQUESTS and linked.broadcast_pending == 0, linked
        await handle.execute_update(IncidentWorkflow.resolve, Resolve.model_validate(
            {"actor": SUPERVISOR, "summary": "登录服务已恢复", "root_cause": "认证服务证书过期"}))
        worker.kill()  # the broadcast activity was just scheduled: cut it off
        at_kill = resolved_count(archive, ids)
        worker.start()
        assert await worker.ready(), "worker did not restart"
        deadline = time.monotonic() + 120
        while resolved_count(archive, ids) < REQUESTS and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        final = await incident_status(handle, lambda s: s.broadcast_pending == 0, 60)
    finally:
        worker.stop()
    assert at_kill < REQUESTS, "the kill came after the whole delivery"
    assert resolved_count(archive, ids) == REQUESTS
    assert final.stage == "resolved" and final.broadcast_pending == 0
    for request_id in ids:
        trail = [e for e in archive.audit_trail(request_id) if not e["rejected"]]
        assert [e["action"] for e in trail].count("incident_resolved") == 1, request_id
        assert [e["action"] for e in trail].count("resolve") == 1, request_id
        assert archive.get(request_id)["stage"] == "resolved"  # type: ignore[index]
    assert [e["action"] for e in incident_store.incident_trail(archive, incident_id)].count("resolved") == 1
