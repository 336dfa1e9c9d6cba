"""Hypothesis-generated bad input against submit and every update and signal (issue 7).

Each payload gets a clear one-line rejection (or is valid and applied), no workflow task ever fails, and the
request keeps answering. `make test` runs a small sample; KEFU_FUZZ_EXAMPLES=10000 is the nightly size. The raw-SDK
fuzz driver against a real worker process is bench/fuzz.py (tests/integration/test_fuzz_driver.py); the two bugs it
found with payloads that are not JSON at all are the xfail tests at the end.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import RawValue
from temporalio.testing import WorkflowEnvironment

from archive.store import Archive
from cli.main import validation_message
from infra import temporal_env
from infra.logconfig import configure_logging
from models.actions import ACTION_KINDS, ROLE_RANK
from models.intake import Intake, workflow_id_for
from tests.conftest import STARTED, running_worker
from tests.polling import task_failures
from tests.workflow.helpers import intake, start, status

EXAMPLES = int(os.environ.get("KEFU_FUZZ_EXAMPLES", "80"))

scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
roles = st.sampled_from([*ROLE_RANK, "nobody"])
actors = json_values | st.fixed_dictionaries({"id": st.text(max_size=70) | json_values, "role": roles})
actions = json_values | st.fixed_dictionaries(
    {"kind": st.sampled_from([*ACTION_KINDS, "bogus"])},
    optional={key: json_values | st.text(max_size=30) for key in
              ("message", "text", "question", "owner", "department", "reason", "priority", "by", "summary",
               "root_cause", "customer_notice", "passed", "joint")})
act_payloads = json_values | st.fixed_dictionaries({"actor": actors, "action": actions})
confirm_payloads = json_values | st.fixed_dictionaries({}, optional={"accepted": json_values, "comment": json_values})
survey_payloads = json_values | st.fixed_dictionaries(
    {"score": st.integers(-50, 200) | json_values}, optional={"nps": json_values, "resolved": json_values})
escalate_payloads = json_values | st.fixed_dictionaries(
    {"actor": actors, "reason": st.text(max_size=20) | json_values},
    optional={"to_level": st.integers(-3, 9) | json_values})


def sample(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """Draw `count` examples with hypothesis's own generator (shrinking off: we want the variety)."""
    drawn: list[Any] = []

    @settings(max_examples=count, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck), phases=["generate"])
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn


def mutated_intakes(count: int) -> list[dict[str, Any]]:
    """A valid intake with one to three fields replaced by arbitrary JSON."""
    base = intake().model_dump(mode="json")
    fields = [*base, "customer.name", "customer.phone", "customer.email", "customer.id", "unknown_field"]
    swaps = st.lists(st.tuples(st.sampled_from(fields), json_values), min_size=1, max_size=3)
    out = []
    for changes in sample(swaps, count):
        raw = {**base, "customer": dict(base["customer"])}
        for field, value in changes:
            if field.startswith("customer."):
                if isinstance(raw["customer"], dict):  # an earlier swap may have replaced the whole object
                    raw["customer"][field.split(".", 1)[1]] = value
            else:
                raw[field] = value
        out.append(raw)
    return out


def test_submit_rejects_bad_intake_in_one_line_naming_the_field() -> None:
    rejected = 0
    for raw in mutated_intakes(EXAMPLES * 4):
        try:
            Intake.model_validate(raw)
        except ValidationError as exc:
            message = validation_message(exc)
            field = message.split(":", 1)[0]
            assert "\n" not in message and field and field != "input", message
            rejected += 1
    assert rejected > EXAMPLES  # most mutations are invalid; each said which field


async def test_updates_and_signals_never_wedge_a_request(ts_env: WorkflowEnvironment, archive: Archive,
                                                         task_queue: str) -> None:
    async with running_worker(ts_env, archive, task_queue):
        handle, _ = await start(ts_env.client, task_queue, accepted_by="agent-li")
        refused = applied = 0
        for name, strategy in (("act", act_payloads), ("confirm", confirm_payloads), ("survey", survey_payloads)):
            for payload in sample(strategy, EXAMPLES):
                try:
                    await handle.execute_update(name, payload, result_type=dict)
                    applied += 1
                except WorkflowUpdateFailedError as exc:
                    message = str(getattr(exc.cause, "message", exc.cause))
                    assert message and "\n" not in message.strip(), message
                    refused += 1
        signals = sample(escalate_payloads, EXAMPLES)
        for payload in signals:
            await handle.signal("escalate", payload)
        st_after = await status(handle)  # still answering
        history = await handle.fetch_history()
    assert not task_failures(history)
    assert refused > applied and st_after.request_id
    trail = archive.audit_trail(st_after.request_id)
    escalate_events = [e for e in trail if e["action"] in ("escalate", "escalation_at_top")
                       and e["actor_id"] != "kefu"]
    assert len(escalate_events) >= len(signals) - 3  # every signal answered: applied, or recorded as rejected


PHONE = "13812345678"


def truncated_json() -> RawValue:
    """A JSON payload cut short, quoting a customer's phone: no decoder accepts it, so no handler ever sees it."""
    return RawValue(Payload(metadata={"encoding": b"json/plain"}, data=b'{"customer": {"phone": "' + PHONE.encode()))


@pytest_asyncio.fixture
async def private_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own: a run whose workflow task keeps failing leaves a server unable to
    skip time, and the shared one would stall every later test (as in test_bad_input.py)."""
    async with await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=temporal_env.test_server(), data_converter=temporal_env.data_converter()) as env:
        await temporal_env.register_search_attributes(env.client)
        yield env


async def settled(handle: WorkflowHandle, timeout: float = 30.0) -> tuple[WorkflowExecutionStatus | None, int]:
    """Poll until the run ended or a workflow task failed; (status, workflow task failures)."""
    deadline = time.monotonic() + timeout
    while True:
        described = await handle.describe()
        failed = len(task_failures(await handle.fetch_history()))
        if failed or described.status != WorkflowExecutionStatus.RUNNING or time.monotonic() > deadline:
            return described.status, failed
        await asyncio.sleep(0.2)


@pytest.mark.xfail(strict=True, reason="bug: an intake payload that is not JSON (truncated, or an unknown encoding) "
                   "fails its workflow task forever ('Failed decoding arguments' before @workflow.init runs) instead "
                   "of failing its run with InvalidIntake; the run stays Running, wedged")
async def test_an_intake_that_is_not_json_fails_its_run_at_once(private_env: WorkflowEnvironment, archive: Archive,
                                                                task_queue: str) -> None:
    workflow_id = workflow_id_for(f"t-{uuid.uuid4().hex[:10]}")
    STARTED.append(workflow_id)
    async with running_worker(private_env, archive, task_queue):
        handle = await private_env.client.start_workflow("ServiceRequestWorkflow", truncated_json(), id=workflow_id,
                                                         task_queue=task_queue)
        status, failed_tasks = await settled(handle)
    assert failed_tasks == 0 and status == WorkflowExecutionStatus.FAILED


async def signal_processed(handle: WorkflowHandle, timeout: float = 30.0) -> bool:
    """Poll until a workflow task completed after the run's last signal arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kinds = [e.event_type for e in (await handle.fetch_history()).events]
        signaled = [i for i, kind in enumerate(kinds) if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
        if signaled and EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED in kinds[signaled[-1]:]:
            return True
        await asyncio.sleep(0.2)
    return False


def worker_log_formatter() -> logging.Formatter:
    """The formatter of the worker's log lines (infra/logconfig), the root logger left as it was."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("INFO")
        formatter = root.handlers[0].formatter
    finally:
        root.handlers, root.level = handlers, level
        structlog.reset_defaults()
    assert formatter is not None
    return formatter


async def test_a_signal_that_is_not_json_leaves_no_pii_in_the_log(private_env: WorkflowEnvironment, archive: Archive,
                                                                  task_queue: str,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    formatter = worker_log_formatter()
    async with running_worker(private_env, archive, task_queue):
        handle, _ = await start(private_env.client, task_queue)
        await handle.signal("escalate", truncated_json())
        assert await signal_processed(handle)
    logged = "\n".join(formatter.format(record) for record in caplog.records)
    assert PHONE not in logged
