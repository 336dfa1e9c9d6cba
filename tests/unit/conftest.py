"""Fixtures for unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.modes import umask


@pytest.fixture
def umask_022() -> Iterator[None]:
    with umask(0o022):
        yield
