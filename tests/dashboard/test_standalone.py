"""``mlbench dashboard --api URL``: the dashboard on its own web server, in its own process."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile

import pytest
import requests

from harness.environment import VENV_BIN
from harness.processes import Service
from harness.server import free_port
from tests.dashboard.browser import wait_for_text
from tests.dashboard.data import seed_run


@pytest.fixture
def standalone(api_url, admin_token, tmp_path):
    port = free_port()
    args = [str(VENV_BIN / "mlbench"), "dashboard", "--api", api_url, "--token", admin_token,
            "--port", str(port)]  # fmt: skip
    service = Service(args, env=os.environ.copy(), log=tmp_path / "dashboard.log")
    try:
        service.wait_http(f"http://127.0.0.1:{port}/", timeout=90)
        yield f"http://127.0.0.1:{port}"
    finally:
        service.stop()


def test_standalone_dashboard_uses_its_token(standalone, api, browser):
    run = seed_run(api, "solo-run", workers=1, epochs=2)
    archive = requests.get(f"{standalone}/download/runs/{run['id']}/metrics.zip", timeout=30)
    assert archive.status_code == 200
    assert "result.json" in zipfile.ZipFile(io.BytesIO(archive.content)).namelist()

    browser.driver.delete_all_cookies()
    browser.wait_for_page(f"{standalone}/runs", timeout=30)
    wait_for_text(browser, "#runs-table", "solo-run")


def test_standalone_dashboard_refuses_to_start_with_a_bad_token(api_url, api):
    done = subprocess.run(
        [str(VENV_BIN / "mlbench"), "dashboard", "--api", api_url, "--token", "not-a-jwt"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert done.returncode == 1
    assert done.stderr.startswith("mlbench: error: the API refused the credentials")
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_token_comes_from_the_flag_then_the_settings_then_a_login(settings_env):
    from mlbench_core.cli.dashboard_cmd import StackLogin, token_provider
    from mlbench_core.settings import get_settings

    settings_env.setenv("MLBENCH_API_TOKEN", "from-env")
    assert token_provider(get_settings(), "http://x/mlbench", "from-flag")() == "from-flag"
    assert token_provider(get_settings(), "http://x/mlbench", None)() == "from-env"
    settings_env.delenv("MLBENCH_API_TOKEN")
    assert isinstance(token_provider(get_settings(), "http://x/mlbench", None), StackLogin)
    settings_env.setenv("MLBENCH_AUTH", "none")
    assert token_provider(get_settings(), "http://x/mlbench", None)() is None
