"""Each rank's true peak memory, from the kernel's high-water marks rather than from the
resource samples (taken every few seconds, they miss short peaks).

A rank's figures: ``vmhwm_bytes``, the peak resident set of its own process (``VmHWM`` of
``/proc/self/status``); ``children_bytes``, the largest peak of its finished child processes
(``ru_maxrss`` of ``RUSAGE_CHILDREN``: data-loader workers); and, when the rank runs in a
memory cgroup of its own, that cgroup's peak (``memory.peak`` in cgroup v2,
``memory.max_usage_in_bytes`` in v1), which counts every process of the rank together. Its
``peak_bytes`` is the cgroup's peak when there is one, else own plus children's peak (an
upper bound when the children peaked at different moments).
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

import torch.distributed as dist

from mlbench_core.engine.distributed import collective

__all__ = ["gather", "own", "summary"]

CGROUP_FILES = ("memory.peak", "memory.max_usage_in_bytes")  # v2, v1


def _vmhwm(status: Path = Path("/proc/self/status")) -> int | None:
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_peak(cgroup: Path | None) -> int | None:
    if cgroup is None:
        return None
    for name in CGROUP_FILES:
        try:
            return int((cgroup / name).read_text().strip())
        except (OSError, ValueError):
            continue
    return None


def own(memory_cgroup: Path | None = None) -> dict[str, Any]:
    """This process's figures (see the module's text)."""
    vmhwm = _vmhwm()
    if vmhwm is None:  # no procfs: the same mark from getrusage (KiB on Linux)
        vmhwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    cgroup = _cgroup_peak(memory_cgroup)
    if cgroup is not None:
        peak, by = cgroup, "cgroup"
    else:
        peak, by = vmhwm + children, "VmHWM + children's ru_maxrss"
    return {
        "peak_bytes": peak,
        "by": by,
        "vmhwm_bytes": vmhwm,
        "children_bytes": children,
        "cgroup_bytes": cgroup,
    }


def gather(rank_figures: dict[str, Any], world_size: int) -> list[dict[str, Any]]:
    """Collective: every rank's figures, in rank order (on every rank)."""
    if world_size == 1 or not dist.is_initialized():
        return [rank_figures]
    out: list[Any] = [None] * world_size
    with collective():
        dist.all_gather_object(out, rank_figures)
    return out


def summary(per_rank: list[dict[str, Any]]) -> dict[str, Any]:
    """For a run's result: the largest rank's peak, which rank, and every rank's figures."""
    peaks = [r.get("peak_bytes") or 0 for r in per_rank]
    top = max(range(len(peaks)), key=peaks.__getitem__) if peaks else None
    return {
        "peak_bytes": peaks[top] if top is not None else None,
        "rank": top,
        "per_rank": per_rank,
    }
