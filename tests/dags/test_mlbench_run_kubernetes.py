"""The kubernetes backend's tasks through ``dag.test()``: the real ``KubernetesPodOperator``
and ``kubernetes`` client against a stand-in API server whose pods print scripted lines and
exit (``tests.kubeapi.cluster``), shipping every line to the real mlbench API."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mlbench_core.launch import kubernetes as k8s
from mlbench_core.launch.workers import worker_command
from mlbench_core.run_fields import dag_conf
from mlbench_core.settings import get_settings
from tests.dags.conftest import load_dag
from tests.kubeapi import write_kubeconfig
from tests.kubeapi.cluster import FakeCluster, Script

NAMESPACE = "bench"
TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "/app/mlbench_core/worker/trainer.py", line 211, in train',
    "    loss.backward()",
    "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
]


@pytest.fixture
def cluster(dag_env, settings_env, monkeypatch, tmp_path):  # noqa: ANN001, ANN201
    """The DAG on the kubernetes backend, its cluster the stand-in (Airflow connection
    ``kubernetes_default`` and the API's kubeconfig)."""
    fake = FakeCluster()
    with fake:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake.url, NAMESPACE)
        connection = {
            "conn_type": "kubernetes",
            "extra": {"kube_config_path": str(kubeconfig), "namespace": NAMESPACE},
        }
        monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps(connection))
        settings_env.setenv("MLBENCH_BACKEND", "kubernetes")
        settings_env.setenv("MLBENCH_NAMESPACE", NAMESPACE)
        settings_env.setenv("MLBENCH_KUBECONFIG", str(kubeconfig))
        settings_env.setenv("MLBENCH_API_URL", dag_env)
        yield fake


def _utc(date: str) -> datetime:
    """A date of the API or a kubelet timestamp (nanoseconds), to the microsecond."""
    date = date.replace("Z", "+00:00")
    if "." in date:
        head, tail = date.split(".", 1)
        digits = tail[: len(tail) - 6]
        date = f"{head}.{digits[:6]}{tail[-6:]}"
    return datetime.fromisoformat(date).astimezone(UTC)


def logged(client, run_id: int) -> list[tuple[int, str, str]]:  # noqa: ANN001
    return [
        (x["rank"], x["stream"], x["line"]) for x in client.get_logs(run_id, limit=1000)["lines"]
    ]


def test_every_line_of_every_pod_reaches_the_run_in_order(client, cluster):
    run = client.create_run("kube-ok", 2, benchmark="digits", job_id="external-dag-run")
    lines = {rank: [f"rank {rank}: line {i}" for i in range(40)] for rank in range(2)}
    for rank in range(2):
        cluster.scripts[f"kube-ok-w{rank}"] = Script(lines[rank])
    dag_run = load_dag().test(run_conf=dag_conf(run))
    assert dag_run.state == "success"
    done = client.get_run(run["id"])
    assert done["state"] == "FINISHED", done["job_metadata"]
    assert done["job_metadata"]["limits"]["bandwidth"]["status"] == "none"
    got = client.get_logs(run["id"], limit=1000)["lines"]
    for rank in range(2):
        mine = [x for x in got if x["rank"] == rank]
        assert [x["line"] for x in mine] == lines[rank]
        assert {x["stream"] for x in mine} == {"stdout"}  # one stream per container
        # each line dated by the kubelet's timestamp, not when it was shipped
        stamps = [t for t, _ in cluster.written[f"kube-ok-w{rank}"]]
        assert [_utc(x["date"]) for x in mine] == [_utc(t) for t in stamps]
    # setup made the Secret (the run's worker token) and the headless Service; the
    # succeeded pods were deleted; teardown removed Secret and Service
    secret = cluster.requests_to("POST", f"/api/v1/namespaces/{NAMESPACE}/secrets")
    assert len(secret) == 1
    assert ("secrets", f"mlbench-run-{run['id']}-token") in cluster.deleted
    assert ("services", f"mlbench-run-{run['id']}") in cluster.deleted
    assert {("pods", "kube-ok-w0"), ("pods", "kube-ok-w1")} <= set(cluster.deleted)
    assert cluster.pods == {} and cluster.objects == {}


def test_a_crashed_rank_fails_the_run_with_its_last_lines(client, cluster):
    run = client.create_run("kube-oom", 2, benchmark="digits", job_id="external-dag-run")
    cluster.scripts["kube-oom-w0"] = Script(["rank 0: epoch 1", "rank 0: epoch 2"])
    cluster.scripts["kube-oom-w1"] = Script(
        ["rank 1: epoch 1", *TRACEBACK], exit_code=137, reason="OOMKilled"
    )
    dag_run = load_dag().test(run_conf=dag_conf(run))
    assert dag_run.state == "failed"
    done = client.get_run(run["id"])
    assert done["state"] == "FAILED"
    failure = done["job_metadata"]["failure"]
    assert failure.startswith(
        "rank 1 failed: exit code 137 (OOMKilled); the other ranks were stopped. Its last lines:"
    )
    assert failure.endswith("\n".join(TRACEBACK))
    got = logged(client, run["id"])
    rank1 = [(stream, line) for r, stream, line in got if r == 1]
    assert rank1 == [
        ("stdout", "rank 1: epoch 1"),
        *(("stdout", line) for line in TRACEBACK),
        ("stderr", "[mlbench] container terminated: exit code 137 (OOMKilled)"),
    ]
    # the failed pod stays for kubectl logs until the teardown removes the run's pods
    assert ("pods", "kube-oom-w1") in cluster.deleted and cluster.pods == {}
    patched = cluster.requests_to("PATCH", f"/api/v1/namespaces/{NAMESPACE}/pods/kube-oom-w1")
    assert patched  # marked already_checked by the operator, as on a real cluster


def test_the_pods_are_the_manifests_the_backend_renders(client, cluster):
    run = client.create_run("kube-spec", 1, benchmark="digits", max_bandwidth=50,
                            job_id="external-dag-run")  # fmt: skip
    assert load_dag().test(run_conf=dag_conf(run)).state == "success"
    [pod] = cluster.created
    done = client.get_run(run["id"])
    expected = k8s.pod_kwargs(done, get_settings())[0]
    container = pod["spec"]["containers"][0]
    assert container["command"] + container["args"] == worker_command(done)
    assert container["args"] == expected["arguments"]
    assert pod["metadata"]["annotations"] == {
        "kubernetes.io/ingress-bandwidth": "50M",
        "kubernetes.io/egress-bandwidth": "50M",
    }
    assert pod["spec"]["hostname"] == "kube-spec-w0"
    assert pod["spec"]["subdomain"] == f"mlbench-run-{run['id']}"
    assert container["resources"]["limits"]["cpu"] == "1000m"
    assert done["job_metadata"]["limits"]["bandwidth"]["status"] == "requested"


def test_a_reattached_operator_ships_only_the_lines_the_run_lacks(client, cluster):
    """A ranks task reset after its scheduler was lost reattaches to the pod its first try
    started (``reattach_on_restart``, left on) and reads the pod's stream from the start:
    the lines the first try shipped are not shipped again."""
    from kubernetes.client import (
        V1ContainerState,
        V1ContainerStateTerminated,
        V1ContainerStatus,
        V1ObjectMeta,
        V1Pod,
        V1PodStatus,
    )

    from mlbench_airflow.pod_logs import ShipPodLogs

    assert k8s.POD_DEFAULTS.get("reattach_on_restart", True) is True
    run = client.create_run("kube-again", 1, benchmark="digits", job_id="external-dag-run")
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    stream = [(start.replace(second=i), f"rank 0: line {i}") for i in range(6)]
    # the first try shipped three lines before it was lost
    client.post_logs(run["id"], [{"rank": 0, "line": line, "date": date.isoformat()}
                                 for date, line in stream[:3]])  # fmt: skip
    meta = V1ObjectMeta(name="kube-again-w0", namespace=NAMESPACE,
                        labels={"run": str(run["id"]), "rank": "0"})  # fmt: skip
    for date, line in stream:  # the second try reads the whole stream
        ShipPodLogs.progress_callback(line=line, timestamp=date, pod=V1Pod(metadata=meta))
    done = V1ContainerStatus(
        name="base", image="x", image_id="", ready=False, restart_count=0,
        state=V1ContainerState(terminated=V1ContainerStateTerminated(exit_code=0)),
    )  # fmt: skip
    ShipPodLogs.on_pod_completion(
        pod=V1Pod(metadata=meta, status=V1PodStatus(container_statuses=[done])), client=None
    )
    assert [line for _, _, line in logged(client, run["id"])] == [line for _, line in stream]
