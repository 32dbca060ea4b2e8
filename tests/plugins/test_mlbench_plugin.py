"""The plugin loaded by a real ``airflow api-server`` process, answering on a free port."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests

from harness.environment import ADMIN, VENV_BIN
from harness.processes import Service
from harness.server import free_port
from mlbench_core.api import ApiClient
from mlbench_core.run_fields import dag_conf


@pytest.fixture(scope="module")
def api_server(airflow_db, tmp_path_factory) -> Iterator[str]:  # noqa: ANN001
    home = tmp_path_factory.mktemp("api-server")
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW__API__WORKERS": "1",
        "MLBENCH_DATABASE_URL": f"sqlite:///{home / 'mlbench.db'}",
    }
    service = Service(
        [str(VENV_BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        log=home / "api-server.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        service.wait_http(f"{url}/api/v2/monitor/health")
        yield url
    finally:
        service.stop()


@pytest.fixture(scope="module")
def session(api_server) -> requests.Session:  # noqa: ANN001
    with ApiClient.login(f"{api_server}/mlbench", *ADMIN) as admin:
        token = admin.token
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def test_plugin_serves_the_api_at_mlbench(api_server, session):
    assert requests.get(f"{api_server}/mlbench/api/runs/", timeout=30).status_code == 401
    assert session.get(f"{api_server}/mlbench/api/runs/", timeout=30).json() == []
    response = session.post(
        f"{api_server}/mlbench/api/runs/", json={"name": "live", "num_workers": 2}, timeout=60
    )
    assert response.status_code == 201, response.text
    run = response.json()
    dag_run = session.get(
        f"{api_server}/api/v2/dags/mlbench_run/dagRuns/{run['job_id']}", timeout=30
    ).json()
    assert dag_run["conf"] == dag_conf(run)
    response = session.post(
        f"{api_server}/mlbench/api/metrics",
        data={"run_id": run["id"], "name": "loss", "value": "0.5"},
        timeout=30,
    )
    assert response.status_code == 201
    loss = session.get(f"{api_server}/mlbench/api/metrics/{run['id']}/?metric_type=run").json()
    assert [p["value"] for p in loss["loss"]] == [0.5]


def test_airflow_own_api_is_not_hidden(api_server, session):
    assert session.get(f"{api_server}/api/v2/version", timeout=30).status_code == 200
    plugins = session.get(f"{api_server}/api/v2/plugins", timeout=30).json()["plugins"]
    mlbench = next(p for p in plugins if p["name"] == "mlbench")
    assert mlbench["fastapi_apps"][0]["url_prefix"] == "/mlbench"


def test_openapi_schema_is_served(api_server):
    schema = requests.get(f"{api_server}/mlbench/openapi.json", timeout=30).json()
    assert {"/api/runs", "/api/metrics/batch", "/api/pods/{name}"} <= set(schema["paths"])
    body = schema["paths"]["/api/runs"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json"}  # forms are read, but documented as JSON
    responses = schema["paths"]["/api/runs/{run_id}"]["get"]["responses"]
    assert {"200", "401", "403", "404", "422", "503"} <= set(responses)
