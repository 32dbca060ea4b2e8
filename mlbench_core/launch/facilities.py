"""What this machine can enforce for local runs, found once per process.

- **Network sandboxes** (a network namespace per rank, traffic control for a bandwidth cap):
  need the capabilities CAP_SYS_ADMIN and CAP_NET_ADMIN (root has them) and iproute2's
  ``ip`` and ``tc``.
- **CPU quotas** (a CFS quota per rank): need a writable cgroup hierarchy with the ``cpu``
  controller, v1 (``cpu.cfs_quota_us``) or v2 (``cpu.max``).

Each facility is either available or carries the reason it is not, in words a user can act
on. A run asking for a limit that a missing facility would enforce is refused (see
:func:`refusals`) instead of running unenforced.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from mlbench_core.settings import Settings, get_settings

__all__ = ["CpuControl", "Facilities", "detect", "refusals"]

CAP_NET_ADMIN, CAP_SYS_ADMIN = 12, 21
MOUNTINFO = Path("/proc/self/mountinfo")
STATUS = Path("/proc/self/status")


@dataclass(frozen=True)
class CpuControl:
    """A cgroup hierarchy with the cpu controller."""

    version: int  # 1 or 2
    mount: Path

    @property
    def name(self) -> str:
        return f"cgroup v{self.version} cpu controller"


@dataclass(frozen=True)
class Facilities:
    """What can be enforced here: ``None`` where a facility is available, else why not."""

    ip: str | None
    tc: str | None
    network_missing: str | None
    cpu: CpuControl | None
    cpu_missing: str | None
    memory: CpuControl | None = None  # a hierarchy with the memory controller (peaks per rank)

    @property
    def sandboxes(self) -> bool:
        """Whether each rank can get a network namespace of its own (and a bandwidth cap)."""
        return self.network_missing is None

    def lines(self) -> list[str]:
        """What is enforced on this machine, one line per limit (for ``mlbench up``)."""
        net = (
            "bandwidth caps: enforced (a network namespace per rank, tc on its link)"
            if self.sandboxes
            else f"bandwidth caps: cannot be enforced ({self.network_missing}); capped runs "
            "are refused"
        )
        cpu = (
            f"CPU limits: enforced as CFS quotas ({self.cpu.name} at {self.cpu.mount})"
            if self.cpu is not None
            else f"CPU limits: whole CPUs by affinity only ({self.cpu_missing}); fractional "
            "CPUs are refused"
        )
        return [net, cpu]


def _capabilities() -> int:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def _network(path: str | None) -> tuple[str | None, str | None, str | None]:
    """``ip``, ``tc`` and why sandboxes cannot be made (None: they can)."""
    caps = _capabilities()
    ip, tc = shutil.which("ip", path=path), shutil.which("tc", path=path)
    if not (caps >> CAP_SYS_ADMIN & 1 and caps >> CAP_NET_ADMIN & 1):
        return ip, tc, "network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN)"
    missing = [name for name, found in (("ip", ip), ("tc", tc)) if found is None]
    if missing:
        tools = " and ".join(f"'{m}'" for m in missing)
        return ip, tc, f"{tools} not found on PATH (Debian package iproute2)"
    return ip, tc, None


def _cgroup_mounts() -> list[tuple[str, Path, set[str]]]:
    """(filesystem type, mount point, super options) of each cgroup mount."""
    mounts = []
    try:
        text = MOUNTINFO.read_text()
    except OSError:
        return mounts
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        mount = Path(fields[4].replace("\\040", " "))
        mounts.append((tail[0], mount, set(tail[2].split(","))))
    return mounts


def _control_at(mount: Path) -> CpuControl | None:
    """The cpu controller's hierarchy at ``mount``, if that is one."""
    if (mount / "cpu.cfs_quota_us").exists():
        return CpuControl(1, mount)
    controllers = mount / "cgroup.controllers"
    try:
        if "cpu" in controllers.read_text().split():
            return CpuControl(2, mount)
    except OSError:
        pass
    return None


def _cpu(mount: Path | None) -> tuple[CpuControl | None, str | None]:
    """The cpu controller to put quotas in, and why there is none."""
    if mount is not None:
        candidates = [mount]
    else:
        mounts = _cgroup_mounts()
        v2 = [m for kind, m, _ in mounts if kind == "cgroup2"]
        v1 = [m for kind, m, options in mounts if kind == "cgroup" and "cpu" in options]
        candidates = v2 + v1
    controls = [c for c in map(_control_at, candidates) if c is not None]
    if not controls:
        where = f"at {mount}" if mount is not None else "mounted (/proc/self/mountinfo)"
        return None, f"no cgroup hierarchy with the cpu controller {where}"
    control = controls[0]
    if not os.access(control.mount, os.W_OK):
        return None, f"the {control.name} at {control.mount} is not writable (needs root)"
    return control, None


def _memory() -> CpuControl | None:
    """A writable hierarchy with the memory controller (v2 first), if there is one."""
    for kind, mount, options in sorted(_cgroup_mounts(), key=lambda m: m[0] != "cgroup2"):
        if kind == "cgroup" and "memory" in options:
            found = CpuControl(1, mount)
        elif kind == "cgroup2":
            try:
                if "memory" not in (mount / "cgroup.controllers").read_text().split():
                    continue
            except OSError:
                continue
            found = CpuControl(2, mount)
        else:
            continue
        if os.access(mount, os.W_OK):
            return found
    return None


@lru_cache(maxsize=8)
def _detect(path: str | None, mount: Path | None, euid: int) -> Facilities:
    ip, tc, network_missing = _network(path)
    cpu, cpu_missing = _cpu(mount)
    # Only with the machine's own hierarchies (a test's cgroup mount has no memory controller).
    memory = _memory() if mount is None else None
    return Facilities(ip, tc, network_missing, cpu, cpu_missing, memory)


def detect(settings: Settings | None = None) -> Facilities:
    """The facilities of this machine for this process (its PATH, its privileges)."""
    settings = settings or get_settings()
    return _detect(os.environ.get("PATH"), settings.cgroup_mount, os.geteuid())


def refusals(
    facilities: Facilities, num_cpus: float, max_bandwidth: float | None
) -> dict[str, str]:
    """Why a run with these limits cannot run here unenforced, by field (empty: it can)."""
    refused = {}
    if max_bandwidth is not None and not facilities.sandboxes:
        refused["max_bandwidth"] = (
            f"a bandwidth cap cannot be enforced on this machine: {facilities.network_missing}"
        )
    if facilities.cpu is None and not float(num_cpus).is_integer():
        refused["num_cpus"] = (
            f"{num_cpus:g} CPUs cannot be enforced on this machine: {facilities.cpu_missing}; "
            f"ask for whole CPUs (e.g. {max(1, math.ceil(num_cpus))}), given by CPU affinity"
        )
    return refused
