"""Fixtures of the dashboard tests: the real API (Airflow's app with the plugin, served by
uvicorn) on a clean SQLite store, an admin client, and headless Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlbench_core.api import ApiClient
from tests.conftest import _require_service

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def store_url(tmp_path) -> str:
    """The dashboard only talks to the API: SQLite is enough (the API tests cover PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'mlbench.db'}"


@pytest.fixture
def api_url(live_server) -> str:
    return f"{live_server}/mlbench"


@pytest.fixture
def api(api_url, admin_token, store, settings_env) -> Iterator[ApiClient]:
    """The live API as the Airflow admin, on a clean store, on a machine that gives runs 64
    CPUs (pages show runs of any size)."""
    settings_env.setenv("MLBENCH_CPU_CAPACITY", "64")
    with ApiClient(api_url, token=admin_token) as client:
        yield client


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """Debian's chromium and chromedriver (``make test`` installs them): skipped when missing,
    failed under CI=true."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        _require_service("chromium and chromedriver are not installed (apt-get install chromium "
                         "chromium-driver; `make test` does it)")  # fmt: skip
    return browser, driver


@pytest.fixture(scope="session")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="session")
def browser(chromium, downloads):  # noqa: ANN201
    """Dash's testing Browser driving headless Chromium (no network: the driver is Debian's,
    not one Selenium Manager would download)."""
    from dash.testing.browser import Browser
    from selenium.webdriver.chrome.options import Options

    binary, driver = chromium
    os.environ["SE_CHROMEDRIVER"] = driver
    os.environ["SE_OFFLINE"] = "true"
    options = Options()
    options.binary_location = binary
    options.add_argument("--window-size=1400,1000")
    options.add_argument("--lang=en-US")
    with Browser(
        "chrome",
        headless=True,
        options=[options],
        download_path=str(downloads),
        percy_run=False,
        wait_timeout=30,
    ) as chrome:
        yield chrome
