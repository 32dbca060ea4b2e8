"""The mlbench API as the DAGs' service user."""

from __future__ import annotations

from typing import Any

from mlbench_core import runflow
from mlbench_core.api import ApiClient
from mlbench_core.settings import get_settings

CONNECTION = "mlbench_api"


def _client(conn: Any) -> ApiClient:
    """A client logged in with connection ``conn`` (None: ``MLBENCH_API_URL``, no login)."""
    if conn is None:
        return runflow.connect(get_settings().api_url)
    path = (conn.extra_dejson or {}).get("path", "/mlbench")
    url = f"{conn.schema or 'http'}://{conn.host}:{conn.port or 80}{path}"
    return runflow.connect(url, conn.login, conn.password)


def api_client() -> ApiClient:
    """The API as the service user of Airflow connection ``mlbench_api`` (login and password;
    host, port and ``extra.path``), or as configured by ``MLBENCH_API_URL`` when no such
    connection exists."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(CONNECTION)
    except AirflowNotFoundException:
        conn = None
    return _client(conn)


async def async_api_client() -> ApiClient:
    """:func:`api_client` for triggers (the triggerer's event loop must not block)."""
    import asyncio

    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = await BaseHook.aget_connection(CONNECTION)
    except AirflowNotFoundException:
        conn = None
    return await asyncio.to_thread(_client, conn)
