"""The embedded stack for the tests that run through its real scheduler."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from mlbench_core.settings import Settings
from mlbench_core.stack import Stack


@contextlib.contextmanager
def running_stack(settings: Settings, timeout: float = 240) -> Iterator[Stack]:
    """A stack up for the block and down after it, whatever the block does."""
    stack = Stack(settings)
    stack.up(timeout=timeout)
    try:
        yield stack
    finally:
        stack.down()
