"""The dashboard served by the plugin beside the API, in Airflow's own app (no browser)."""

from __future__ import annotations

import io
import zipfile

import requests

from tests.dashboard.data import seed_run


def test_the_dashboard_answers_beside_the_api(live_server, api):
    page = requests.get(f"{live_server}/mlbench/", timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/mlbench/_dash-component-suites/" in page.text
    assert requests.get(f"{live_server}/mlbench/runs/3", timeout=30).status_code == 200


def test_api_paths_stay_the_apis(live_server, api):
    missing = requests.get(f"{live_server}/mlbench/api/nothing-here", timeout=30)
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
    wrong_method = requests.delete(f"{live_server}/mlbench/api/pods", timeout=30)
    assert wrong_method.status_code == 405


def test_downloads_use_the_logged_in_users_token(live_server, api, admin_token):
    run = seed_run(api, "dl-run", workers=1, epochs=2)
    base = f"{live_server}/mlbench/download/runs/{run['id']}"
    cookies = {"_token": admin_token}

    archive = requests.get(f"{base}/metrics.zip", cookies=cookies, timeout=30)
    assert archive.status_code == 200
    assert "attachment" in archive.headers["content-disposition"]
    files = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert "result.json" in files and "train_loss.json" in files

    # The original server's layout holds the points of the run's lifetime.
    api.post_metric("extra", 1.0, run_id=run["id"], date=run["created_at"])
    api.post_metric("cpu", 0.5, pod_name="dl-run-w0", date=run["finished_at"])
    original = requests.get(f"{base}/metrics-results.zip", cookies=cookies, timeout=30)
    assert original.status_code == 200
    assert original.headers["content-disposition"] == "attachment; filename=metrics_dl-run.zip"
    files = zipfile.ZipFile(io.BytesIO(original.content)).namelist()
    assert files == ["result_extra.json", "dl-run-w0_cpu.json"]

    metrics = requests.get(f"{base}/metrics.json", cookies=cookies, timeout=30)
    assert len(metrics.json()["train_loss"]) == 20

    resources = requests.get(f"{base}/resources.json", cookies=cookies, timeout=30).json()
    assert set(resources) == {"dl-run-w0"}
    assert "container_cpu_usage_seconds_total" in resources["dl-run-w0"]


def test_a_download_without_login_says_so(live_server, api):
    answer = requests.get(f"{live_server}/mlbench/download/runs/1/metrics.zip", timeout=30)
    assert answer.status_code == 401
    assert answer.text.startswith("Not logged in") and "Traceback" not in answer.text
