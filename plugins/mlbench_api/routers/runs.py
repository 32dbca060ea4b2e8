"""``/api/runs``: benchmark runs, each executed by one DAG run of ``mlbench_run``."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlbench_api import admission, dagruns, reconcile
from mlbench_api.auth import CallerDep, UserDep, new_worker_token
from mlbench_api.deps import RunId, SessionDep, conflict, run_or_404
from mlbench_api.routing import SlashRouter, body, body_schema
from mlbench_api.store import LogLine, Metric, Pod, Run
from mlbench_api.store.models import utcnow
from mlbench_core.api import original
from mlbench_core.api.schemas import (
    Admission,
    Reconciled,
    RunCreate,
    RunOut,
    RunRecord,
    RunResult,
    RunState,
    RunUpdate,
    WorkerToken,
)
from mlbench_core.benchmarks import DEFAULT_BENCHMARK, REGISTRY
from mlbench_core.run_fields import dag_conf, request_schema, validation_context
from mlbench_core.settings import get_settings

log = logging.getLogger(__name__)
router = SlashRouter(prefix="/runs", tags=["runs"])

# What people put on a run (kept apart from the spec: they may change it later).
LABEL_FIELDS = ("tags", "note")
SPEC_FIELDS = tuple(f for f in RunCreate.model_fields if f not in ("name", "job_id", *LABEL_FIELDS))
TRANSITIONS: dict[RunState, set[RunState]] = {
    RunState.INITIALIZED: {RunState.STARTED, RunState.FAILED, RunState.CANCELLED},
    RunState.STARTED: {RunState.FINISHED, RunState.FAILED, RunState.CANCELLED},
}


# Lines of each stream a single run's job_metadata carries, as the original's did (its
# run page showed them); every line is at /api/runs/{id}/logs.
OUTPUT_TAIL = 100
DERIVED_METADATA = ("stdout", "stderr")  # read from the logs, never stored


def output_tail(session: Session, run_id: int, limit: int = OUTPUT_TAIL) -> dict[str, list[str]]:
    """The run's last ``limit`` lines of stdout and of stderr (all ranks, oldest first),
    for ``job_metadata.stdout`` and ``job_metadata.stderr``."""
    tails = {}
    for stream in DERIVED_METADATA:
        query = (
            select(LogLine.line)
            .where(LogLine.run_id == run_id, LogLine.stream == stream)
            .order_by(LogLine.id.desc())
            .limit(limit)
        )
        tails[stream] = list(reversed(session.scalars(query).all()))
    return tails


def run_out(run: Run, session: Session | None = None) -> RunOut:
    """The run as the API shows it; with ``session``, its job_metadata also carries the tail
    of its output (single-run answers only: a list of runs would read every run's logs)."""
    metadata = run.job_metadata or {}
    if session is not None:
        metadata = {**metadata, **output_tail(session, run.id)}
    return RunOut(
        id=run.id,
        name=run.name,
        state=RunState(run.state),
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        job_id=run.job_id,
        job_metadata=metadata,
        result=run.result,
        record=run.record,
        tags=run.tags or [],
        note=run.note,
        # runs stored before a field existed have the field's default
        **{key: value for key in SPEC_FIELDS if (value := run.spec.get(key)) is not None},
    )


def document(openapi: dict[str, Any]) -> None:
    """Document a new run's body as it is checked here (:func:`run_fields.request_schema`
    with this deployment's ``MLBENCH_MAX_WORKERS``)."""
    served = body_schema(RunCreate, request_schema(get_settings().max_workers))
    openapi["paths"]["/api/runs"]["post"]["requestBody"] = served["requestBody"]


def _create_context() -> dict[str, Any]:
    return validation_context(get_settings().max_workers)


def _read_fields(data: Any) -> Any:
    """A new run's body as RunCreate reads it: the original mlbench client's fields read as
    ours (:mod:`mlbench_core.api.original`), then ``MLBENCH_RUN_DEFAULTS`` for the fields a
    run of a benchmark leaves out."""
    data = original.run_body(data, REGISTRY.keys())
    defaults = dict(get_settings().run_defaults)
    if not isinstance(data, dict) or not defaults or data.get("image_name") not in (None, ""):
        return data
    per_benchmark = defaults.pop("settings", {})  # benchmark -> its settings
    data = {**data, **{k: v for k, v in defaults.items() if data.get(k) in (None, "")}}
    settings = per_benchmark.get(data.get("benchmark") or DEFAULT_BENCHMARK)
    if settings and data.get("settings") in (None, "", {}):
        data["settings"] = settings
    return data


@router.get("/", response_model=list[RunOut])
def list_runs(
    session: SessionDep,
    _caller: UserDep,
    state: Annotated[RunState | None, Query(description="Only runs in this state")] = None,
    benchmark: Annotated[
        str | None, Query(max_length=64, description="Only runs of this benchmark")
    ] = None,
    tag: Annotated[
        list[str] | None, Query(max_length=20, description="Only runs with every tag given")
    ] = None,
) -> list[RunOut]:
    """All runs, newest first (those of a state, a benchmark and tags, when asked)."""
    query = select(Run).order_by(Run.id.desc())
    if state is not None:
        query = query.where(Run.state == state.value)
    wanted = set(tag or ())
    return [
        run_out(run)
        for run in session.scalars(query)
        if (benchmark is None or run.spec.get("benchmark") == benchmark)
        and wanted <= set(run.tags or ())
    ]


@router.get("/{run_id}", response_model=RunOut)
def get_run(run_id: RunId, session: SessionDep, _caller: UserDep) -> RunOut:
    """The run; its ``job_metadata`` has ``stdout`` and ``stderr``: the last 100 lines of
    each, of all ranks, as the original mlbench showed them (all: ``/api/runs/{id}/logs``)."""
    return run_out(run_or_404(session, run_id), session)


@router.post("/", status_code=201, response_model=RunOut, openapi_extra=body_schema(RunCreate))
def create_run(
    session: SessionDep,
    caller: UserDep,
    data: Annotated[RunCreate, Depends(body(RunCreate, _create_context, _read_fields))],
) -> RunOut:
    """Store a run as INITIALIZED and trigger its DAG run; 422 if the body breaks a rule the
    document states; 409 if the name is taken, or if its workers ask for more CPUs than
    this machine gives to runs (unless ``oversubscribe``) or for a limit it cannot enforce
    (local backend): the request is well formed, the deployment cannot give it.

    The run is committed only once Airflow has accepted the DAG run: if triggering fails,
    nothing is stored and the answer is 503. With ``job_id`` (a DAG run triggered from the
    Airflow UI creating its run) nothing is triggered.
    """
    settings = get_settings()
    if refused := admission.refusals(data, settings):
        raise HTTPException(status_code=409, detail=[{**e, "loc": list(e["loc"])} for e in refused])
    if session.scalar(select(Run.id).where(Run.name == data.name)) is not None:
        raise _name_taken(data.name)
    spec = data.model_dump(mode="json", exclude={"name", "job_id", *LABEL_FIELDS})
    warned = {"warnings": warnings} if (warnings := admission.warnings(data, settings)) else {}
    run = Run(
        name=data.name,
        state=RunState.INITIALIZED,
        spec=spec,
        job_metadata={},
        tags=data.tags,
        note=data.note,
    )
    session.add(run)
    try:
        session.flush()
    except IntegrityError:
        raise _name_taken(data.name) from None
    if data.job_id is not None:  # the DAG run exists: it was triggered from Airflow
        run.job_id = data.job_id
        run.job_metadata = {
            "dag_id": settings.dag_id,
            "dag_run_id": data.job_id,
            "user": caller.name,
            "triggered_from": "airflow",
            **warned,
        }
        session.commit()
        return run_out(run)
    try:
        dag_run_id = dagruns.trigger(
            settings.dag_id,
            dag_conf({"id": run.id, "name": data.name, **spec, "tags": run.tags, "note": run.note}),
            run_id=f"mlbench__{run.id}__{utcnow():%Y-%m-%dT%H:%M:%S.%f}",
            user=caller.name,
        )
    except dagruns.DagRunError as exc:
        session.rollback()
        log.error("mlbench: %s", exc)
        raise HTTPException(status_code=503, detail=str(exc)) from None
    run.job_id = dag_run_id
    run.job_metadata = {
        "dag_id": settings.dag_id,
        "dag_run_id": dag_run_id,
        "user": caller.name,
        **warned,
    }
    session.commit()
    return run_out(run)


def _name_taken(name: str) -> HTTPException:
    return conflict(["body", "name"], f"a run named {name!r} exists")


@router.post("/reconcile", response_model=Reconciled)
def reconcile_runs(_caller: UserDep) -> Reconciled:
    """End now every going run whose DAG run has ended or is gone (the API server also does
    it when it starts and every ``MLBENCH_RECONCILE_SECONDS``); prune old idempotency keys."""
    return Reconciled.model_validate(reconcile.maintain())


@router.patch("/{run_id}", response_model=RunOut, openapi_extra=body_schema(RunUpdate))
def update_run(
    run_id: RunId,
    session: SessionDep,
    _caller: UserDep,
    data: Annotated[RunUpdate, Depends(body(RunUpdate))],
) -> RunOut:
    """Move a run's state forward, record its result or job metadata (DAG tasks); replace
    its tags or note (people: the run page, ``mlbench tag``)."""
    run = run_or_404(session, run_id)
    if data.state is not None and data.state != run.state:
        _transition(run, data.state)
    if data.result is not None:
        run.result = data.result
    if data.job_metadata:
        given = {k: v for k, v in data.job_metadata.items() if k not in DERIVED_METADATA}
        run.job_metadata = {**(run.job_metadata or {}), **given}
    if data.tags is not None:
        run.tags = data.tags
    if data.note is not None:
        run.note = data.note or None
    session.commit()
    return run_out(run)


def _transition(run: Run, state: RunState) -> None:
    current = RunState(run.state)
    if state not in TRANSITIONS.get(current, set()):
        raise conflict(
            ["body", "state"],
            f"run {run.id} is {current}: cannot become {state}",
            "invalid_transition",
        )
    run.state = state
    now = utcnow()
    if state is RunState.STARTED:
        run.started_at = now
    elif state.terminal:
        run.finished_at = now


@router.post("/{run_id}/admit", response_model=Admission)
def admit_run(run_id: RunId, session: SessionDep, _caller: UserDep) -> Admission:
    """Start the run if the CPUs it asks for are free (local backend; it is then STARTED),
    else keep it INITIALIZED, waiting, with the reason in ``job_metadata.waiting``. Called
    by the run's DAG until admitted; 409 for a run that has ended."""
    run = run_or_404(session, run_id)
    reason = admission.admit(session, run, get_settings())
    return Admission(admitted=reason is None, reason=reason, run=run_out(run))


@router.put("/{run_id}/result", response_model=RunOut, openapi_extra=body_schema(RunResult))
def put_result(
    run_id: RunId,
    session: SessionDep,
    caller: CallerDep,
    data: Annotated[RunResult, Depends(body(RunResult))],
) -> RunOut:
    """Record the run's official result (rank 0's worker token may, for its own run)."""
    caller.require_run(run_id)
    run = run_or_404(session, run_id)
    run.result = data.result
    session.commit()
    return run_out(run)


@router.put("/{run_id}/record", response_model=RunOut, openapi_extra=body_schema(RunRecord))
def put_record(
    run_id: RunId,
    session: SessionDep,
    caller: CallerDep,
    data: Annotated[RunRecord, Depends(body(RunRecord))],
) -> RunOut:
    """Record how the run was made: versions, hardware, seed, hyperparameters, data source
    (rank 0's worker token may, for its own run)."""
    caller.require_run(run_id)
    run = run_or_404(session, run_id)
    run.record = data.record
    session.commit()
    return run_out(run)


@router.post("/{run_id}/token", status_code=201, response_model=WorkerToken)
def issue_worker_token(run_id: RunId, session: SessionDep, _caller: UserDep) -> WorkerToken:
    """A new worker token for the run (replacing any earlier one). It is returned this once
    and stored only as a hash: it lets workers post metrics and pod status for this run."""
    run = run_or_404(session, run_id)
    token, digest = new_worker_token(run.id)
    run.token_hash = digest
    session.commit()
    return WorkerToken(run_id=run.id, token=token)


@router.post("/{run_id}/stop", response_model=RunOut)
def stop_run(run_id: RunId, session: SessionDep, _caller: UserDep) -> RunOut:
    """Stop a going run: its DAG run is marked failed and the run ends CANCELLED."""
    run = run_or_404(session, run_id)
    _stop(session, run)
    session.commit()
    return run_out(run)


def _stop(session: Session, run: Run) -> None:
    if RunState(run.state).terminal:
        return
    if run.job_id:
        dag_id = (run.job_metadata or {}).get("dag_id", get_settings().dag_id)
        try:
            dagruns.stop(dag_id, run.job_id)
        except Exception as exc:  # noqa: BLE001 - Airflow's error, reported to the caller
            raise HTTPException(status_code=503, detail=f"could not stop DAG run: {exc}") from None
    _transition(run, RunState.CANCELLED)
    run.token_hash = None


@router.delete("/{run_id}", status_code=204)
def delete_run(run_id: RunId, session: SessionDep, _caller: UserDep) -> None:
    """Stop the run if it is going, then delete it with its metrics and pods."""
    run = run_or_404(session, run_id)
    _stop(session, run)
    pods = select(Pod.name).where(Pod.run_id == run.id)
    session.execute(delete(Metric).where(Metric.pod_name.in_(pods)))
    session.execute(delete(Metric).where(Metric.run_id == run.id))
    session.execute(delete(Pod).where(Pod.run_id == run.id))
    session.delete(run)
    session.commit()
