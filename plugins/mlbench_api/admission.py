"""Local runs get the CPUs they ask for, as the original mlbench admitted runs by free workers.

- At creation (:func:`refusals`): a run whose workers ask for more CPUs in all than this
  machine gives to runs (``MLBENCH_CPU_CAPACITY``, default its CPU count) is refused unless
  it asks to ``oversubscribe``; a cap or a fractional CPU that this machine cannot enforce
  (``mlbench_core.launch.facilities``) is refused, naming what is missing.
- At start (:func:`admit`, called by the run's DAG before any worker starts): the run starts
  when its CPUs are free, else it waits INITIALIZED, its reason in ``job_metadata["waiting"]``.
  Waiting runs go first come, first served; a run that stopped asking (its DAG run ended)
  leaves the queue after :data:`QUEUE_TTL`. An oversubscribed run waits for the whole
  machine. STARTED runs hold their CPUs until they end.

Backends without ``admission`` (kubernetes) leave both to the cluster's scheduler; what a
backend cannot enforce comes from its :meth:`~mlbench_core.launch.backend.LaunchBackend.refusals`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from mlbench_api.deps import conflict
from mlbench_api.store import Run
from mlbench_api.store.models import utcnow
from mlbench_core.api.schemas import RunCreate, RunState, utc
from mlbench_core.api.wire import wire_date
from mlbench_core.launch.backend import get_backend
from mlbench_core.settings import Settings

__all__ = ["QUEUE_TTL", "admit", "refusals", "warnings"]

QUEUE_TTL = timedelta(seconds=60)
EPSILON = 1e-9
PG_ADMISSION_LOCK = 0x6D6C62616463  # any fixed number: one admission at a time


def _admits(settings: Settings) -> bool:
    """Whether this backend's runs are admitted by the CPUs free on this machine."""
    return get_backend(settings.backend).admission


def _cpus(spec: dict[str, Any]) -> float:
    return int(spec.get("num_workers") or 1) * float(spec.get("num_cpus") or 1)


def refusals(data: RunCreate, settings: Settings) -> list[dict[str, Any]]:
    """Errors (FastAPI's shape, ``loc`` naming the field) for limits that cannot be given."""
    backend = get_backend(settings.backend)
    errors = []
    total, capacity = data.num_workers * data.num_cpus, settings.cpus
    admits = _admits(settings)
    if admits and total > capacity + EPSILON and not data.oversubscribe:
        errors.append(
            {
                "type": "cpu_capacity",
                "loc": ("body", "num_cpus"),
                "msg": f"num_workers x num_cpus = {data.num_workers} x {data.num_cpus:g} = "
                f"{total:g} CPUs, more than the {capacity:g} this machine gives to runs "
                "(MLBENCH_CPU_CAPACITY): ask for fewer, or set oversubscribe to run with less "
                "than asked",
                "input": data.num_cpus,
            }
        )
    for field, message in backend.refusals(
        data.num_workers, data.num_cpus, data.max_bandwidth, settings
    ).items():
        errors.append(
            {
                "type": "not_enforceable",
                "loc": ("body", field),
                "msg": message,
                "input": getattr(data, field),
            }  # fmt: skip
        )
    return errors


def warnings(data: RunCreate, settings: Settings) -> list[str]:
    """What the run's pages must say from the start: that it is oversubscribed."""
    total, capacity = data.num_workers * data.num_cpus, settings.cpus
    if not _admits(settings) or total <= capacity + EPSILON:
        return []
    return [
        f"oversubscribed: {data.num_workers} workers x {data.num_cpus:g} CPUs = {total:g} "
        f"CPUs on a machine that gives runs {capacity:g}: the workers get less than they ask "
        "for, and the run waits until it has the machine to itself"
    ]


def _lock(session: Session, run: Run) -> None:
    """Serialise admissions: an advisory lock (PostgreSQL) or the write lock (SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_ADMISSION_LOCK})
    else:
        session.execute(update(Run).where(Run.id == run.id).values(state=Run.state))


def _fresh(session: Session, *states: RunState) -> list[Run]:
    query = select(Run).where(Run.state.in_([str(s) for s in states])).order_by(Run.id)
    return list(session.scalars(query.execution_options(populate_existing=True)))


def _waiting_since(run: Run) -> Any:
    waiting = (run.job_metadata or {}).get("waiting")
    return waiting.get("asked_at") if isinstance(waiting, dict) else None


def _wait_reason(session: Session, run: Run, capacity: float) -> str | None:
    """Why ``run`` cannot start now (None: it can)."""
    now = utcnow()
    ahead = []
    for other in _fresh(session, RunState.INITIALIZED):
        asked = _waiting_since(other)
        if other.id >= run.id or asked is None:
            continue
        try:
            fresh = now - utc(datetime.fromisoformat(str(asked))) <= QUEUE_TTL
        except ValueError:
            fresh = False
        if fresh:
            ahead.append(other)
    holders = _fresh(session, RunState.STARTED)
    held = sum(_cpus(h.spec) for h in holders)
    need = min(_cpus(run.spec), capacity)
    if ahead:
        names = ", ".join(repr(r.name) for r in ahead[:3])
        return f"queued behind {len(ahead)} earlier run(s) waiting for CPUs ({names})"
    if held + need > capacity + EPSILON:
        free = max(0.0, capacity - held)
        owners = ", ".join(f"{h.name!r} ({_cpus(h.spec):g})" for h in holders[:3])
        return (
            f"waiting for {need:g} CPUs: {free:g} of the machine's {capacity:g} are free; "
            f"held by {owners}"
        )
    return None


def admit(session: Session, run: Run, settings: Settings) -> str | None:
    """Start ``run`` if its CPUs are free (it is STARTED; returns None), else record why it
    waits and return that. Commits; 409 for a run that has ended."""
    _lock(session, run)
    session.refresh(run)
    state = RunState(run.state)
    if state.terminal:
        session.rollback()
        raise conflict(
            ["path", "run_id"], f"run {run.id} is {state}: it cannot start", "invalid_transition"
        )
    reason = None
    if state is RunState.INITIALIZED and _admits(settings):
        reason = _wait_reason(session, run, settings.cpus)
    metadata = dict(run.job_metadata or {})
    previous = metadata.pop("waiting", None)
    if reason is None:
        if state is RunState.INITIALIZED:
            run.state, run.started_at = RunState.STARTED, utcnow()
    else:
        now = wire_date(utcnow())
        since = previous.get("since", now) if isinstance(previous, dict) else now
        metadata["waiting"] = {"reason": reason, "since": since, "asked_at": now}
    run.job_metadata = metadata
    session.commit()
    return reason
