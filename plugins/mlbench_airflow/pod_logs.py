"""Worker logs on Kubernetes: ``KubernetesPodOperator`` callbacks that ship each rank's lines
to ``/api/runs/{id}/logs`` as the operator reads them.

The operator (not deferrable, ``get_logs=True``) follows the pod's log stream until the
container exits, so every line, a crashed rank's last ones included, passes
``progress_callback`` in order; the task's Airflow log shows them too. Kubernetes keeps one
stream per container, stdout and stderr merged: lines arrive as ``stdout``. When the pod has
completed, a failed container's termination (exit code, ``OOMKilled``...) is added as a
``stderr`` line, the failure is recorded in the run with the rank's last lines, and the run's
other pods are deleted, as the local launcher stops the other ranks when one fails.
"""

from __future__ import annotations

import collections
import logging
import threading
from datetime import datetime
from typing import Any

from airflow.providers.cncf.kubernetes.callbacks import KubernetesPodOperatorCallback

from mlbench_airflow.hooks import MlbenchApiHook
from mlbench_core.api.errors import ApiError
from mlbench_core.launch.backend import record_failure
from mlbench_core.launch.logship import LogShipper

__all__ = ["ShipPodLogs"]

log = logging.getLogger(__name__)
TAIL = 20  # lines of a failed rank quoted in the run's failure reason


class _PodLog:
    """The shipper and last lines of one pod; ``shipped``: the date of the rank's newest line
    the run already has (the operator of an earlier try of the task shipped it)."""

    def __init__(self, run_id: int, rank: int) -> None:
        self.run_id, self.rank = run_id, rank
        self.client = MlbenchApiHook().get_conn()
        self.shipper = LogShipper(self.client, run_id)
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL)
        self.shipped = _newest_line(self.client, run_id, rank)

    def new(self, timestamp: Any) -> bool:
        """Whether a line of the stream is not in the run's logs yet. A task reset after its
        scheduler was lost reattaches to the pod its first try started (the operator's
        ``reattach_on_restart``) and reads the stream from its start again: the lines up to
        the newest one shipped are skipped, by the kubelet's timestamps."""
        return self.shipped is None or timestamp is None or timestamp > self.shipped

    def close(self) -> None:
        self.shipper.close()
        self.client.close()


def _newest_line(client: Any, run_id: int, rank: int) -> datetime | None:
    """The date of ``rank``'s newest line in the run's logs (None: none, or the API could
    not say: lines may then be shipped twice, never lost)."""
    newest, after = None, 0
    try:
        while True:
            page = client.get_logs(run_id, rank=rank, after=after, limit=10_000)
            if not page["lines"]:
                return newest
            dates = [datetime.fromisoformat(x["date"]) for x in page["lines"]]
            newest = max(dates if newest is None else [newest, *dates])
            after = page["next"]
    except ApiError as exc:
        log.warning("mlbench: run %s rank %s: lines shipped before unknown: %s", run_id, rank, exc)
        return None


_pods: dict[tuple[str, str], _PodLog] = {}
_lock = threading.Lock()


def _identity(pod: Any) -> tuple[tuple[str, str], int, int] | None:
    """(key, run id, rank) of a worker pod from its labels; None for other pods."""
    labels = pod.metadata.labels or {}
    if not (labels.get("run", "").isdigit() and labels.get("rank", "").isdigit()):
        return None
    key = (pod.metadata.namespace or "", pod.metadata.name)
    return key, int(labels["run"]), int(labels["rank"])


def _pod_log(pod: Any) -> _PodLog | None:
    found = _identity(pod)
    if found is None:
        return None
    key, run_id, rank = found
    with _lock:
        if key not in _pods:
            _pods[key] = _PodLog(run_id, rank)
        return _pods[key]


def _close(pod: Any) -> _PodLog | None:
    found = _identity(pod)
    if found is None:
        return None
    with _lock:
        entry = _pods.pop(found[0], None)
    if entry is not None:
        entry.close()
    return entry


def _terminated(pod: Any) -> Any:
    """The ``base`` container's terminated state, if it has one."""
    for status in (pod.status and pod.status.container_statuses) or []:
        if status.name == "base" and status.state and status.state.terminated:
            return status.state.terminated
    return None


class ShipPodLogs(KubernetesPodOperatorCallback):
    """Ships each worker pod's log lines to its run's logs (one shipper per pod, in the task
    process that runs the pod's operator)."""

    @staticmethod
    def progress_callback(*, line: str, timestamp: Any, pod: Any, **kwargs: Any) -> None:
        entry = _pod_log(pod)
        if entry is None:
            return
        # the operator joins lines that carry no timestamp to the one before (and the end of
        # a stream to the last line)
        for part in line.rstrip("\n").split("\n"):
            entry.tail.append(part)
            if entry.new(timestamp):
                entry.shipper.put(entry.rank, "stdout", part, date=timestamp)

    @staticmethod
    def on_pod_completion(*, pod: Any, client: Any, **kwargs: Any) -> None:
        """A failed container: its termination as a line, the failure in the run, the run's
        other pods deleted."""
        entry = _pod_log(pod)
        if entry is None:
            return
        state = _terminated(pod)
        if state is None or state.exit_code == 0:
            _close(pod)
            return
        why = f"exit code {state.exit_code}" + (f" ({state.reason})" if state.reason else "")
        if state.message:
            why += f": {state.message.strip()}"
        entry.shipper.put(entry.rank, "stderr", f"[mlbench] container terminated: {why}")
        tail = "\n".join(entry.tail)
        _close(pod)
        _record(entry, why, tail)
        _stop_others(client, pod)

    @staticmethod
    def on_pod_cleanup(*, pod: Any, **kwargs: Any) -> None:
        _close(pod)  # whatever is still queued (a pod that never completed)


def _record(entry: _PodLog, why: str, tail: str) -> None:
    """The first failure of the run is its reason (the ranks stopped after it fail too)."""
    with MlbenchApiHook().get_conn() as client:
        try:
            run = client.get_run(entry.run_id)
        except ApiError as exc:
            log.warning("mlbench: run %s: %s", entry.run_id, exc)
            return
        if (run.get("job_metadata") or {}).get("failure"):
            return
        reason = f"rank {entry.rank} failed: {why}; the other ranks were stopped"
        record_failure(
            client, entry.run_id, reason + (f". Its last lines:\n{tail}" if tail else "")
        )


def _stop_others(core: Any, pod: Any) -> None:
    """Delete the run's other worker pods (their operators then fail: the run is over)."""
    labels = pod.metadata.labels or {}
    selector = f"app=mlbench,component=worker,run={labels['run']}"
    namespace = pod.metadata.namespace
    try:
        others = core.list_namespaced_pod(namespace, label_selector=selector).items
        for other in others:
            if other.metadata.name != pod.metadata.name:
                core.delete_namespaced_pod(other.metadata.name, namespace)
    except Exception as exc:  # noqa: BLE001 - the teardown deletes them anyway
        log.warning("mlbench: could not stop the other pods of run %s: %s", labels["run"], exc)
