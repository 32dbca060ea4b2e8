"""A client written to the seed's examples (component-overview), unchanged, against
``/mlbench/api/`` over real HTTP with ``MLBENCH_AUTH=none`` (seed clients send no token)."""

from __future__ import annotations

import pytest
import requests

ACCEPT = {"Accept": "application/json, text/javascript"}


class SeedClient:
    """What the seed documents: plain requests, forms or JSON, no auth."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/") + "/api"

    def pods(self) -> list:
        return requests.get(f"{self.base}/pods", headers=ACCEPT, timeout=30).json()

    def metrics(self) -> dict:
        return requests.get(f"{self.base}/metrics", headers=ACCEPT, timeout=30).json()

    def pod_metrics(self, name: str, since: str) -> dict:
        url = f"{self.base}/metrics/{name}/"
        return requests.get(url, params={"since": since}, headers=ACCEPT, timeout=30).json()

    def run_metrics(self, run_id: int) -> dict:
        url = f"{self.base}/metrics/{run_id}/"
        return requests.get(url, params={"metric_type": "run"}, headers=ACCEPT, timeout=30).json()

    def post_metric(self, body: dict) -> requests.Response:
        return requests.post(f"{self.base}/metrics", data=body, headers=ACCEPT, timeout=30)

    def runs(self) -> list:
        return requests.get(f"{self.base}/runs/", headers=ACCEPT, timeout=30).json()

    def run(self, run_id: int) -> dict:
        return requests.get(f"{self.base}/runs/{run_id}/", headers=ACCEPT, timeout=30).json()

    def start_run(self, body: dict) -> requests.Response:
        return requests.post(f"{self.base}/runs/", json=body, headers=ACCEPT, timeout=60)


@pytest.fixture
def seed(live_server, store, settings_env) -> SeedClient:  # noqa: ANN001
    settings_env.setenv("MLBENCH_AUTH", "none")
    return SeedClient(f"{live_server}/mlbench")


def test_seed_examples_work_unchanged(seed, live_server):
    response = seed.start_run(
        {"name": "name-of-the-run", "num_workers": 2, "num_cpus": 1, "max_bandwidth": 1000}
    )
    assert response.status_code in (200, 201), response.text
    run = response.json()
    assert {"id", "name", "created_at", "state", "job_id", "job_metadata"} <= set(run)
    assert run["state"] in ("INITIALIZED", "STARTED")
    assert seed.runs()[0]["id"] == run["id"]
    assert seed.run(run["id"])["name"] == "name-of-the-run"

    # The DAG task registers the run's pods (PUT is beyond the seed).
    requests.put(
        f"{live_server}/mlbench/api/pods/quiet-mink-mlbench-worker-1",
        json={"run_id": run["id"], "rank": 1, "phase": "Running", "ip": "10.244.2.58"},
        timeout=30,
    ).raise_for_status()
    pods = seed.pods()
    assert [(p["name"], p["phase"], p["ip"]) for p in pods] == [
        ("quiet-mink-mlbench-worker-1", "Running", "10.244.2.58")
    ]
    assert "labels" in pods[0]

    # The seed's metric example, form-encoded as the original client posts it
    # (pod_name and run_id are mutually exclusive: the pod variant).
    response = seed.post_metric(
        {
            "pod_name": "quiet-mink-mlbench-worker-1",
            "name": "accuracy",
            "date": "2018-08-03T09:21:44.331823Z",
            "value": "0.7845",
            "cumulative": "False",
            "metadata": "some additional data",
        }
    )
    assert response.status_code == 201, response.text
    assert response.json()["pod_name"] == "quiet-mink-mlbench-worker-1"
    assert float(response.json()["value"]) == 0.7845
    seed.post_metric(
        {"run_id": run["id"], "name": "train_loss", "value": "2.3", "cumulative": "False"}
    )

    everything = seed.metrics()
    point = everything["quiet-mink-mlbench-worker-1"]["accuracy"][0]
    assert point["date"] == "2018-08-03T09:21:44.331823Z" and float(point["value"]) == 0.7845
    assert seed.pod_metrics("quiet-mink-mlbench-worker-1", "1970-01-01T00:00:00.000000Z") == {
        "accuracy": [point]
    }
    assert seed.pod_metrics("quiet-mink-mlbench-worker-1", "2019-01-01T00:00:00.000000Z") == {}
    assert float(seed.run_metrics(run["id"])["train_loss"][0]["value"]) == 2.3
