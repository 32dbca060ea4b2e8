"""Whole runs of mlbench_run through ``dag.test()``: real workers (torch.distributed gloo
across processes) reporting to the real API served on loopback."""

from __future__ import annotations

import threading

import pytest

from mlbench_core import runflow
from mlbench_core.run_fields import dag_conf
from tests.dags.conftest import load_dag
from tests.support.waiting import wait_for


def test_two_workers_reach_the_demo_target(client):
    run = client.create_run("digits-e2e", 2, benchmark="digits", job_id="external-dag-run")
    dag_run = load_dag().test(run_conf=dag_conf(run))
    assert dag_run.state == "success"

    done = client.get_run(run["id"])
    assert done["state"] == "FINISHED", done["job_metadata"]
    assert done["job_metadata"]["epochs"] == 30 and done["job_metadata"]["backend"] == "local"
    result = done["result"]
    assert result["reached"] is True and result["time_to_target_s"] > 0
    assert set(result["split"]) >= {"compute_s", "communication_s", "data_loading_s"}
    series = client.get_run_metrics(run["id"])
    assert series["val_accuracy"][-1]["value"] >= 95.0
    assert "train_loss" in series
    pods = client.get_pods(run_id=run["id"])
    assert [(p["rank"], p["phase"]) for p in pods] == [(0, "Succeeded"), (1, "Succeeded")]
    for pod in pods:
        usage = client.get_pod_metrics(pod["name"])
        assert "container_cpu_usage_seconds_total" in usage
        assert "container_memory_usage_bytes" in usage
    lines = client.get_logs(run["id"], limit=10_000)["lines"]
    assert {line["rank"] for line in lines} == {0, 1}


def test_a_run_triggered_from_the_form_creates_its_run(client):
    params = {
        "name": "from-the-form",
        "benchmark": "digits",
        "num_workers": 1,
        "light_target": True,
        "max_bandwidth": 100,
        "epochs": 2,
        "steps_per_epoch": 3,
        "seed": 11,
        "settings": {"hidden": "32"},
    }
    dag_run = load_dag().test(run_conf=params)
    assert dag_run.state == "success"
    run = next(r for r in client.get_runs() if r["name"] == "from-the-form")
    assert run["state"] == "FINISHED" and run["job_id"] == dag_run.run_id
    assert run["light_target"] is True
    assert (run["epochs"], run["steps_per_epoch"], run["seed"]) == (2, 3, 11)
    assert run["settings"] == {"hidden": 32}
    # the worker got them on its command line: its record and result say so
    hyper = run["record"]["hyperparameters"]
    assert (
        run["record"]["seed"] == 11 and hyper["hidden"] == 32 and hyper["overridden"] == ["hidden"]
    )
    assert (hyper["epochs"], hyper["steps_per_epoch"]) == (2, 3)
    assert run["result"]["epochs"] <= 2 and run["result"]["steps_per_epoch_limit"] == 3
    limits = run["job_metadata"]["limits"]
    assert limits["bandwidth"]["status"] == "enforced"
    assert "tbf rate 100 Mbit/s" in limits["bandwidth"]["by"]
    assert "warnings" not in run["job_metadata"]


def test_workers_that_cannot_start_end_the_run_failed_with_the_reason(client):
    # The tests' MLBENCH_DATA_URL leads nowhere: the launch cannot get 2a's dataset.
    run = client.create_run("no-data", 2, benchmark="2a", job_id="external-dag-run")
    dag_run = load_dag().test(run_conf=dag_conf(run))
    assert dag_run.state == "failed"
    done = client.get_run(run["id"])
    assert done["state"] == "FAILED"
    assert "dataset of benchmark 2a: cannot download" in done["job_metadata"]["failure"]
    assert {p["phase"] for p in client.get_pods(run_id=run["id"])} == {"Failed"}


def test_bad_form_input_is_refused_at_trigger_naming_the_field(client):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="param name"):
        load_dag().test(run_conf={"name": "Bad_Name", "benchmark": "digits"})
    with pytest.raises(ParamValidationError, match="param num_workers"):
        load_dag().test(run_conf={"name": "ok", "num_workers": 0})
    assert client.get_runs() == []


def test_the_form_requires_a_name_and_prepare_refuses_a_taken_one_at_once(client):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="param name"):
        load_dag().test(run_conf={"benchmark": "digits"})
    assert client.get_runs() == []
    taken = client.create_run("taken", 1, benchmark="digits", job_id="elsewhere")
    dag_run = load_dag().test(run_conf={"name": "taken", "num_workers": 1})
    assert dag_run.state == "failed"
    prepare = dag_run.get_task_instance("prepare")
    assert prepare.state == "failed" and prepare.try_number == 1  # no retries
    assert [r["id"] for r in client.get_runs()] == [taken["id"]]
    with pytest.raises(runflow.FormRefused, match="^name: a run named 'taken' exists"):
        runflow.prepare(client, {"name": "taken", "num_workers": 1}, "another-dag-run")
    with pytest.raises(runflow.FormRefused, match="^settings: benchmark 1a has no setting 'nope'"):
        runflow.prepare(client, {"name": "x", "num_workers": 1, "settings": {"nope": 1}}, "d")


def test_a_run_waits_deferred_for_free_cpus_then_runs(client, settings_env):
    settings_env.setenv("MLBENCH_CPU_CAPACITY", "2")
    holder = client.create_run("holder", 2, benchmark="digits", job_id="another-dag-run")
    assert client.admit_run(holder["id"])["admitted"] is True  # it holds both CPUs
    run = client.create_run("waiter", 2, benchmark="digits", job_id="its-dag-run")
    seen: dict = {}

    def release() -> None:
        seen["reason"] = wait_for(
            lambda: (client.get_run(run["id"])["job_metadata"].get("waiting") or {}).get("reason"),
            60,
            "the run to wait",
        )
        seen["state"] = client.get_run(run["id"])["state"]
        client.update_run(holder["id"], state="FINISHED")

    releaser = threading.Thread(target=release)
    releaser.start()
    dag_run = load_dag().test(run_conf=dag_conf(run))  # its trigger runs inline
    releaser.join(60)
    assert seen == {
        "reason": "waiting for 2 CPUs: 0 of the machine's 2 are free; held by 'holder' (2)",
        "state": "INITIALIZED",
    }
    assert dag_run.state == "success"
    done = client.get_run(run["id"])
    assert done["state"] == "FINISHED" and done["result"]["reached"] is True
    assert "waiting" not in done["job_metadata"]


def test_a_second_attempt_of_the_ranks_fails_the_run_instead_of_training_again(client):
    """What an earlier attempt launched (then lost with the scheduler) is never trained over:
    the ranks task of a run already launched fails it, saying it was interrupted."""
    run = client.create_run("twice", 1, benchmark="digits", job_id="a-lost-attempt")
    client.update_run(
        run["id"], job_metadata={"launched": {"attempt": "try 1 on gone", "at": "earlier"}}
    )
    dag_run = load_dag().test(run_conf=dag_conf(run))
    assert dag_run.state == "failed"
    assert dag_run.get_task_instance("workers.ranks").state == "failed"
    done = client.get_run(run["id"])
    assert done["state"] == "FAILED"
    assert done["job_metadata"]["failure"].startswith(
        "interrupted: its workers were started by an earlier attempt of the ranks task "
        "(try 1 on gone, earlier)"
    )
    assert client.get_run_metrics(run["id"]) == {}  # nothing trained on top
    assert client.get_logs(run["id"])["lines"] == []


def test_a_finished_run_carries_no_failure_reason(client):
    run = client.create_run("recovered", 1, benchmark="digits", job_id="its-dag-run")
    client.update_run(run["id"], job_metadata={"failure": "[Errno 32] Broken pipe"})
    assert load_dag().test(run_conf=dag_conf(run)).state == "success"
    done = client.get_run(run["id"])
    assert done["state"] == "FINISHED" and done["job_metadata"]["failure"] is None
    assert done["job_metadata"]["launched"]["attempt"].startswith("try 1 on ")
