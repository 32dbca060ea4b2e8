"""Authentication: Airflow JWTs, per-run worker tokens, and MLBENCH_AUTH=none."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

ROUTES = [
    ("GET", "/api/pods"),
    ("PUT", "/api/pods/{name}"),
    ("GET", "/api/metrics"),
    ("GET", "/api/metrics/{pod_name_or_run_id}"),
    ("POST", "/api/metrics"),
    ("POST", "/api/metrics/batch"),
    ("GET", "/api/runs"),
    ("GET", "/api/runs/{run_id}"),
    ("POST", "/api/runs"),
    ("POST", "/api/runs/reconcile"),
    ("PATCH", "/api/runs/{run_id}"),
    ("DELETE", "/api/runs/{run_id}"),
    ("POST", "/api/runs/{run_id}/token"),
    ("POST", "/api/runs/{run_id}/admit"),
    ("POST", "/api/runs/{run_id}/stop"),
    ("PUT", "/api/runs/{run_id}/result"),
    ("PUT", "/api/runs/{run_id}/record"),
    ("POST", "/api/runs/{run_id}/logs"),
    ("GET", "/api/runs/{run_id}/logs"),
    ("GET", "/api/benchmarks"),
    ("GET", "/api/backend"),
    ("GET", "/api/nightly"),
    ("GET", "/api/nightly/{date}"),
    ("PUT", "/api/nightly/{date}"),
]


def concrete(path: str) -> str:
    return path.format(run_id=1, name="p", pod_name_or_run_id="p", date="2026-11-23")


def test_every_api_route_is_listed_here(airflow_app):
    from mlbench_api.app import create_app

    served = {
        (method, route.path)
        for route in create_app().routes
        if getattr(route, "include_in_schema", False) and route.path.startswith("/api")
        for method in route.methods
    }
    assert served == set(ROUTES)


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_a_token(anonymous, method, path):
    for spelling in (concrete(path), concrete(path) + "/"):
        response = anonymous.request(method, spelling, json={})
        assert response.status_code == 401, (spelling, response.text)


@pytest.mark.parametrize("token", ["garbage", "mlbw_1_forged"])
def test_bad_tokens_are_refused(anonymous, token):
    response = anonymous.get("/api/runs/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (401, 403)


def test_the_airflow_ui_cookie_is_accepted(airflow_app, admin_token, store):
    with TestClient(airflow_app, base_url="http://testserver/mlbench") as client:
        client.cookies.set("_token", admin_token)
        assert client.get("/api/runs/").status_code == 200


def test_auth_none_opens_every_route(anonymous, settings_env, make_run):
    settings_env.setenv("MLBENCH_AUTH", "none")
    assert anonymous.get("/api/runs/").status_code == 200
    response = anonymous.post("/api/runs/", json={"name": "open", "num_workers": 1})
    assert response.status_code == 201


def test_auth_none_logs_a_warning(settings_env, caplog):
    from mlbench_api.app import create_app

    settings_env.setenv("MLBENCH_AUTH", "none")
    with caplog.at_level(logging.WARNING):
        create_app()
    assert "authentication is OFF" in caplog.text


def test_worker_token_writes_only_for_its_run(api, make_run, worker_client):
    mine, other = make_run("mine"), make_run("other")
    api.put("/api/pods/other-0", json={"run_id": other["id"]})
    worker = worker_client(mine["id"])
    # Allowed: its run's metrics, its pods, batches of both.
    assert worker.put("/api/pods/mine-0", json={"run_id": mine["id"], "rank": 0}).status_code == 200
    assert worker.put("/api/pods/mine-0", json={"phase": "Running"}).status_code == 200
    ok = [
        {"run_id": mine["id"], "name": "loss", "value": 1},
        {"pod_name": "mine-0", "name": "cpu", "value": 2},
    ]
    assert worker.post("/api/metrics", json=ok[0]).status_code == 201
    assert worker.post("/api/metrics/batch", json=ok).status_code == 201
    line = {"lines": [{"rank": 0, "line": "hello"}]}
    assert worker.post(f"/api/runs/{mine['id']}/logs", json=line).status_code == 201
    result = {"result": {"time_to_target_s": 1.0}}
    assert worker.put(f"/api/runs/{mine['id']}/result", json=result).status_code == 200
    record = {"record": {"seed": 0}}
    assert worker.put(f"/api/runs/{mine['id']}/record", json=record).status_code == 200
    # Refused: another run's metrics or pods, and every non-writing route.
    assert (
        worker.post(
            "/api/metrics", json={"run_id": other["id"], "name": "x", "value": 1}
        ).status_code
        == 403
    )
    assert (
        worker.post(
            "/api/metrics", json={"pod_name": "other-0", "name": "x", "value": 1}
        ).status_code
        == 403
    )
    assert (
        worker.post(
            "/api/metrics/batch", json=[ok[0], {"run_id": other["id"], "name": "x", "value": 1}]
        ).status_code
        == 403
    )
    assert worker.put("/api/pods/other-0", json={"phase": "Failed"}).status_code == 403
    assert worker.put("/api/pods/stray", json={}).status_code == 403
    assert worker.post(f"/api/runs/{other['id']}/logs", json=line).status_code == 403
    assert worker.put(f"/api/runs/{other['id']}/result", json=result).status_code == 403
    assert worker.put(f"/api/runs/{other['id']}/record", json=record).status_code == 403
    assert worker.get(f"/api/runs/{mine['id']}/logs").status_code == 403
    assert worker.put("/api/pods/other-0", json={"run_id": mine["id"]}).status_code == 403
    for method, path in [
        ("GET", "/api/runs/"),
        ("GET", "/api/metrics/"),
        ("POST", f"/api/runs/{mine['id']}/token"),
        ("DELETE", f"/api/runs/{mine['id']}"),
        ("PATCH", f"/api/runs/{mine['id']}"),
    ]:
        assert worker.request(method, path, json={}).status_code == 403, (method, path)
    assert api.get(f"/api/pods/?run_id={other['id']}").json()[0]["phase"] == "Pending"
    assert len(api.get(f"/api/metrics/{other['id']}?metric_type=run").json()) == 0


def test_worker_token_is_never_listed_and_is_revoked(api, make_run, worker_client):
    run = make_run()
    old = worker_client(run["id"])
    assert "token" not in str(api.get("/api/runs/").json()).lower().replace("token_", "")
    new = worker_client(run["id"])
    metric = {"run_id": run["id"], "name": "loss", "value": 1}
    assert old.post("/api/metrics", json=metric).status_code == 401
    assert new.post("/api/metrics", json=metric).status_code == 201
    api.post(f"/api/runs/{run['id']}/stop")
    assert new.post("/api/metrics", json=metric).status_code == 401


def test_a_finished_runs_token_writes_nothing(api, make_run, worker_client):
    run = make_run("done")
    worker = worker_client(run["id"])
    api.put("/api/pods/done-w0", json={"run_id": run["id"], "rank": 0})
    for state in ("STARTED", "FINISHED"):
        assert api.patch(f"/api/runs/{run['id']}", json={"state": state}).status_code == 200
    writes = [
        ("PUT", f"/api/runs/{run['id']}/result", {"result": {"forged": True}}),
        ("PUT", f"/api/runs/{run['id']}/record", {"record": {"seed": 1}}),
        ("POST", "/api/metrics", {"run_id": run["id"], "name": "loss", "value": 1}),
        ("POST", "/api/metrics/batch", [{"run_id": run["id"], "name": "loss", "value": 1}]),
        ("POST", f"/api/runs/{run['id']}/logs", {"lines": [{"rank": 0, "line": "late"}]}),
        ("PUT", "/api/pods/done-w0", {"phase": "Failed"}),
    ]
    for method, path, body in writes:
        answer = worker.request(method, path, json=body)
        assert answer.status_code == 403, (method, path, answer.text)
        assert f"run {run['id']} is FINISHED" in answer.text
    stored = api.get(f"/api/runs/{run['id']}").json()
    assert stored["result"] is None and stored["record"] is None
    assert api.get(f"/api/pods/?run_id={run['id']}").json()[0]["phase"] == "Pending"


def test_a_pod_belongs_to_one_run_for_good(api, make_run):
    first, second = make_run("first"), make_run("second")
    assert api.put("/api/pods/p-w0", json={"run_id": first["id"]}).status_code == 200
    answer = api.put("/api/pods/p-w0", json={"run_id": second["id"]})
    assert answer.status_code == 409 and f"belongs to run {first['id']}" in answer.text
    again = api.put("/api/pods/p-w0", json={"run_id": first["id"], "phase": "Running"})
    assert again.status_code == 200
    assert api.delete(f"/api/runs/{second['id']}").status_code == 204
    assert [p["name"] for p in api.get(f"/api/pods/?run_id={first['id']}").json()] == ["p-w0"]
