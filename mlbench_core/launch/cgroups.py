"""A rank's CPU quota: a cgroup of its own with a CFS quota, as a Kubernetes CPU limit sets.

``num_cpus`` CPUs become ``num_cpus x period`` microseconds of CPU time per period of
100 ms (cgroup v1: ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``; v2: ``cpu.max``), so 0.5 CPU
is half a core over time, spread over any of the machine's cores. The rank's process joins
the cgroup before it runs the worker (:meth:`CpuQuota.join`, between fork and exec), and
everything it starts stays in it; :meth:`CpuQuota.remove` kills what is left, then removes it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from mlbench_core.launch.facilities import CpuControl

__all__ = ["PARENT", "PERIOD_US", "CpuQuota", "MemoryGroup", "quota_us"]

PARENT = "mlbench"  # every rank's cgroup is <hierarchy>/mlbench/<sandbox>-<rank>
PERIOD_US = 100_000  # the kernel's (and the kubelet's) default period
MIN_QUOTA_US = 1_000  # the kernel's smallest quota; the kubelet raises smaller ones alike


def quota_us(cpus: float) -> int:
    """Microseconds of CPU time per period for ``cpus`` CPUs."""
    return max(MIN_QUOTA_US, round(cpus * PERIOD_US))


def _write(path: Path, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


class CpuQuota:
    """The cgroup ``<hierarchy>/mlbench/<name>`` holding one rank, with ``cpus`` CPUs."""

    def __init__(self, control: CpuControl, name: str, cpus: float) -> None:
        self.control, self.name, self.cpus = control, name, cpus
        self.parent = control.mount / PARENT
        self.path = self.parent / name
        self.quota = quota_us(cpus)

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def describe(self) -> str:
        return (
            f"CFS quota {self.quota} us per {PERIOD_US} us period for each rank "
            f"({self.control.name})"
        )

    def create(self) -> None:
        """Make the cgroup and set its quota."""
        if self.control.version == 2:
            self._enable_cpu(self.control.mount)
            self.parent.mkdir(exist_ok=True)
            self._enable_cpu(self.parent)
            self.path.mkdir()
            _write(self.path / "cpu.max", f"{self.quota} {PERIOD_US}")
        else:
            self.parent.mkdir(exist_ok=True)
            self.path.mkdir()
            _write(self.path / "cpu.cfs_period_us", str(PERIOD_US))
            _write(self.path / "cpu.cfs_quota_us", str(self.quota))

    @staticmethod
    def _enable_cpu(group: Path) -> None:
        control = group / "cgroup.subtree_control"
        if "cpu" not in control.read_text().split():
            _write(control, "+cpu")

    def join(self) -> None:
        """Move the calling process into the cgroup (used between fork and exec)."""
        fd = os.open(self.procs, os.O_WRONLY)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)

    def pids(self) -> list[int]:
        try:
            return [int(line) for line in self.procs.read_text().split()]
        except (OSError, ValueError):
            return []

    def throttling(self) -> Path:
        """The file with the cgroup's CFS statistics (periods, throttled time)."""
        return self.path / "cpu.stat"

    def remove(self, timeout: float = 5.0) -> None:
        """Kill whatever still runs in the cgroup, then remove it (a no-op when gone)."""
        remove(self.path, timeout)


class MemoryGroup:
    """The memory cgroup ``<hierarchy>/mlbench/<name>`` of one rank, without a limit: the
    kernel counts the peak of all the rank's processes together (``memory.peak`` in v2,
    ``memory.max_usage_in_bytes`` in v1), which the worker reports (MLBENCH_MEMORY_CGROUP)."""

    def __init__(self, control: CpuControl, name: str) -> None:
        self.control, self.name = control, name
        self.parent = control.mount / PARENT
        self.path = self.parent / name

    def create(self) -> None:
        if self.control.version == 2:
            for group in (self.control.mount, self.parent):
                if group != self.control.mount:
                    group.mkdir(exist_ok=True)
                control = group / "cgroup.subtree_control"
                if "memory" not in control.read_text().split():
                    _write(control, "+memory")
        else:
            self.parent.mkdir(exist_ok=True)
        self.path.mkdir()

    def join(self) -> None:
        """Move the calling process into the cgroup (used between fork and exec)."""
        fd = os.open(self.path / "cgroup.procs", os.O_WRONLY)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)

    def remove(self, timeout: float = 5.0) -> None:
        remove(self.path, timeout)


def remove(path: Path, timeout: float = 5.0) -> None:
    """Kill the processes of the cgroup at ``path`` and remove it; raises ``OSError`` when it
    cannot be removed within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while path.exists():
        try:
            pids = [int(line) for line in (path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # busy: killed processes take a moment to leave
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
