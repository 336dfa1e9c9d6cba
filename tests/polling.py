"""Waiting in tests: poll for the condition with a generous overall timeout instead of sleeping a fixed time or
giving up after a few seconds. On a loaded machine (2 cores shared with other test suites) every fixed wait is too
short sooner or later; a passing test never waits the timeout out."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle, WorkflowHistory

from cli import main as cli_main
from models.status import RequestStatus

T = TypeVar("T")
PATIENCE = 60.0  # seconds
# The SDK's deadlock detector fails a workflow task whose activation took over 2 s of wall time. On a starved CPU (a
# new run's sandbox takes 0.1-0.25 s of CPU, several times that at load 10 on 2 cores) that is the machine, not a
# wedge: the task is retried and the run carries on.
DEADLOCK_DETECTED = "[TMPRL1101]"


async def eventually(check: Callable[[], T | Awaitable[T]], timeout: float = PATIENCE, every: float = 0.1,
                     what: str = "condition") -> T:
    """check() (sync or async) until it returns something truthy; that value. AssertionError at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value or time.monotonic() > deadline:
            assert value, f"{what} not met within {timeout:.0f} s"
            return value  # type: ignore[return-value]
        await asyncio.sleep(every)


async def pollers(client: Client, task_queue: str, identities: set[str], timeout: float = PATIENCE) -> None:
    """Until every worker identity in `identities` polls the task queue for workflow tasks."""
    request = DescribeTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
                                       task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)

    async def polling() -> bool:
        described = await client.workflow_service.describe_task_queue(request)
        return identities <= {poller.identity for poller in described.pollers}

    await eventually(polling, timeout, every=0.2, what=f"pollers {sorted(identities)} on {task_queue}")


async def wait_for_status(handle: WorkflowHandle, ready: Callable[[RequestStatus], bool],
                          timeout: float = PATIENCE) -> RequestStatus:
    """cli.main.wait_for_status with the tests' patience (its own default, 20 s, is the CLI's). Returns the last
    status at the timeout; the caller's assertion names what was not reached."""
    return await cli_main.wait_for_status(handle, ready, timeout)


def task_failures(history: WorkflowHistory) -> list[str]:
    """The failure message of each failed workflow task in the history, except the deadlock detector's."""
    messages = [event.workflow_task_failed_event_attributes.failure.message for event in history.events
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    return [message for message in messages if DEADLOCK_DETECTED not in message]
