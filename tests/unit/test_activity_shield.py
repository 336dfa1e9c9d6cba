"""Database work in a synchronous activity finishes before a cancellation lands in its thread (activities/common)."""

from __future__ import annotations

import threading
import time

import pytest
from temporalio import activity
from temporalio.exceptions import CancelledError
from temporalio.testing import ActivityEnvironment

from activities.common import attempt, uninterrupted


def test_cancellation_waits_for_the_end_of_the_block() -> None:
    env = ActivityEnvironment()
    steps: list[str] = []
    began = threading.Event()

    @activity.defn
    def write() -> None:
        with uninterrupted():
            steps.append("begin")
            began.set()
            deadline = time.monotonic() + 30  # the cancellation arrives here, however late on a loaded machine
            while not activity.is_cancelled() and time.monotonic() < deadline:
                time.sleep(0.01)
            steps.append("commit")
        steps.append("after")  # never reached: the cancellation is raised at the end of the block

    def cancel_inside_the_block() -> None:
        if began.wait(timeout=30):
            env.cancel()

    threading.Thread(target=cancel_inside_the_block, daemon=True).start()
    with pytest.raises(CancelledError):
        env.run(write)
    assert steps == ["begin", "commit"]


def test_outside_an_activity_it_is_a_plain_block() -> None:
    with uninterrupted():
        pass
    assert attempt() is None
