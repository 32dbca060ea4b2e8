"""A backend written only in the tests (``tests.support.plain_backend``) runs whole runs
through the interface: named in MLBENCH_BACKEND, nothing in the DAG file changes."""

from __future__ import annotations

from mlbench_core.run_fields import dag_conf
from tests.dags.conftest import load_dag
from tests.support import plain_backend


def test_a_third_backend_runs_a_whole_run(client, settings_env):
    settings_env.setenv("MLBENCH_BACKEND", "tests.support.plain_backend:BACKEND")
    run = client.create_run("plain", 2, benchmark="digits", light_target=True,
                            job_id="external-dag-run")  # fmt: skip
    dag_run = load_dag().test(run_conf=dag_conf(run))
    assert dag_run.state == "success"
    done = client.get_run(run["id"])
    assert done["state"] == "FINISHED", done["job_metadata"]
    assert done["job_metadata"]["backend"] == "plain"
    assert done["job_metadata"]["unsupervised"] is True  # its start_metadata
    assert done["result"]["reached"] is True
    assert [p["phase"] for p in client.get_pods(run_id=run["id"])] == ["Succeeded"] * 2
    lines = client.get_logs(run["id"], limit=10_000)["lines"]
    assert {line["rank"] for line in lines} == {0, 1}
    assert plain_backend.BACKEND.teardowns[-1] == run["id"]  # the teardown ran


def test_its_failure_is_the_runs_reason(client, settings_env):
    settings_env.setenv("MLBENCH_BACKEND", "tests.support.plain_backend:BACKEND")
    # the tests' MLBENCH_DATA_URL leads nowhere: 2a's ranks cannot get their dataset
    run = client.create_run("plain-fails", 1, benchmark="2a", job_id="external-dag-run")
    dag_run = load_dag().test(run_conf=dag_conf(run))
    assert dag_run.state == "failed"
    done = client.get_run(run["id"])
    assert done["state"] == "FAILED"
    assert done["job_metadata"]["failure"] == "exit codes [1]"  # a dataset error
    assert plain_backend.BACKEND.teardowns[-1] == run["id"]
