"""``/api/metrics``: metric series of pods (resource usage) and runs (training progress)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BeforeValidator
from sqlalchemy import select
from sqlalchemy.orm import Session

from mlbench_api.auth import Caller, CallerDep, UserDep
from mlbench_api.deps import SessionDep, pod_or_404, run_or_404
from mlbench_api.idempotency import KeyHeader, commit_once, replay
from mlbench_api.routing import SlashRouter, body, body_schema, read_body, validate_body
from mlbench_api.store import Pod, Run
from mlbench_api.store.series import Points, SeriesReader, add_metric, add_metrics
from mlbench_core.api.schemas import MAX_ID, MetricBatch, MetricBatchOut, MetricIn, MetricOut
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


@router.get("/")
def all_pod_metrics(
    session: SessionDep,
    _caller: UserDep,
    since: Since = None,
    summarize: Summarize = None,
    metric_filter: MetricFilter = None,
    last_n: LastN = None,
) -> JSONResponse:
    """Every pod's series: pod name -> metric name -> ``[{date, value}]``."""
    out = {}
    for pod_name in session.scalars(select(Pod.name).order_by(Pod.name)):
        series = SeriesReader(session, pod_name=pod_name).read(
            since=since, name=metric_filter, summarize=summarize, last_n=last_n
        )
        out[pod_name] = encode(series)
    return JSONResponse(out)


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
) -> Response:
    """The series of one pod (``metric_type=pod``) or run (``metric_type=run``)."""
    run: Run | None = None
    if metric_type is MetricType.RUN:
        run = _run_of(session, pod_name_or_run_id)
        reader = SeriesReader(session, run_id=run.id)
        label = f"run-{run.id}"
    else:
        pod = pod_or_404(session, pod_name_or_run_id)
        reader = SeriesReader(session, pod_name=pod.name)
        run = session.get(Run, pod.run_id) if pod.run_id is not None else None
        label = pod.name
    series = encode(
        reader.read(
            since=since,
            name=metric_filter,
            summarize=summarize,
            last_n=last_n,
            metadata=with_metadata,
        )
    )
    if format is Format.JSON:
        return JSONResponse(series)
    return Response(
        content=_zip(series, run.result if run else None),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{label}-metrics.zip"'},
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


def _zip(series: dict[str, list[dict[str, Any]]], result: Any) -> bytes:
    """One JSON file per series, plus ``result.json`` (the run's official result)."""
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, points in series.items():
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "series"
            filename, n = f"{stem}.json", 1
            while filename in used or filename == "result.json":
                n += 1
                filename = f"{stem}-{n}.json"
            used.add(filename)
            archive.writestr(filename, json.dumps({"name": name, "points": points}))
        archive.writestr("result.json", json.dumps(result))
    return buffer.getvalue()


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


@router.post("/", status_code=201, response_model=MetricOut, openapi_extra=body_schema(MetricIn))
def post_metric(
    session: SessionDep,
    caller: CallerDep,
    data: Annotated[MetricIn, Depends(body(MetricIn))],
    key: KeyHeader = None,
) -> Any:
    """Store one metric of a pod (``pod_name``) or a run (``run_id``); once per
    ``Idempotency-Key``."""
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
