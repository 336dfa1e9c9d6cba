"""What both workflows share: the task harness, the timer helper, local activities and payload checks.

Deterministic code only (workflow.now(), workflow timers); every call to the outside world is an activity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from models.errors import every_problem

R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)

# Archive writes, policy loading and dispatch are short, idempotent and local to the worker: local activities keep
# the history small (one marker each) and retry until the database is back.
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
LOCAL_TIMEOUT = timedelta(seconds=30)


class LocalSteps:
    """A lifecycle step's local activities. While one is in flight the archive flusher holds its batch, so a
    workflow task writes the archive once, after its steps have run (docs/performance.md)."""

    def __init__(self) -> None:
        self.busy = 0

    @property
    def idle(self) -> bool:
        return self.busy == 0

    async def run(self, activity: Callable[..., Awaitable[R]] | Callable[..., R], arg: Any, summary: str) -> R:
        self.busy += 1
        try:
            return await local(activity, arg, summary)
        finally:
            self.busy -= 1


async def local(activity: Callable[..., Awaitable[R]] | Callable[..., R], arg: Any, summary: str) -> R:
    """One local activity by reference (its name and result type come from its definition)."""
    return await workflow.execute_local_activity_method(activity, arg, summary=summary,
                                                        start_to_close_timeout=LOCAL_TIMEOUT, retry_policy=RETRY)


async def run_tasks(*steps: Coroutine[Any, Any, None]) -> None:
    """Run the workflow's tasks side by side. A bug in any of them fails the workflow task (visible, retried after
    a fix) instead of dying silently in the background."""
    tasks = [asyncio.create_task(step) for step in steps]
    await workflow.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in tasks:
        if task.done() and (error := task.exception()) is not None:
            raise error


async def timer(changed: Callable[[], bool], until: datetime | None, summary: str) -> bool:
    """True when `until` arrives before `changed` turns true; False when it changed (or nothing is due and it
    changed). One durable timer, cancelled when the condition wins."""
    if until is None:
        await workflow.wait_condition(changed)
        return False
    delay = (until - workflow.now()).total_seconds()
    if delay > 0:
        try:
            await workflow.wait_condition(changed, timeout=delay, timeout_summary=summary.strip())
            return False
        except TimeoutError:
            pass
    return not changed()


def require(payload: object, model: type[M], message: str) -> M:
    """A message's payload as its model. Payloads arrive undecoded (typed Any), so a malformed one is refused here
    by its validator with every field named, not by the SDK as "Failed decoding arguments" (issue 15)."""
    if isinstance(payload, model):
        return payload
    if not isinstance(payload, dict):
        fields = ", ".join(model.model_fields)
        raise ValueError(f"{message}: the payload must be an object with fields {fields}, got {type(payload).__name__}")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise ValueError(f"{message}: {every_problem(exc)}") from None
