"""Fixtures of the launch tests: the live API and its admin."""

from __future__ import annotations

import pytest

from mlbench_core.api import ApiClient


@pytest.fixture
def api_url(live_server, store) -> str:  # noqa: ANN001
    return f"{live_server}/mlbench"


@pytest.fixture
def admin(api_url, admin_token) -> ApiClient:  # noqa: ANN001
    return ApiClient(api_url, token=admin_token)
