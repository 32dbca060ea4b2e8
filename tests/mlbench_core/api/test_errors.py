"""retry_for: a call repeated while the API is away, for a bounded time."""

from __future__ import annotations

import time

import pytest

from mlbench_core.api import ApiUnavailable, Conflict
from mlbench_core.api.errors import retry_for


def flaky(failures: list[Exception]):  # noqa: ANN201
    """A call that raises each of ``failures`` in turn, then answers how often it ran."""
    calls = []

    def call() -> int:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return len(calls)

    return call


def test_retryable_errors_are_retried_until_the_call_succeeds():
    seen = []
    call = flaky([ApiUnavailable("down"), ApiUnavailable("still down")])
    assert retry_for(call, 30, seen.append) == 3
    assert [str(e) for e in seen] == ["down", "still down"]


def test_other_errors_are_raised_at_once():
    with pytest.raises(Conflict):
        retry_for(flaky([Conflict(409, "taken"), ApiUnavailable("x")]), 30)


def test_the_last_error_is_raised_once_the_time_is_up():
    started = time.monotonic()
    with pytest.raises(ApiUnavailable, match="down"):
        retry_for(flaky([ApiUnavailable("down")] * 100), 1.2)
    assert time.monotonic() - started < 5
