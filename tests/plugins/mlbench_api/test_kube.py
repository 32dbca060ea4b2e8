"""Worker pods from the Kubernetes API: the real ``kubernetes`` client against a stand-in API
server answering with recorded responses (in-cluster and kubeconfig configuration, the
cache, errors), and ``GET /api/pods/`` merging them with the store."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from mlbench_api import kube
from mlbench_core.api.schemas import PodOut
from tests.kubeapi import TOKEN, FakeKubeApi, recorded, self_signed, write_kubeconfig

NAMESPACE = "bench"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cluster(tmp_path):
    with FakeKubeApi() as api:
        api.answer(PODS, recorded("pods-first"))
        api.kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url, NAMESPACE)
        yield api


def lister(cluster, ttl=5.0, clock=None) -> kube.PodLister:
    account = cluster.kubeconfig.parent / "no-service-account"
    return kube.PodLister(
        NAMESPACE, ttl, lambda: kube.load_api(cluster.kubeconfig, account), clock=clock or Clock()
    )


def test_lists_worker_pods_with_phase_ip_node_and_run(cluster):
    snapshot = lister(cluster).snapshot()
    assert snapshot.error is None
    pods = snapshot.pods
    assert sorted(pods) == [
        "diverged-w0",
        "other-w0",
        "resnet-4w-w0",
        "resnet-4w-w1",
        "resnet-4w-w2",
        "resnet-4w-w3",
    ]
    running = pods["resnet-4w-w0"]
    assert (running.run_id, running.rank, running.phase, running.ip, running.node) == (
        7,
        0,
        "Running",
        "10.244.1.12",
        "worker-a",
    )
    assert running.created_at == datetime(2026, 11, 20, 10, 2, 14, tzinfo=UTC)
    assert running.label_map["component"] == "worker"
    assert running.labels == str(running.label_map)  # the text of the dict, as the original's
    assert running.labels.startswith("{'app': 'mlbench', 'component': 'worker', 'run': '7'")
    # pending: pulling its image on a node, or not scheduled anywhere yet
    assert (pods["resnet-4w-w2"].phase, pods["resnet-4w-w2"].ip, pods["resnet-4w-w2"].node) == (
        "Pending",
        None,
        "worker-b",
    )
    assert (pods["resnet-4w-w3"].phase, pods["resnet-4w-w3"].node) == ("Pending", None)
    assert (pods["diverged-w0"].phase, pods["diverged-w0"].run_id) == ("Failed", 8)
    (request,) = cluster.requests_to(PODS)
    assert request.query["labelSelector"] == ["app=mlbench,component=worker"]
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


def test_one_listing_per_period(cluster):
    clock = Clock()
    pods = lister(cluster, ttl=5, clock=clock)
    for _ in range(5):
        pods.snapshot()
    clock.now += 4.9
    pods.snapshot()
    assert len(cluster.requests_to(PODS)) == 1
    clock.now += 0.2
    cluster.answer(PODS, recorded("pods-later"))
    assert pods.snapshot().pods["resnet-4w-w0"].phase == "Succeeded"
    assert len(cluster.requests_to(PODS)) == 2


def test_concurrent_requests_share_one_listing(cluster):
    pods = lister(cluster)
    results = []
    threads = [threading.Thread(target=lambda: results.append(pods.snapshot())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len({id(r) for r in results}) == 1
    assert len(cluster.requests_to(PODS)) == 1


def test_refused_listing_is_an_error_and_is_cached_too(cluster):
    cluster.answer(PODS, recorded("status-forbidden"), status=403)
    clock = Clock()
    pods = lister(cluster, clock=clock)
    snapshot = pods.snapshot()
    assert snapshot.pods is None and snapshot.error.startswith("403 Forbidden")
    pods.snapshot()
    assert len(cluster.requests_to(PODS)) == 1
    cluster.answer(PODS, recorded("pods-empty"))
    clock.now += 10
    assert pods.snapshot().pods == {}


def test_unreachable_api_server(tmp_path):
    with FakeKubeApi() as api:
        url = api.url  # then closed: nothing listens there
    config = write_kubeconfig(tmp_path / "kubeconfig", url)
    pods = kube.PodLister(NAMESPACE, 5, lambda: kube.load_api(config, tmp_path / "none"))
    snapshot = pods.snapshot()
    assert snapshot.pods is None and snapshot.error


def test_no_configuration_at_all(tmp_path):
    with pytest.raises(kube.ClusterUnavailable, match="no kubeconfig"):
        kube.load_api(tmp_path / "missing-kubeconfig", tmp_path / "none")


def test_in_cluster_service_account_over_tls(tmp_path, monkeypatch):
    cert, key = self_signed(tmp_path)
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("in-cluster-token")
    (account / "ca.crt").write_bytes(cert.read_bytes())
    with FakeKubeApi(tls=(cert, key)) as api:
        api.answer(PODS, recorded("pods-first"))
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(api.port))
        pods = kube.PodLister(NAMESPACE, 5, lambda: kube.load_api(None, account))
        snapshot = pods.snapshot()
    assert snapshot.error is None and len(snapshot.pods) == 6
    # (the client writes "bearer" in lower case there; API servers take either)
    assert api.requests_to(PODS)[0].headers["authorization"].lower() == "bearer in-cluster-token"


def stored(name: str, phase: str, run_id: int = 7, rank: int = 0) -> PodOut:
    at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    return PodOut(name=name, run_id=run_id, rank=rank, phase=phase, created_at=at, updated_at=at)


@pytest.mark.parametrize(
    ("phase", "seen", "state", "expected"),
    [
        ("Pending", None, "STARTED", "Pending"),  # registered, not created yet
        ("Pending", "Running", "STARTED", "Unknown"),  # was running, then gone
        ("Pending", "Succeeded", "STARTED", "Succeeded"),  # completed, then deleted
        ("Pending", None, "FINISHED", "Succeeded"),  # FINISHED: every pod succeeded
        ("Failed", None, "FAILED", "Failed"),  # finalize recorded it
        ("Pending", None, "CANCELLED", "Unknown"),
        ("Running", None, "STARTED", "Unknown"),
        ("Pending", None, None, "Unknown"),
    ],
)
def test_phase_of_a_pod_gone_from_the_cluster(phase, seen, state, expected):
    assert kube.gone_phase(stored("p", phase), seen, state) == expected


def test_merge_keeps_every_stored_pod_and_adds_the_clusters_own():
    at = datetime.now(UTC)
    live = stored("a-w0", "Running").model_copy(update={"ip": "10.0.0.1", "node": "n1"})
    extra = stored("x-w0", "Running", run_id=9)
    snapshot = kube.Snapshot(
        at=at,
        pods={"a-w0": live, "x-w0": extra},
        seen={("a-w1", 7): "Running", ("a-w0", 6): "Succeeded"},
    )
    merged = kube.merge(
        [stored("a-w0", "Pending"), stored("a-w1", "Pending", rank=1)], snapshot, {7: "STARTED"}
    )
    assert [(p.name, p.phase, p.ip) for p in merged] == [
        ("a-w0", "Running", "10.0.0.1"),
        ("a-w1", "Unknown", None),
        ("x-w0", "Running", None),
    ]
    assert merged[0].updated_at == at
    only_7 = kube.merge([stored("a-w0", "Pending")], snapshot, {7: "STARTED"}, run_id=7)
    assert [p.name for p in only_7] == ["a-w0"]
    failed = kube.Snapshot(at=at, error="403 Forbidden")
    assert kube.merge([stored("a-w0", "Pending")], failed, {}) == [stored("a-w0", "Pending")]


# -- through the API ---------------------------------------------------------------------


@pytest.fixture
def kube_backend(cluster, settings_env, store):
    settings_env.setenv("MLBENCH_BACKEND", "kubernetes")
    settings_env.setenv("MLBENCH_NAMESPACE", NAMESPACE)
    settings_env.setenv("MLBENCH_KUBECONFIG", str(cluster.kubeconfig))
    settings_env.setenv("MLBENCH_POD_CACHE_SECONDS", "0")
    kube.reset_lister()
    yield cluster
    kube.reset_lister()


def register(api, run: dict, ranks: int) -> None:
    """What the DAG's prepare task does: one Pending pod per rank."""
    for rank in range(ranks):
        name = f"{run['name']}-w{rank}"
        labels = {"app": "mlbench", "component": "worker", "run": str(run["id"]), "rank": str(rank)}
        body = {"run_id": run["id"], "rank": rank, "phase": "Pending", "labels": labels}
        assert api.put(f"/api/pods/{name}", json=body).status_code == 200


def phases(response) -> dict[str, tuple]:
    return {
        p["name"]: (p["run_id"], p["rank"], p["phase"], p["ip"], p["node"]) for p in response.json()
    }


def relabel(answer: dict, runs: dict[str, int]) -> dict:
    """The recorded pods with their ``run`` labels renamed to this store's run ids."""
    for item in answer["items"]:
        labels = item["metadata"]["labels"]
        labels["run"] = str(runs.get(labels["run"], labels["run"]))
    return answer


def test_api_lists_pods_pending_running_failed_and_gone(api, make_run, kube_backend):
    resnet, diverged = make_run("resnet-4w", num_workers=4), make_run("diverged", num_workers=1)
    runs = {"7": resnet["id"], "8": diverged["id"]}  # the recorded pods' runs
    kube_backend.answer(PODS, relabel(recorded("pods-first"), runs))
    register(api, resnet, 4)
    register(api, diverged, 1)
    response = api.get("/api/pods/")
    assert response.status_code == 200 and response.headers["X-Mlbench-Pods-Source"] == "cluster"
    r, d = resnet["id"], diverged["id"]
    assert phases(response) == {
        "resnet-4w-w0": (r, 0, "Running", "10.244.1.12", "worker-a"),
        "resnet-4w-w1": (r, 1, "Running", "10.244.2.7", "worker-b"),
        "resnet-4w-w2": (r, 2, "Pending", None, "worker-b"),  # pulling its image
        "resnet-4w-w3": (r, 3, "Pending", None, None),  # unschedulable
        "diverged-w0": (d, 0, "Failed", "10.244.1.9", "worker-a"),
        "other-w0": (9, 0, "Running", "10.244.3.4", "worker-c"),  # not in the store
    }
    assert [p["name"] for p in api.get(f"/api/pods/?run_id={d}").json()] == ["diverged-w0"]
    listed = {p["name"]: p for p in response.json()}
    w0 = listed["resnet-4w-w0"]  # the cluster's labels win over the registered ones
    assert w0["label_map"]["dag_id"] == "mlbench_run" and w0["labels"] == str(w0["label_map"])
    assert listed["other-w0"]["label_map"]["component"] == "worker"  # the cluster's only

    # later: rank 0 completed, rank 1 gone with its node, the failed pod deleted by teardown
    kube_backend.answer(PODS, relabel(recorded("pods-later"), runs))
    now = phases(api.get("/api/pods/"))
    assert now["resnet-4w-w0"][2] == "Succeeded"
    assert now["resnet-4w-w1"] == (r, 1, "Unknown", None, None)
    assert now["resnet-4w-w3"] == (r, 3, "Running", "10.244.3.5", "worker-c")
    assert now["diverged-w0"] == (d, 0, "Failed", None, None)
    assert len(now) == 6

    # and once the cluster has none of them
    kube_backend.answer(PODS, recorded("pods-empty"))
    gone = phases(api.get("/api/pods/"))
    assert {name: v[2] for name, v in gone.items()} == {
        "resnet-4w-w0": "Succeeded",
        "resnet-4w-w1": "Unknown",
        "resnet-4w-w2": "Unknown",
        "resnet-4w-w3": "Unknown",
        "diverged-w0": "Failed",
    }


def test_api_answers_the_stores_pods_when_the_cluster_refuses(api, make_run, kube_backend):
    run = make_run("resnet-4w", num_workers=1)
    register(api, run, 1)
    kube_backend.answer(PODS, recorded("status-forbidden"), status=403)
    response = api.get("/api/pods/")
    assert response.status_code == 200
    assert response.headers["X-Mlbench-Pods-Source"] == "store"
    assert phases(response) == {"resnet-4w-w0": (run["id"], 0, "Pending", None, None)}


def test_local_backend_never_asks_the_cluster(api, make_run, cluster, settings_env):
    settings_env.setenv("MLBENCH_KUBECONFIG", str(cluster.kubeconfig))
    kube.reset_lister()
    run = make_run("local", num_workers=1)
    register(api, run, 1)
    response = api.get("/api/pods/")
    assert "X-Mlbench-Pods-Source" not in response.headers
    assert cluster.requests == []


def test_a_name_seen_with_an_earlier_run_says_nothing_of_the_new_one():
    at = datetime.now(UTC)
    snapshot = kube.Snapshot(at=at, pods={}, seen={("a-w0", 6): "Succeeded"})
    (pod,) = kube.merge([stored("a-w0", "Pending", run_id=7)], snapshot, {7: "STARTED"})
    assert pod.phase == "Pending"  # run 7's pod is not created yet
