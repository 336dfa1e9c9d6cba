"""Shared fixtures: the time-skipping test server (one per session), a fresh SQLite archive per test, and a
worker on a unique task queue."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from archive import migrate
from archive.store import Archive
from infra import temporal_env
from worker import build_worker

pytest_plugins = ["tests.conftest_archive"]


@pytest_asyncio.fixture(scope="session")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        interceptors=temporal_env.client_interceptors(), test_server_existing_path=temporal_env.test_server(),
        data_converter=temporal_env.data_converter())
    await temporal_env.register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    store = Archive(f"sqlite:///{tmp_path / 'kefu.db'}")
    migrate.prepare(store)  # as the worker creates it (stamped at head): build_worker then has nothing to adopt
    yield store


@pytest.fixture
def task_queue() -> str:
    return f"kefu-test-{uuid.uuid4().hex[:8]}"


STARTED: list[str] = []  # workflow ids started by the current test (tests.workflow.helpers.start adds to it)


@contextlib.asynccontextmanager
async def running_worker(env: WorkflowEnvironment, archive: Archive, task_queue: str) -> AsyncIterator[None]:
    """A worker for one test. Afterwards the test's still-open requests are terminated: on the shared
    time-skipping server their timers would otherwise wait for a worker and stall every later test's clock."""
    try:
        async with build_worker(env.client, archive, task_queue=task_queue):
            yield
    finally:
        for workflow_id in STARTED:
            with contextlib.suppress(RPCError):
                await env.client.get_workflow_handle(workflow_id).terminate("test finished")
        STARTED.clear()
