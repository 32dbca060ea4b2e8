"""``GET /api/backend``: the launch backend and what it enforces on this deployment."""

from __future__ import annotations

import shutil

from tests.mlbench_core.launch.test_facilities import require_facilities


def test_the_local_backend_says_what_this_machine_enforces(api):
    require_facilities()
    answer = api.get("/api/backend/")
    assert answer.status_code == 200
    body = answer.json()
    assert body["backend"] == "local"
    assert body["cpu"]["status"] == "enforced" and "CFS quota" in body["cpu"]["by"]
    assert body["fractional_cpus"] is True
    assert body["bandwidth"] == {
        "status": "enforced",
        "by": "tc token buckets on each rank's link, both ways (a network namespace per rank)",
    }
    assert (body["gpus"], body["custom_images"], body["admission"]) == (False, False, True)
    assert body["cpu_capacity"] == 64 and body["pods_from_cluster"] is False


def test_what_is_missing_shows_as_unavailable(api, tmp_path, monkeypatch, settings_env):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ip").symlink_to(shutil.which("ip") or "/usr/sbin/ip")
    monkeypatch.setenv("PATH", str(bin_dir))  # no tc
    settings_env.setenv("MLBENCH_CGROUP_MOUNT", str(tmp_path))  # no cgroup cpu controller
    body = api.get("/api/backend").json()
    assert body["bandwidth"]["status"] == "unavailable"
    assert "'tc' not found on PATH" in body["bandwidth"]["by"]
    assert body["fractional_cpus"] is False
    assert body["cpu"]["by"].startswith("CPU affinity, whole CPUs")


def test_kubernetes_requests_bandwidth_and_leaves_admission_to_the_cluster(api, settings_env):
    settings_env.setenv("MLBENCH_BACKEND", "kubernetes")
    body = api.get("/api/backend").json()
    assert body["backend"] == "kubernetes"
    assert body["bandwidth"]["status"] == "requested" and "not verified" in body["bandwidth"]["by"]
    assert (body["gpus"], body["admission"], body["pods_from_cluster"]) == (True, False, True)
    assert body["cpu_capacity"] is None


def test_a_third_backend_answers_through_the_interface(api, settings_env):
    settings_env.setenv("MLBENCH_BACKEND", "tests.support.plain_backend:BACKEND")
    body = api.get("/api/backend").json()
    assert body["backend"] == "plain" and body["bandwidth"]["status"] == "unavailable"
    refused = api.post("/api/runs/", json={"name": "c", "num_workers": 1, "max_bandwidth": 10})
    assert refused.status_code == 409  # well formed; this deployment cannot give it
    assert refused.json()["detail"][0]["loc"] == ["body", "max_bandwidth"]
    assert refused.json()["detail"][0]["msg"] == "the plain backend has no caps"


def test_anonymous_callers_are_refused(anonymous):
    assert anonymous.get("/api/backend").status_code == 401
