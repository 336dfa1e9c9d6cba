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

    @activity.defn
    def write() -> None:
        with uninterrupted():
            steps.append("begin")
            time.sleep(0.5)  # the cancellation arrives here
            steps.append("commit")
        steps.append("after")  # never reached: the cancellation is raised at the end of the block

    threading.Timer(0.1, env.cancel).start()
    with pytest.raises(CancelledError):
        env.run(write)
    assert steps == ["begin", "commit"]


def test_outside_an_activity_it_is_a_plain_block() -> None:
    with uninterrupted():
        pass
    assert attempt() is None
