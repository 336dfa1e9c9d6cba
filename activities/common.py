"""What every archive-writing activity shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio import activity


def attempt() -> int | None:
    """The activity's attempt number for log lines (None when called outside an activity, e.g. from a test)."""
    return activity.info().attempt if activity.in_activity() else None


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Run database work to its end before a cancellation is raised into the thread.

    The SDK cancels a synchronous activity by raising an exception inside its thread, wherever it is; raised while
    the thread held the connection pool's lock, it left the lock held and wedged every activity thread (seen once
    in the scale benchmark, when evicted workflows cancelled their local activities). The transaction either
    commits or rolls back; the cancellation follows at the end of the block.
    """
    if activity.in_activity():
        with activity.shield_thread_cancel_exception():
            yield
    else:
        yield
