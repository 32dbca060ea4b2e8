"""Pod-like sandboxes for the ranks of one local run, and the sweep of those left behind.

Each rank gets what a pod gets on a node: its own network namespace and interface (gloo
binds to it) with the run's bandwidth cap on its link (``netns``), the API reachable on its
loopback (``relay``), and a CFS CPU quota of ``num_cpus`` (``cgroups``). What a machine
cannot give is never faked: a run that asks for a cap or a fractional CPU where the facility
is missing is refused (:class:`SandboxError`); without the facilities, a run without limits
shares the host's loopback and gets whole CPUs by affinity, and its record says so.

Every sandbox is written down (``<sandbox_dir>/<id>.json``: its owner process, namespaces and
cgroups) before anything is made, and removed by its owner at the end. Sandboxes whose
owner died without removing them (the task was killed) are removed by :func:`sweep`, which
the run's ``finalize`` step, each new launch and ``mlbench up``/``down`` call.
"""

from __future__ import annotations

import ctypes
import json
import logging
import math
import os
import secrets
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from mlbench_core.launch import cgroups, netns
from mlbench_core.launch.cgroups import CpuQuota, MemoryGroup
from mlbench_core.launch.facilities import Facilities, detect, refusals
from mlbench_core.launch.limits import Limit, Limits, Status, uncapped
from mlbench_core.launch.netns import IFNAME, RunNetwork, SandboxError
from mlbench_core.launch.relay import ApiRelay, setns
from mlbench_core.launch.workers import WORKER_PORT, threads
from mlbench_core.settings import Settings, get_settings

__all__ = ["Sandbox", "SandboxError", "cpu_plan", "sweep"]

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
PREFIX = "mlb-"
_libc = ctypes.CDLL(None, use_errno=True)


def cpu_plan(num_workers: int, per_worker: int, available: list[int]) -> list[list[int]]:
    """CPUs of each rank by affinity: consecutive blocks of ``per_worker``, wrapping around
    when the machine has fewer CPUs than the run asks for."""
    return [
        sorted({available[(rank * per_worker + i) % len(available)] for i in range(per_worker)})
        for rank in range(num_workers)
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sandbox:
    """The sandboxes of ``run``'s ranks: planned at construction (raising
    :class:`SandboxError` for limits this machine cannot enforce), made by :meth:`open`,
    removed by :meth:`close`."""

    def __init__(
        self,
        run: dict[str, Any],
        api_url: str,
        *,
        facilities: Facilities | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.run, self.settings = run, settings or get_settings()
        self.facilities = facilities or detect(self.settings)
        refused = refusals(
            self.facilities, float(run.get("num_cpus") or 1), run.get("max_bandwidth")
        )
        if refused:
            raise SandboxError("; ".join(f"{field}: {text}" for field, text in refused.items()))
        self.id = secrets.token_hex(3)
        self.ranks = int(run["num_workers"])
        self.cpus = float(run.get("num_cpus") or 1)
        self.api_url = api_url
        self.network: RunNetwork | None = None
        if self.facilities.sandboxes:
            assert self.facilities.ip and self.facilities.tc
            self.network = RunNetwork(
                f"{PREFIX}{self.id}",
                self.ranks,
                run.get("max_bandwidth"),
                ip=self.facilities.ip,
                tc=self.facilities.tc,
            )
        control = self.facilities.cpu
        self.quotas = (
            [CpuQuota(control, f"{self.id}-{r}", self.cpus) for r in range(self.ranks)]
            if control is not None
            else None
        )
        memory = self.facilities.memory
        self.memory = (
            [MemoryGroup(memory, f"{self.id}-{r}") for r in range(self.ranks)]
            if memory is not None
            else None
        )
        self.affinity = (
            None
            if self.quotas is not None
            else cpu_plan(self.ranks, threads(run), sorted(os.sched_getaffinity(0)))
        )
        self.master_addr = "127.0.0.1" if self.network is None else self.network.address(0)
        self.master_port = WORKER_PORT if self.network is not None else free_port()
        self.relay: ApiRelay | None = None
        self._fds: list[int] = []
        self.state_file = self.settings.sandbox_dir / f"{self.id}.json"

    # -- making and removing ------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        me = psutil.Process()
        return {
            "id": self.id,
            "run_id": self.run.get("id"),
            "owner": {"pid": me.pid, "started": me.create_time()},
            "ip": self.facilities.ip,
            "netns": self.network.namespaces() if self.network else [],
            "cgroups": [str(g.path) for g in [*(self.quotas or []), *(self.memory or [])]],
        }

    def open(self) -> Sandbox:
        """Make every rank's sandbox; on failure, remove what was made and raise
        :class:`SandboxError`."""
        if self.network is None and self.quotas is None and self.memory is None:
            return self
        try:
            self.settings.sandbox_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._state()))
            tmp.replace(self.state_file)  # written down before anything is made
            if self.network is not None:
                self.network.create()
                self.relay = ApiRelay(self.api_url)
                for rank in range(self.ranks):
                    self.relay.add(self.network.path(rank))
                    self._fds.append(os.open(self.network.path(rank), os.O_RDONLY | os.O_CLOEXEC))
            for group in [*(self.quotas or []), *(self.memory or [])]:
                group.create()
        except (OSError, ValueError, SandboxError) as exc:
            self.close()
            if isinstance(exc, SandboxError):
                raise
            raise SandboxError(f"cannot make the sandboxes of the ranks: {exc}") from exc
        return self

    def close(self) -> None:
        """Remove every sandbox of the run (killing what still runs in them)."""
        if self.relay is not None:
            self.relay.close()
            self.relay = None
        for fd in self._fds:
            os.close(fd)
        self._fds = []
        _remove(self._state())
        self.state_file.unlink(missing_ok=True)

    def __enter__(self) -> Sandbox:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the ranks -----------------------------------------------------------------------

    @property
    def worker_api_url(self) -> str:
        return self.relay.url if self.relay is not None else self.api_url

    def address(self, rank: int) -> str:
        return "127.0.0.1" if self.network is None else self.network.address(rank)

    def env(self, rank: int) -> dict[str, str]:
        """What rank ``rank``'s process needs besides the workers' common environment."""
        env: dict[str, str] = {}
        if self.network is not None:
            env.update(GLOO_SOCKET_IFNAME=IFNAME, MLBENCH_NETWORK_INTERFACE=IFNAME)
            if self.run.get("backend") == "nccl":  # through the capped link, not NVLink/PCIe
                env.update(NCCL_SOCKET_IFNAME=IFNAME, NCCL_P2P_DISABLE="1", NCCL_SHM_DISABLE="1")
        if self.quotas is not None:
            env["MLBENCH_CPU_CGROUP"] = str(self.quotas[rank].path)
        if self.memory is not None:
            env["MLBENCH_MEMORY_CGROUP"] = str(self.memory[rank].path)
        return env

    def preexec(self, rank: int) -> Callable[[], None]:
        """What rank ``rank``'s process does between fork and exec: its own process group
        (stopping the rank stops what it started), death with the launcher (even on
        SIGKILL), its cgroup, its network namespace or its CPUs."""
        quota = self.quotas[rank] if self.quotas is not None else None
        memory = self.memory[rank] if self.memory is not None else None
        fd = self._fds[rank] if self._fds else None
        cpus = self.affinity[rank] if self.affinity is not None else None

        def setup() -> None:
            os.setpgrp()
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if quota is not None:
                quota.join()
            if memory is not None:
                memory.join()
            if fd is not None:
                setns(fd)
            if cpus is not None:
                os.sched_setaffinity(0, cpus)

        return setup

    def describe(self, rank: int) -> str:
        parts = []
        if self.network is not None:
            parts.append(f"netns {self.network.namespace(rank)} ({self.address(rank)})")
        if self.quotas is not None:
            parts.append(f"cpu quota {self.cpus:g}")
        if self.affinity is not None:
            parts.append(f"cpus {self.affinity[rank]}")
        return ", ".join(parts)

    def limits(self) -> Limits:
        """What is enforced, and by what, for the record of the run."""
        if self.quotas is not None:
            cpu = Limit(requested=self.cpus, status=Status.ENFORCED, by=self.quotas[0].describe())
        else:
            assert self.affinity is not None
            cpu = Limit(
                requested=self.cpus,
                status=Status.ENFORCED,
                by=f"CPU affinity: {math.ceil(self.cpus)} whole CPU(s) per rank "
                f"({self.facilities.cpu_missing})",
            )
        cap = self.run.get("max_bandwidth")
        if cap is None:
            bandwidth = uncapped()
        else:
            assert self.network is not None
            by = self.network.describe_shaping() or ""
            if self.run.get("backend") == "nccl":
                by += "; NCCL over sockets on that link (P2P and shared memory off)"
            bandwidth = Limit(requested=cap, status=Status.ENFORCED, by=by)
        if self.network is not None:
            network = (
                f"{self.network.describe()}; the API relayed over each rank's loopback, unshaped"
            )
        else:
            network = (
                f"the host's loopback, shared by all ranks ({self.facilities.network_missing})"
            )
        total = self.cpus * self.ranks
        return Limits(
            backend="local",
            cpu=cpu,
            bandwidth=bandwidth,
            network=network,
            oversubscribed=total > self.settings.cpus + 1e-9,
        )


def _remove(state: dict[str, Any]) -> None:
    """Remove the cgroups and namespaces of a sandbox's record (those that exist)."""
    for path in state.get("cgroups") or []:
        try:
            cgroups.remove(Path(path))
        except OSError as exc:
            log.warning("mlbench: cannot remove cgroup %s: %s", path, exc)
    names = [n for n in state.get("netns") or [] if n.startswith(PREFIX)]
    if names and state.get("ip"):
        try:
            netns.remove(state["ip"], names)
        except SandboxError as exc:
            log.warning("mlbench: %s", exc)


def _owner_alive(owner: Any) -> bool:
    try:
        process = psutil.Process(int(owner["pid"]))
        return abs(process.create_time() - float(owner["started"])) < 1.0
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


def sweep(settings: Settings | None = None) -> list[str]:
    """Remove the sandboxes whose owner process is gone; the ids of those removed."""
    directory = (settings or get_settings()).sandbox_dir
    removed = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            state = None
        if isinstance(state, dict) and _owner_alive(state.get("owner")):
            continue
        if isinstance(state, dict):
            _remove(state)
            log.warning(
                "mlbench: removed sandbox %s of run %s", state.get("id"), state.get("run_id")
            )
        path.unlink(missing_ok=True)
        removed.append(path.stem)
    return removed
