"""``/api/pods``: the worker pods known to mlbench (and, with the kubernetes backend, to the
cluster: see :mod:`mlbench_api.kube`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Response
from sqlalchemy import select

from mlbench_api import kube
from mlbench_api.auth import CallerDep, UserDep
from mlbench_api.deps import SessionDep, conflict, run_or_404
from mlbench_api.routing import SlashRouter, body, body_schema
from mlbench_api.store import Pod, Run
from mlbench_api.store.models import utcnow
from mlbench_core.api.schemas import MAX_ID, PodIn, PodOut
from mlbench_core.launch.backend import get_backend
from mlbench_core.settings import get_settings

router = SlashRouter(prefix="/pods", tags=["pods"])

PodName = Annotated[
    str,
    Path(
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="Kubernetes pod name (DNS subdomain)",
    ),
]


def pod_out(pod: Pod) -> PodOut:
    return PodOut(
        name=pod.name,
        run_id=pod.run_id,
        rank=pod.rank,
        label_map=pod.labels or {},
        phase=pod.phase,
        ip=pod.ip,
        node=pod.node,
        created_at=pod.created_at,
        updated_at=pod.updated_at,
    )


@router.get("/", response_model=list[PodOut])
def list_pods(
    session: SessionDep,
    _caller: UserDep,
    response: Response,
    run_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> list[PodOut]:
    """All worker pods with their status (optionally those of one run). With the kubernetes
    backend, phase, IP and node come from the cluster (header ``X-Mlbench-Pods-Source``:
    ``cluster``, or ``store`` when the cluster could not be asked)."""
    query = select(Pod).order_by(Pod.run_id, Pod.rank, Pod.name)
    if run_id is not None:
        query = query.where(Pod.run_id == run_id)
    pods = [pod_out(pod) for pod in session.scalars(query)]
    settings = get_settings()
    if not get_backend(settings.backend).pods_from_cluster:
        return pods
    snapshot = kube.get_lister().snapshot()
    response.headers["X-Mlbench-Pods-Source"] = "store" if snapshot.pods is None else "cluster"
    runs = {pod.run_id for pod in pods if pod.run_id is not None}
    states = {
        row.id: row.state
        for row in session.execute(select(Run.id, Run.state).where(Run.id.in_(runs)))
    }
    return kube.merge(pods, snapshot, states, run_id)


@router.put("/{name}", response_model=PodOut, openapi_extra=body_schema(PodIn))
def put_pod(
    name: PodName,
    session: SessionDep,
    caller: CallerDep,
    data: Annotated[PodIn, Depends(body(PodIn))],
) -> PodOut:
    """Create or update a pod (written by DAG tasks and workers; a worker token only for its
    own run's pods, while the run has not ended). A pod of a run stays that run's: another
    ``run_id`` is a 409."""
    pod = session.get(Pod, name)
    run_id = data.run_id if data.run_id is not None else (pod.run_id if pod else None)
    caller.require_run(run_id)
    if pod is not None and caller.is_worker:
        caller.require_run(pod.run_id)
    if pod is not None and None not in (pod.run_id, data.run_id) and pod.run_id != data.run_id:
        # A pod's series are its run's: moving it would hand them to another run (and
        # deleting that run would delete them).
        raise conflict(["body", "run_id"], f"pod {name} belongs to run {pod.run_id} for good")
    if run_id is not None:
        run_or_404(session, run_id)
    now = utcnow()
    if pod is None:
        pod = Pod(name=name, created_at=now, labels={})
        session.add(pod)
    fields = data.model_dump(exclude_unset=True)
    for key, value in fields.items():
        setattr(pod, key, value)
    if pod.phase is None:
        pod.phase = data.phase
    pod.updated_at = now
    session.commit()
    return pod_out(pod)
