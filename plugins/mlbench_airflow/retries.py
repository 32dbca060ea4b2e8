"""Retries of the tasks that only talk to the mlbench API (``prepare``, ``finalize``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

__all__ = ["API_TRIES", "api_retries"]

API_TRIES = 4  # retries after the first try


def api_retries(api_wait: float) -> dict[str, Any]:
    """Task arguments that wait for an API that is away (restarting) about as long as the
    workers do (``MLBENCH_API_WAIT``): :data:`API_TRIES` retries, exponential backoff from
    ``api_wait / 15`` s, so that the delays add up to between ``api_wait`` and twice it (the
    tries themselves take a little more)."""
    return {
        "retries": API_TRIES,
        "retry_delay": timedelta(seconds=max(1.0, api_wait / (2**API_TRIES - 1))),
        "retry_exponential_backoff": 2.0,
    }
