"""``RunWaitTrigger``: waits in the triggerer, asking the mlbench API, until a run is admitted
(started) or has ended; the deferred task resumes once, with the answer as the event.

Polling from the triggerer instead of deferring again after every look matters on Airflow
3.3: the LocalExecutor reports a deferred task's exit seconds late, and when that report
arrives after the resumed attempt is already running, the scheduler fails the task
(apache/airflow#72716). A task that defers once, for at least ``min_wait`` seconds, leaves
that report time to arrive while it is still deferred.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

from airflow.triggers.base import BaseTrigger, TriggerEvent

from mlbench_airflow.hooks import MlbenchApiHook
from mlbench_core.api import ApiClient, ApiError
from mlbench_core.api.schemas import RunState

__all__ = ["RunWaitTrigger"]

log = logging.getLogger(__name__)
Until = Literal["admitted", "ended"]


class RunWaitTrigger(BaseTrigger):
    """Fires when run ``run_id`` is admitted (``until="admitted"``: the API starts it when its
    CPUs are free) or has ended (``until="ended"``), looking every ``poll_interval`` s and
    never before ``min_wait`` s. The event is the API's answer: the admission, or the run."""

    def __init__(
        self, run_id: int, until: Until, poll_interval: float = 2.0, min_wait: float = 0.0
    ) -> None:
        super().__init__()
        self.run_id, self.until = int(run_id), until
        self.poll_interval, self.min_wait = float(poll_interval), float(min_wait)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "mlbench_airflow.triggers.RunWaitTrigger",
            {
                "run_id": self.run_id,
                "until": self.until,
                "poll_interval": self.poll_interval,
                "min_wait": self.min_wait,
            },  # fmt: skip
        )

    def _look(self, client: ApiClient) -> dict[str, Any] | None:
        if self.until == "admitted":
            answer = client.admit_run(self.run_id)
            return answer if answer["admitted"] else None
        run = client.get_run(self.run_id)
        return run if RunState(run["state"]).terminal else None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        client = await MlbenchApiHook().aget_conn()
        try:
            while True:
                await asyncio.sleep(self.poll_interval)
                try:
                    found = await asyncio.to_thread(self._look, client)
                except ApiError as exc:  # the API restarting: look again
                    if not exc.retryable:
                        raise
                    log.warning("mlbench: run %s: the API did not answer: %s", self.run_id, exc)
                    continue
                if found is not None:
                    break
            rest = self.min_wait - (loop.time() - started)
            if rest > 0:
                await asyncio.sleep(rest)
            yield TriggerEvent(found)
        finally:
            client.close()
