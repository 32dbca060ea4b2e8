"""The worker pods as the cluster sees them (``MLBENCH_BACKEND=kubernetes``).

``GET /api/pods/`` lists the pods labelled ``app=mlbench,component=worker`` in
``MLBENCH_NAMESPACE`` from the Kubernetes API (in-cluster service account, else a kubeconfig)
and merges them with the pods the store knows. One listing serves every request for
``MLBENCH_POD_CACHE_SECONDS``, so that dashboards polling every few seconds cost the API
server one call per period; a failed listing is remembered as long, and the store's pods are
answered meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlbench_core.api.schemas import PodOut
from mlbench_core.settings import get_settings

log = logging.getLogger(__name__)

WORKER_SELECTOR = "app=mlbench,component=worker"
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TERMINAL = ("Succeeded", "Failed")
TIMEOUT = (3.0, 10.0)  # seconds to connect, to read the answer
SEEN_LIMIT = 10_000  # pod names whose last phase is remembered


class ClusterUnavailable(Exception):
    """The Kubernetes API could not be configured or did not answer."""


@dataclass(frozen=True)
class Snapshot:
    """One listing: the worker pods by name, or why there is none."""

    at: datetime
    pods: dict[str, PodOut] | None = None
    error: str | None = None
    # (name, run id) -> the last phase observed (a name comes back with a new run of the name)
    seen: dict[tuple[str, int | None], str] = field(default_factory=dict)


def load_api(kubeconfig: Path | None = None, service_account: Path = SERVICE_ACCOUNT) -> Any:
    """A CoreV1Api on a private configuration: the pod's service account inside a cluster,
    else ``kubeconfig`` (default: KUBECONFIG, ~/.kube/config)."""
    from kubernetes import client, config
    from kubernetes.config.incluster_config import InClusterConfigLoader

    configuration = client.Configuration()
    try:
        InClusterConfigLoader(
            token_filename=str(service_account / "token"),
            cert_filename=str(service_account / "ca.crt"),
        ).load_and_set(configuration)
    except config.ConfigException:
        try:
            config.load_kube_config(
                config_file=str(kubeconfig) if kubeconfig else None,
                client_configuration=configuration,
            )
        except (config.ConfigException, OSError) as exc:
            raise ClusterUnavailable(
                f"no in-cluster service account and no kubeconfig: {exc}"
            ) from None
    return client.CoreV1Api(client.ApiClient(configuration))


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def pod_of(pod: Any, at: datetime) -> PodOut:
    """A ``V1Pod`` as the API shows pods (run and rank from its labels)."""
    labels = dict(pod.metadata.labels or {})
    status = pod.status
    created = pod.metadata.creation_timestamp or at
    return PodOut(
        name=pod.metadata.name,
        run_id=_int(labels.get("run")),
        rank=_int(labels.get("rank")),
        label_map={str(k): str(v) for k, v in labels.items()},
        phase=(status.phase if status and status.phase else "Unknown"),
        ip=status.pod_ip if status else None,
        node=pod.spec.node_name if pod.spec else None,
        created_at=created,
        updated_at=at,
    )


class PodLister:
    """The namespace's worker pods, listed at most once per ``ttl`` seconds (thread-safe:
    concurrent requests wait for the one listing in flight)."""

    def __init__(
        self,
        namespace: str,
        ttl: float,
        api: Callable[[], Any] = load_api,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.namespace = namespace
        self.ttl = ttl
        self._make_api = api
        self._api: Any = None
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._taken = 0.0
        self._seen: dict[tuple[str, int | None], str] = {}

    def snapshot(self) -> Snapshot:
        with self._lock:
            if self._snapshot is None or self._clock() - self._taken >= self.ttl:
                self._snapshot = self._list()
                self._taken = self._clock()
            return self._snapshot

    def _list(self) -> Snapshot:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        at = datetime.now(UTC)
        try:
            if self._api is None:
                self._api = self._make_api()
            answer = self._api.list_namespaced_pod(
                self.namespace, label_selector=WORKER_SELECTOR, _request_timeout=TIMEOUT
            )
        except (ClusterUnavailable, ApiException, HTTPError, OSError, ValueError) as exc:
            self._api = None  # configure again next time (rotated token, new kubeconfig)
            reason = getattr(exc, "reason", None) or str(exc)
            status = getattr(exc, "status", None)
            error = f"{status} {reason}".strip() if status else str(reason)
            log.warning("mlbench: cannot list worker pods in %s: %s", self.namespace, error)
            return Snapshot(at=at, error=error, seen=dict(self._seen))
        pods = {p.metadata.name: pod_of(p, at) for p in answer.items}
        for name, pod in pods.items():
            self._seen.pop((name, pod.run_id), None)  # re-inserted: the newest come last
            self._seen[(name, pod.run_id)] = pod.phase
        while len(self._seen) > SEEN_LIMIT:
            self._seen.pop(next(iter(self._seen)))
        return Snapshot(at=at, pods=pods, seen=dict(self._seen))


def gone_phase(stored: PodOut, last_seen: str | None, run_state: str | None) -> str:
    """The phase of a pod the store knows and the cluster no longer has (or not yet)."""
    if stored.phase in TERMINAL:
        return stored.phase
    if last_seen in TERMINAL:
        return last_seen  # completed, then deleted (succeeded pods are deleted at once)
    if run_state == "FINISHED":
        return "Succeeded"  # the run finishes only when every worker pod succeeded
    if run_state in ("INITIALIZED", "STARTED") and stored.phase == "Pending" and not last_seen:
        return "Pending"  # registered by the DAG, not created yet
    return "Unknown"  # gone: deleted, evicted, or its node lost


def merge(
    stored: list[PodOut],
    snapshot: Snapshot,
    run_states: dict[int, str],
    run_id: int | None = None,
) -> list[PodOut]:
    """The store's pods with the cluster's view of them, and the cluster's worker pods the
    store does not know; none of the store's pods is dropped."""
    if snapshot.pods is None:
        return stored
    cluster = {
        name: pod for name, pod in snapshot.pods.items() if run_id is None or pod.run_id == run_id
    }
    out = []
    for pod in stored:
        live = cluster.pop(pod.name, None)
        if live is not None:
            pod = pod.model_copy(
                update={
                    "phase": live.phase,
                    "ip": live.ip,
                    "node": live.node,
                    "label_map": live.label_map or pod.label_map,
                    "run_id": pod.run_id if pod.run_id is not None else live.run_id,
                    "rank": pod.rank if pod.rank is not None else live.rank,
                    "updated_at": snapshot.at,
                }
            )
        else:
            state = run_states.get(pod.run_id) if pod.run_id is not None else None
            phase = gone_phase(pod, snapshot.seen.get((pod.name, pod.run_id)), state)
            if phase != pod.phase:
                pod = pod.model_copy(update={"phase": phase, "ip": None})
        out.append(pod)
    out += cluster.values()
    return sorted(out, key=lambda p: (p.run_id or 0, p.rank if p.rank is not None else -1, p.name))


_lister: tuple[tuple[Any, ...], PodLister] | None = None
_lister_lock = threading.Lock()


def get_lister() -> PodLister:
    """The process's lister, for the current settings (namespace, cache time, kubeconfig)."""
    global _lister
    settings = get_settings()
    key = (settings.namespace, settings.pod_cache_seconds, settings.kubeconfig)
    with _lister_lock:
        if _lister is None or _lister[0] != key:
            kubeconfig = settings.kubeconfig
            lister = PodLister(key[0], key[1], lambda: load_api(kubeconfig))
            _lister = (key, lister)
        return _lister[1]


def reset_lister() -> None:
    """Forget the lister and its cache (tests, a changed configuration)."""
    global _lister
    with _lister_lock:
        _lister = None
