"""What this machine can enforce: found for real here (root, iproute2, cgroup v1 cpu), and
made unavailable for real (a PATH without tc, a directory that is no cgroup hierarchy, an
unprivileged user)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from mlbench_core.launch.facilities import detect, refusals
from mlbench_core.settings import Settings


def require_facilities() -> None:
    """These tests need what CI has (root, iproute2, a writable cgroup cpu controller)."""
    found = detect(Settings())
    missing = [m for m in (found.network_missing, found.cpu_missing) if m]
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"local sandboxes are unavailable (CI=true: required): {missing}")
        pytest.skip(f"local sandboxes are unavailable here: {missing}")


def test_this_machine_can_enforce_both_limits():
    require_facilities()
    found = detect(Settings())
    assert found.sandboxes and found.ip and found.tc
    assert found.cpu is not None and found.cpu.version in (1, 2)
    assert refusals(found, 0.5, 10.0) == {}
    lines = found.lines()
    assert "bandwidth caps: enforced" in lines[0] and "CFS quotas" in lines[1]


def test_without_tc_a_cap_is_refused_and_says_why(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ip").symlink_to(shutil.which("ip") or "/usr/sbin/ip")
    monkeypatch.setenv("PATH", str(bin_dir))
    found = detect(Settings())
    assert not found.sandboxes
    assert found.network_missing == "'tc' not found on PATH (Debian package iproute2)"
    refused = refusals(found, 1.0, 10.0)
    assert set(refused) == {"max_bandwidth"}
    assert "cannot be enforced on this machine: 'tc' not found" in refused["max_bandwidth"]
    assert refusals(found, 1.0, None) == {}  # runs without a cap still run


def test_without_a_cgroup_cpu_controller_a_fractional_cpu_is_refused(tmp_path):
    found = detect(Settings(cgroup_mount=tmp_path))
    assert found.cpu is None
    assert found.cpu_missing == f"no cgroup hierarchy with the cpu controller at {tmp_path}"
    refused = refusals(found, 0.5, None)
    assert set(refused) == {"num_cpus"}
    assert refused["num_cpus"].startswith("0.5 CPUs cannot be enforced on this machine")
    assert "ask for whole CPUs (e.g. 1)" in refused["num_cpus"]
    assert refusals(found, 2.0, None) == {}  # whole CPUs: by affinity
    assert "whole CPUs by affinity only" in found.lines()[1]


def test_without_the_capabilities_no_sandbox_can_be_made():
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and util-linux's setpriv to drop the capabilities")
    script = (
        "import json\n"
        "from mlbench_core.launch.facilities import detect\n"
        "from mlbench_core.settings import Settings\n"
        "print(json.dumps(detect(Settings()).network_missing))"
    )
    done = subprocess.run(
        [setpriv, "--bounding-set", "-all", "--inh-caps", "-all", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == (
        "network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN)"
    )
