"""Dispatch with two workers on one task queue and one PostgreSQL archive (issue 6): requests arrive at once, both
workers assign from the same directory, and no agent ever holds more cases than its capacity."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from archive.directory import Directory
from archive.store import Archive
from cli.main import submit
from infra import temporal_env
from models.assignment import Agent
from models.status import RequestStatus
from tests.integration.conftest import dev_address
from tests.polling import PATIENCE, pollers, wait_for_status
from tests.workflow.helpers import intake
from worker import build_worker

pytestmark = pytest.mark.integration
REQUESTS = 14
AGENTS = {"net-1": 2, "net-2": 2, "net-3": 1}  # capacity: 5 places for 14 requests
OUTAGE = {"policy": "telecom", "channel": "phone", "type_hint": None, "description": "家里宽带断网了，完全上不了网"}


def settled(st: RequestStatus) -> bool:
    """Offered to an agent, or waiting because every agent is full."""
    return st.sub_state == "assigned" or st.last_action == "dispatch_waiting"


async def test_two_workers_never_exceed_capacity(dev_env: WorkflowEnvironment, pg_url: str, unique_queue: str,
                                                 started: list[str]) -> None:
    archive_a, archive_b = Archive(pg_url), Archive(pg_url)  # two engines, as two worker processes would have
    archive_a.create_schema()
    directory = Directory(archive_a.engine)
    directory.upsert_agents([Agent(id=agent_id, name=agent_id, team="network", department="network",
                                   capacity=capacity) for agent_id, capacity in AGENTS.items()])
    clients = [await Client.connect(dev_address(dev_env), data_converter=temporal_env.data_converter(),
                                    interceptors=temporal_env.client_interceptors(),
                                    identity=name) for name in ("worker-a", "worker-b")]
    try:
        async with build_worker(clients[0], archive_a, task_queue=unique_queue), \
                build_worker(clients[1], archive_b, task_queue=unique_queue):
            await pollers(dev_env.client, unique_queue, {"worker-a", "worker-b"})  # both waiting for tasks
            handles = await asyncio.gather(*(submit(dev_env.client, intake(**OUTAGE), task_queue=unique_queue,
                                                    wait_for_ticket=False) for _ in range(REQUESTS)))
            started.extend(handle.id for handle, _ in handles)
            finals = await asyncio.gather(*(wait_for_status(handle, settled, timeout=2 * PATIENCE)
                                            for handle, _ in handles))
    finally:
        archive_a.close()
        archive_b.close()

    assert all(settled(st) for st in finals), [st.last_action for st in finals]
    offered = [st.owner for st in finals if st.sub_state == "assigned"]
    assert len(offered) == sum(AGENTS.values())  # every place taken, none twice
    held = {a["id"]: a["open_cases"] for a in directory.list_agents()}
    assert held == AGENTS
    assert all(offered.count(agent_id) == capacity for agent_id, capacity in AGENTS.items())
    assert {row["agent_id"] for row in directory.held()} == set(AGENTS)
    assert len(directory.held()) == sum(AGENTS.values())
