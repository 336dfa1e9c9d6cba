"""Horizontal scaling (issue 9, docs/deployment.md): two workers polling one task queue share the requests. Each
request's workflow tasks are completed by one worker or the other (WorkflowTaskCompleted.identity in its history);
across 20 requests both workers have work. One of the two serves the SDK's Prometheus endpoint (infra/metrics.py)."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections import Counter

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from archive.store import Archive
from cli.main import submit
from infra import metrics, temporal_env
from tests.integration.conftest import dev_address
from tests.polling import pollers, wait_for_status
from tests.workflow.helpers import intake
from worker import build_worker

pytestmark = pytest.mark.integration
REQUESTS = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_two_workers_share_one_task_queue(dev_env: WorkflowEnvironment, archive: Archive, unique_queue: str,
                                               started: list[str]) -> None:
    port = free_port()
    runtime = metrics.prometheus_runtime(f"127.0.0.1:{port}")
    # Two hosts would have two identities (pid@host); here the clients name them, and worker B's client carries
    # the runtime with the Prometheus endpoint, as KEFU_METRICS_ADDRESS gives it in a deployment.
    client_a = await Client.connect(dev_address(dev_env), data_converter=temporal_env.data_converter(),
                                    interceptors=temporal_env.client_interceptors(),
                                    identity="worker-a")
    client_b = await Client.connect(dev_address(dev_env), data_converter=temporal_env.data_converter(),
                                    interceptors=temporal_env.client_interceptors(),
                                    identity="worker-b", runtime=runtime)
    worker_a = build_worker(client_a, archive, task_queue=unique_queue)
    worker_b = build_worker(client_b, archive, task_queue=unique_queue)
    async with worker_a, worker_b:
        await pollers(dev_env.client, unique_queue, {"worker-a", "worker-b"})  # both waiting for tasks
        handles = await asyncio.gather(*(submit(dev_env.client, intake(), task_queue=unique_queue,
                                                wait_for_ticket=False) for _ in range(REQUESTS)))
        started.extend(handle.id for handle, _ in handles)
        statuses = await asyncio.gather(*(wait_for_status(handle, lambda st: bool(st.ticket))
                                          for handle, _ in handles))
        assert all(status.ticket for status in statuses)
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                                                      timeout=30).read().decode())

    per_worker: Counter[str] = Counter()
    for handle, _ in handles:
        seen = {event.workflow_task_completed_event_attributes.identity
                async for event in handle.fetch_history_events()
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED}
        assert seen <= {"worker-a", "worker-b"}
        per_worker.update(seen)
    assert per_worker["worker-a"] > 0 and per_worker["worker-b"] > 0, per_worker
    assert "temporal_" in body and "task_queue=\"" + unique_queue + "\"" in body
