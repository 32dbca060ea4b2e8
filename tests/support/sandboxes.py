"""What sandboxes of local runs leave on this machine: network namespaces, links of the
host's namespace, qdiscs, cgroups and sandbox records. Tests compare it before and after."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mlbench_core.launch.cgroups import PARENT
from mlbench_core.launch.facilities import detect
from mlbench_core.launch.netns import NETNS_DIR
from mlbench_core.settings import get_settings


def _names(directory: Path, pattern: str = "*") -> set[str]:
    return {p.name for p in directory.glob(pattern)} if directory.is_dir() else set()


def host_qdiscs() -> set[str]:
    done = subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True)
    return {line.strip() for line in done.stdout.splitlines() if "tbf" in line}


def footprint() -> set[str]:
    """Everything sandboxes could leave behind, as names."""
    found = {f"netns {n}" for n in _names(NETNS_DIR, "mlb-*")}
    found |= {f"host link {n}" for n in os.listdir("/sys/class/net")}
    found |= {f"host qdisc {q}" for q in host_qdiscs()}
    found |= {f"record {n}" for n in _names(get_settings().sandbox_dir)}
    facilities = detect()
    for kind, control in (("cgroup", facilities.cpu), ("memory cgroup", facilities.memory)):
        if control is not None:
            found |= {
                f"{kind} {n}"
                for n in _names(control.mount / PARENT)
                if (control.mount / PARENT / n).is_dir()
            }
    return found
