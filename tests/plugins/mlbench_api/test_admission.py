"""Admission of local runs through Airflow's real app: what cannot fit or be enforced is
refused naming the fields; what waits for CPUs waits INITIALIZED with its reason, in order."""

from __future__ import annotations

import os
import shutil
from datetime import timedelta

import pytest

from mlbench_api import admission
from mlbench_core.settings import get_settings


@pytest.fixture
def capacity(api, settings_env):
    """This machine gives 4 CPUs to runs (whatever it has)."""
    settings_env.setenv("MLBENCH_CPU_CAPACITY", "4")
    return 4


def create(api, name: str, **fields) -> dict:
    body = {"name": name, "num_workers": 2, "num_cpus": 1, "benchmark": "digits", **fields}
    response = api.post("/api/runs/", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def admit(api, run_id: int) -> dict:
    response = api.post(f"/api/runs/{run_id}/admit")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_run_asking_for_more_cpus_than_the_machine_gives_is_refused(api, capacity):
    body = {"name": "big", "num_workers": 3, "num_cpus": 1.5, "benchmark": "digits"}
    response = api.post("/api/runs/", json=body)
    assert response.status_code == 409  # well formed; this machine cannot give it
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "num_cpus"]
    assert response.json()["message"] == (
        "num_cpus: num_workers x num_cpus = 3 x 1.5 = 4.5 CPUs, more than the 4 this machine "
        "gives to runs (MLBENCH_CPU_CAPACITY): ask for fewer, or set oversubscribe to run with "
        "less than asked"
    )
    assert api.get("/api/runs/").json() == []  # nothing stored


def test_oversubscribing_is_accepted_when_asked_for_and_recorded(api, capacity):
    run = create(api, "big", num_workers=3, num_cpus=1.5, oversubscribe=True)
    assert run["oversubscribe"] is True
    assert run["job_metadata"]["warnings"] == [
        "oversubscribed: 3 workers x 1.5 CPUs = 4.5 CPUs on a machine that gives runs 4: the "
        "workers get less than they ask for, and the run waits until it has the machine to "
        "itself"
    ]
    assert "warnings" not in create(api, "fits", oversubscribe=True)["job_metadata"]
    assert api.get(f"/api/runs/{run['id']}").json()["oversubscribe"] is True


def test_a_limit_this_machine_cannot_enforce_is_refused_saying_what_is_missing(
    api, capacity, tmp_path, monkeypatch, settings_env
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ip").symlink_to(shutil.which("ip") or "/usr/sbin/ip")
    monkeypatch.setenv("PATH", str(bin_dir))  # no tc
    settings_env.setenv("MLBENCH_CGROUP_MOUNT", str(tmp_path))  # no cgroup cpu controller
    response = api.post("/api/runs/", json={"name": "c", "num_workers": 1, "max_bandwidth": 10,
                                            "num_cpus": 0.5, "benchmark": "digits"})  # fmt: skip
    assert response.status_code == 409
    fields = {tuple(e["loc"]): e["msg"] for e in response.json()["detail"]}
    assert fields[("body", "max_bandwidth")] == (
        "a bandwidth cap cannot be enforced on this machine: 'tc' not found on PATH "
        "(Debian package iproute2)"
    )
    assert fields[("body", "num_cpus")].startswith("0.5 CPUs cannot be enforced on this machine")
    # runs without limits still run there
    assert create(api, "plain", num_workers=1)["state"] == "INITIALIZED"


def test_runs_wait_for_cpus_in_order_and_start_when_they_are_free(api, capacity):
    first = create(api, "first", num_cpus=2)  # 4 CPUs: the whole machine
    second = create(api, "second")  # 2
    third = create(api, "third", num_workers=1)  # 1
    assert admit(api, first["id"])["admitted"] is True
    answer = admit(api, second["id"])
    assert answer["admitted"] is False
    assert answer["reason"] == (
        "waiting for 2 CPUs: 0 of the machine's 4 are free; held by 'first' (4)"
    )
    assert answer["run"]["state"] == "INITIALIZED"
    waiting = answer["run"]["job_metadata"]["waiting"]
    assert waiting["reason"] == answer["reason"] and waiting["since"]
    # the third waits its turn behind the second (which asked first), even once it would fit
    queued = "queued behind 1 earlier run(s) waiting for CPUs ('second')"
    assert admit(api, third["id"])["reason"] == queued
    api.patch(f"/api/runs/{first['id']}", json={"state": "FINISHED"})
    assert admit(api, third["id"])["reason"] == queued
    started = admit(api, second["id"])
    assert started["admitted"] is True and started["run"]["state"] == "STARTED"
    assert "waiting" not in started["run"]["job_metadata"]
    assert started["run"]["started_at"]
    assert admit(api, third["id"])["admitted"] is True  # 2 + 1 of 4
    assert admit(api, second["id"])["admitted"] is True  # asking again changes nothing


def test_a_waiting_run_that_stopped_asking_leaves_the_queue(api, capacity, store):
    from mlbench_api.store import Run

    holder, gone, later = (
        create(api, "holder", num_cpus=2),
        create(api, "gone"),
        create(api, "later"),
    )
    admit(api, holder["id"])
    assert admit(api, gone["id"])["admitted"] is False
    with store.session() as session:  # its DAG run died a while ago: it asked long ago
        run = session.get(Run, gone["id"])
        stale = (admission.utcnow() - admission.QUEUE_TTL - timedelta(seconds=1)).isoformat()
        run.job_metadata = {**run.job_metadata, "waiting": {**run.job_metadata["waiting"],
                                                            "asked_at": stale}}  # fmt: skip
    api.patch(f"/api/runs/{holder['id']}", json={"state": "FINISHED"})
    assert admit(api, later["id"])["admitted"] is True


def test_an_oversubscribed_run_waits_for_the_whole_machine(api, capacity):
    small = create(api, "small", num_workers=1)
    big = create(api, "big", num_workers=8, oversubscribe=True)
    admit(api, small["id"])
    assert admit(api, big["id"])["reason"].startswith("waiting for 4 CPUs: 3 of the machine's 4")
    api.patch(f"/api/runs/{small['id']}", json={"state": "FINISHED"})
    assert admit(api, big["id"])["admitted"] is True


def test_an_ended_run_cannot_be_admitted(api, capacity):
    run = create(api, "ended")
    api.post(f"/api/runs/{run['id']}/stop")
    response = api.post(f"/api/runs/{run['id']}/admit")
    assert response.status_code == 409
    assert "CANCELLED: it cannot start" in response.text
    assert api.post("/api/runs/999/admit").status_code == 404


def test_on_kubernetes_the_cluster_decides(api, settings_env):
    settings_env.setenv("MLBENCH_BACKEND", "kubernetes")
    settings_env.setenv("MLBENCH_CPU_CAPACITY", "1")
    runs = [create(api, f"k{i}", num_workers=4, num_cpus=2) for i in range(2)]
    assert [admit(api, run["id"])["admitted"] for run in runs] == [True, True]


def test_the_default_capacity_is_the_machines_cpu_count():
    assert get_settings().cpus == float(os.cpu_count())
