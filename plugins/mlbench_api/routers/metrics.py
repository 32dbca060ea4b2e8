"""``/api/metrics``: metric series of pods (resource usage) and runs (training progress)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BeforeValidator
from sqlalchemy import select
from sqlalchemy.orm import Session

from mlbench_api.archive import Layout, attachment, mlbench2_zip, mlbench_zip, official_result
from mlbench_api.auth import Caller, CallerDep, UserDep
from mlbench_api.deps import SessionDep, pod_or_404, run_or_404
from mlbench_api.idempotency import KeyHeader, commit_once, replay
from mlbench_api.routing import SlashRouter, body_schema, read_body, validate_body
from mlbench_api.store import Pod, Run
from mlbench_api.store.models import utcnow
from mlbench_api.store.series import Points, SeriesReader, add_metric, add_metrics
from mlbench_core.api.original import TEXT_RESULT_NAME, parse_result
from mlbench_core.api.schemas import (
    MAX_ID,
    MetricBatch,
    MetricBatchOut,
    MetricIn,
    MetricOut,
    TextResultIn,
    utc,
)
from mlbench_core.api.wire import wire_date

router = SlashRouter(prefix="/metrics", tags=["metrics"])


class MetricType(StrEnum):
    POD = "pod"
    RUN = "run"


class Format(StrEnum):
    JSON = "json"
    ZIP = "zip"


def _iso_date(value: Any) -> Any:
    """A date, not a number (pydantic would read ``0.5`` as a Unix time)."""
    if isinstance(value, str) and re.fullmatch(
        r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", value
    ):
        raise ValueError("must be an ISO 8601 date, e.g. 2026-01-01T00:00:00Z")
    return value


Since = Annotated[
    datetime | None,
    BeforeValidator(_iso_date),
    Query(description="Only points newer than this ISO 8601 date (default: all)"),
]
Summarize = Annotated[
    int | None,
    Query(ge=1, le=100_000, description="At most N points per series, averaging consecutive ones"),
]
MetricFilter = Annotated[
    str | None, Query(max_length=255, pattern=r"^[^\x00]*$", description="Only this series")
]
LastN = Annotated[int | None, Query(ge=1, le=10_000_000, description="The newest N points")]
WithMetadata = Annotated[
    bool,
    Query(
        alias="metadata",
        description="Also each point's metadata (JSON text, e.g. epoch and step); points "
        "averaged by summarize have none",
    ),
]


def encode(series: dict[str, Points]) -> dict[str, list[dict[str, Any]]]:
    return {
        name: [{**p, "date": wire_date(p["date"])} for p in points]
        for name, points in series.items()
    }


PodsOnly = Annotated[
    bool,
    Query(
        description="Only pod name -> series, without the keys pod_metrics and run_metrics "
        "(what the dashboard polls: the runs' series are not read)"
    ),
]

_POINT = {"date": "2018-08-03T09:21:38.594282Z", "value": 0.188236813, "cumulative": False}
_ALL_METRICS_EXAMPLE = {
    "quiet-mink-mlbench-worker-0": {"container_cpu_usage_seconds_total": [_POINT]},
    "pod_metrics": {"quiet-mink-mlbench-worker-0": {"container_cpu_usage_seconds_total": [_POINT]}},
    "run_metrics": {"quiet-mink": {"train_loss": [{**_POINT, "value": 2.3}]}},
}


@router.get(
    "/",
    responses={
        200: {
            "description": "Pod name -> series name -> points, plus pod_metrics (the same) and "
            "run_metrics (run name -> series name -> points)",
            "content": {"application/json": {"example": _ALL_METRICS_EXAMPLE}},
        }
    },
)
def all_pod_metrics(
    session: SessionDep,
    _caller: UserDep,
    since: Since = None,
    summarize: Summarize = None,
    metric_filter: MetricFilter = None,
    last_n: LastN = None,
    pods_only: PodsOnly = False,
) -> JSONResponse:
    """Every pod's series, in both shapes of the original mlbench server, and every run's.

    - ``<pod name>``: metric name -> ``[{date, value, cumulative}]``, for each pod (the shape
      the original documented; pod names are DNS names, so no pod is called ``pod_metrics``
      or ``run_metrics``);
    - ``pod_metrics``: the same, ``{pod name: {metric name: [points]}}`` (the original code's
      key);
    - ``run_metrics``: ``{run name: {metric name: [points]}}`` for each run, keyed by name as
      the original did.

    ``since``, ``summarize``, ``metric_filter`` and ``last_n`` apply to every series (the
    original took none here); ``pods_only=true`` gives the pods' keys alone.
    """
    read = {"since": since, "name": metric_filter, "summarize": summarize, "last_n": last_n}
    pods = {}
    for pod_name in session.scalars(select(Pod.name).order_by(Pod.name)):
        pods[pod_name] = encode(SeriesReader(session, pod_name=pod_name).read(**read))
    if pods_only:
        return JSONResponse(pods)
    runs = {
        run_name: encode(SeriesReader(session, run_id=run_id).read(**read))
        for run_id, run_name in session.execute(select(Run.id, Run.name).order_by(Run.id))
    }
    return JSONResponse({**pods, "pod_metrics": pods, "run_metrics": runs})


ZipLayout = Annotated[
    Layout,
    Query(
        description="With format=zip, the archive's files. mlbench: the original mlbench "
        "server's (mlbench-results' layout): result_<series>.json per series of the run (of "
        "the pod, with metric_type=pod), <pod>_<series>.json per series of each pod of the "
        "run, official_result.txt (the run's result text), each a list of {date, value, "
        "cumulative}, the points within the run's lifetime; named metrics_<name>.zip. "
        "mlbench2: <series>.json per series ({name, points}) and result.json"
    ),
]


@router.get(
    "/{pod_name_or_run_id}",
    responses={200: {"content": {"application/zip": {}}, "description": "Series, or a zip"}},
)
def owner_metrics(
    pod_name_or_run_id: str,
    session: SessionDep,
    _caller: UserDep,
    since: Since = None,
    metric_type: MetricType = MetricType.POD,
    summarize: Summarize = None,
    metric_filter: MetricFilter = None,
    last_n: LastN = None,
    format: Format = Format.JSON,  # noqa: A002 - the API's parameter name
    with_metadata: WithMetadata = False,
    layout: ZipLayout = Layout.MLBENCH,
) -> Response:
    """The series of one pod (``metric_type=pod``) or run (``metric_type=run``): metric name
    -> ``[{date, value, cumulative}]``; with ``format=zip`` an archive (see ``layout``)."""
    read = {"since": since, "name": metric_filter, "summarize": summarize, "last_n": last_n}
    run: Run | None = None
    if metric_type is MetricType.RUN:
        run = _run_of(session, pod_name_or_run_id)
        if format is Format.ZIP and layout is Layout.MLBENCH:
            return _zip_response(_run_archive(session, run, read), attachment(run.name, "run"))
        reader = SeriesReader(session, run_id=run.id)
        label = f"run-{run.id}"
    else:
        pod = pod_or_404(session, pod_name_or_run_id)
        reader = SeriesReader(session, pod_name=pod.name)
        if format is Format.ZIP and layout is Layout.MLBENCH:
            return _zip_response(mlbench_zip(reader.read(**read)), attachment(pod.name, "pod"))
        run = session.get(Run, pod.run_id) if pod.run_id is not None else None
        label = pod.name
    series = encode(reader.read(**read, metadata=with_metadata))
    if format is Format.JSON:
        return JSONResponse(series)
    archive = mlbench2_zip(series, run.result if run else None)
    return _zip_response(archive, f'attachment; filename="{label}-metrics.zip"')


def _zip_response(content: bytes, disposition: str) -> Response:
    return Response(
        content=content, media_type="application/zip", headers={"Content-Disposition": disposition}
    )


def _run_archive(session: Session, run: Run, read: dict[str, Any]) -> bytes:
    """The original server's archive of a run: its series and its pods', the points within
    the run's lifetime (created_at to finished_at, both included), and its result text."""
    within = {**read, "not_before": run.created_at, "not_after": run.finished_at}
    pods = session.scalars(
        select(Pod.name).where(Pod.run_id == run.id).order_by(Pod.rank, Pod.name)
    ).all()
    return mlbench_zip(
        SeriesReader(session, run_id=run.id).read(**within),
        ((pod, SeriesReader(session, pod_name=pod).read(**within)) for pod in pods),
        official_result(run.result),
    )


def _run_of(session: Session, value: str) -> Run:
    """The run ``value`` names with ``metric_type=run``: 404 when it is not a run's id."""
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_ID:
        raise HTTPException(
            status_code=404,
            detail=f"run {value!r} not found: with metric_type=run, the "
            "path names a run by its id (a positive integer)",
        )
    return run_or_404(session, int(value))


def _check_owners(session: Session, caller: Caller, items: list[MetricIn]) -> None:
    """404 for an unknown run or pod; 403 when a worker writes outside its run."""
    run_ids = {m.run_id for m in items if m.run_id is not None}
    pod_names = {m.pod_name for m in items if m.pod_name is not None}
    if run_ids:
        for run_id in run_ids:  # before existence: a worker learns nothing of other runs
            caller.require_run(run_id)
        found = set(session.scalars(select(Run.id).where(Run.id.in_(run_ids))))
        if missing := sorted(run_ids - found):
            raise HTTPException(status_code=404, detail=f"run {missing[0]} not found")
    if pod_names:
        query = select(Pod.name, Pod.run_id).where(Pod.name.in_(pod_names))
        pods = {name: run_id for name, run_id in session.execute(query)}
        if missing_pods := sorted(pod_names - pods.keys()):
            raise HTTPException(status_code=404, detail=f"pod {missing_pods[0]!r} not found")
        for pod_run in set(pods.values()):
            caller.require_run(pod_run)


async def metric_body(request: Request) -> MetricIn | TextResultIn:
    """One metric (JSON or form), or a run's result as text (an original mlbench worker's
    ``TaskResult @ <rank>``)."""
    body = await read_body(request)
    if TextResultIn.claims(body.data):
        return validate_body(TextResultIn, body)
    return validate_body(MetricIn, body)


def _metric_schema() -> dict[str, Any]:
    """The body as it is read: a metric, or a text result."""
    metric, text = MetricIn.model_json_schema(), TextResultIn.model_json_schema()
    return {"anyOf": [metric, text]}


@router.post(
    "/",
    status_code=201,
    response_model=MetricOut,
    openapi_extra=body_schema(MetricIn, _metric_schema()),
)
def post_metric(
    session: SessionDep,
    caller: CallerDep,
    data: Annotated[MetricIn | TextResultIn, Depends(metric_body)],
    key: KeyHeader = None,
) -> Any:
    """Store one metric of a pod (``pod_name``) or a run (``run_id``); once per
    ``Idempotency-Key``. A ``TaskResult @ <rank>`` whose value is text (the original mlbench
    workers' official result) becomes the run's result instead: ``text``, and the fields
    parsed from it where it has the original goals' shape; the answer has no ``id``."""
    if isinstance(data, TextResultIn):
        return _text_result(session, caller, data, key)
    _check_owners(session, caller, [data])
    if (first := replay(session, key, "metric")) is not None:
        return first
    metric = add_metric(session, data)
    session.flush()
    answer = MetricOut(
        id=metric.id,
        pod_name=metric.pod_name,
        run_id=metric.run_id,
        name=metric.name,
        date=metric.date,
        value=metric.value,
        cumulative=metric.cumulative,
        metadata=metric.meta,
    )
    return commit_once(session, key, "metric", answer.model_dump(mode="json"))


def _text_result(session: Session, caller: Caller, data: TextResultIn, key: str | None) -> Any:
    """Record an original worker's text result as its run's result; the answer echoes it."""
    caller.require_run(data.run_id)
    run = run_or_404(session, data.run_id)
    if (first := replay(session, key, "metric")) is not None:
        return first
    date = utc(data.date) if data.date is not None else utcnow()
    rank = int(TEXT_RESULT_NAME.fullmatch(data.name)["rank"])
    run.result = {**parse_result(data.value), "rank": rank, "date": wire_date(date)}
    answer = MetricOut(id=None, run_id=run.id, name=data.name, date=date, value=data.value,
                       cumulative=data.cumulative, metadata=data.metadata)  # fmt: skip
    return commit_once(session, key, "metric", answer.model_dump(mode="json"))


def _batch_schema() -> dict[str, Any]:
    """The batch body as it is read: ``{"metrics": [...]}``, or the bare list."""
    schema = MetricBatch.model_json_schema()
    defs = schema.pop("$defs")
    return {"$defs": defs, "anyOf": [schema, schema["properties"]["metrics"]]}


async def batch_body(request: Request) -> MetricBatch:
    """The batch body: ``{"metrics": [...]}`` or the bare list, as JSON or form."""
    body = await read_body(request)
    if isinstance(body.data, list):
        body = replace(body, data={"metrics": body.data})
    return validate_body(MetricBatch, body)


@router.post(
    "/batch",
    status_code=201,
    response_model=MetricBatchOut,
    openapi_extra=body_schema(MetricBatch, _batch_schema()),
)
def post_metrics_batch(
    session: SessionDep,
    caller: CallerDep,
    batch: Annotated[MetricBatch, Depends(batch_body)],
    key: KeyHeader = None,
) -> Any:
    """Store up to 10,000 metrics in one transaction: all of them, or none; once per
    ``Idempotency-Key``."""
    _check_owners(session, caller, batch.metrics)
    if (first := replay(session, key, "metrics")) is not None:
        return first
    created = add_metrics(session, batch.metrics)
    return commit_once(session, key, "metrics", {"created": created})
