"""Reconciliation: no run stays INITIALIZED or STARTED after its DAG run has ended.

A run is ended by its DAG run's ``finalize`` task, through this API. When that never
happens (the API was away when the DAG run failed, the scheduler lost the task, someone
deleted the DAG run), the run is ended here with the DAG run's outcome as its reason: when
the API server starts and every ``MLBENCH_RECONCILE_SECONDS`` after (0: only on request,
``POST /api/runs/reconcile``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import select

from mlbench_api import dagruns, idempotency
from mlbench_api.store import Pod, Run, get_store
from mlbench_api.store.models import utcnow
from mlbench_core.api.schemas import RunState, utc
from mlbench_core.api.wire import wire_date
from mlbench_core.settings import get_settings

log = logging.getLogger(__name__)

GOING = (RunState.INITIALIZED, RunState.STARTED)
_started = threading.Lock()
_thread: threading.Thread | None = None


# When this API server process started: a DAG run that ended before it ended while no API
# server answered (its tasks could record nothing).
STARTED_AT = utcnow()


def _reason(outcome: dict[str, Any] | None, dag_run_id: str) -> str | None:
    if outcome is None:
        return f"its DAG run {dag_run_id} is gone (deleted from Airflow)"
    if outcome["state"] == "failed":
        tasks = ", ".join(sorted(outcome["failed_tasks"])) or "no task"
        reason = f"its DAG run {dag_run_id} failed (failed tasks: {tasks}) without ending the run"
    elif outcome["state"] == "success":
        reason = f"its DAG run {dag_run_id} succeeded without ending the run"
    else:
        return None  # queued or running: the DAG run will end it
    ended = outcome.get("end_date")
    if ended is not None and utc(ended) < STARTED_AT:
        reason += (
            f", at {wire_date(utc(ended))}, while the mlbench API was unreachable (this API "
            f"server started at {wire_date(STARTED_AT)}): its tasks could not record why"
        )
    return reason


def reconcile() -> list[dict[str, Any]]:
    """End every going run whose DAG run has ended or is gone: FAILED, with the reason
    (kept after any failure the DAG recorded), its pods Failed. Returns ``[{"id", "reason"}]``
    of the runs ended."""
    settings = get_settings()
    store = get_store()
    with store.session() as session:
        going = session.execute(
            select(Run.id, Run.job_id).where(Run.state.in_(GOING), Run.job_id.is_not(None))
        ).all()
    if not going:
        return []
    found = dagruns.outcomes(settings.dag_id, [job for _, job in going])
    ended = []
    for run_id, job_id in going:
        reason = _reason(found.get(job_id), job_id)
        if reason is None:
            continue
        with store.session() as session:
            run = session.get(Run, run_id)
            if run is None or RunState(run.state) not in GOING:
                continue  # ended meanwhile
            metadata = dict(run.job_metadata or {})
            earlier = metadata.get("failure")
            metadata["failure"] = f"{earlier}; {reason}" if earlier else reason
            metadata["reconciled"] = True
            run.job_metadata = metadata
            run.state = RunState.FAILED
            run.finished_at = utcnow()
            run.token_hash = None
            for pod in session.scalars(select(Pod).where(Pod.run_id == run_id)):
                if pod.phase in ("Pending", "Running"):
                    pod.phase, pod.updated_at = "Failed", utcnow()
        log.warning("mlbench: run %s ended FAILED: %s", run_id, reason)
        ended.append({"id": run_id, "reason": reason})
    return ended


def maintain() -> dict[str, Any]:
    """One round: reconcile the runs and prune old idempotency keys."""
    ended = reconcile()
    with get_store().session() as session:
        pruned = idempotency.prune(session)
    return {"ended": ended, "pruned_keys": pruned}


_stop = threading.Event()


def _loop(interval: float) -> None:
    while not _stop.is_set():
        try:
            maintain()
        except Exception:  # noqa: BLE001 - keep reconciling; the API itself is unaffected
            log.exception("mlbench: reconciliation failed; trying again in %.0f s", interval)
        _stop.wait(interval)


def start_background() -> None:
    """Start the periodic reconciliation of this process once (the first request starts
    it, so that processes which only load the plugin never run it)."""
    global _thread
    interval = get_settings().reconcile_seconds
    if interval <= 0 or _thread is not None:
        return
    with _started:
        if _thread is None:
            _stop.clear()
            _thread = threading.Thread(
                target=_loop, args=(interval,), name="mlbench-reconcile", daemon=True
            )
            _thread.start()


def stop_background(timeout: float = 30) -> None:
    """Stop the periodic reconciliation (tests; a process exiting needs nothing)."""
    global _thread
    with _started:
        thread, _thread = _thread, None
    if thread is not None:
        _stop.set()
        thread.join(timeout)
