"""File-mode helpers for the data-at-rest tests."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@contextlib.contextmanager
def umask(value: int = 0o022) -> Iterator[None]:
    """The usual umask by default, under which files and folders are created world-readable unless kefu says
    otherwise."""
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)
