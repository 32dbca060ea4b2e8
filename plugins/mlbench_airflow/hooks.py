"""``MlbenchApiHook``: the connection to the mlbench API, as the DAGs' service user."""

from __future__ import annotations

import asyncio
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from mlbench_core import runflow
from mlbench_core.api import ApiClient
from mlbench_core.settings import get_settings

__all__ = ["MlbenchApiHook"]


class MlbenchApiHook(BaseHook):
    """The mlbench API through Airflow connection ``mlbench_conn_id`` (default
    ``mlbench_api``): host, port and schema of the API server, ``extra.path`` (default
    ``/mlbench``), and the login and password of the service user. Without such a connection,
    ``MLBENCH_API_URL`` with no login (the API's ``MLBENCH_AUTH=none`` mode)."""

    conn_name_attr = "mlbench_conn_id"
    default_conn_name = "mlbench_api"
    conn_type = "http"
    hook_name = "mlbench API"

    def __init__(self, mlbench_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlbench_conn_id = mlbench_conn_id

    @staticmethod
    def _client(conn: Any) -> ApiClient:
        if conn is None:
            return runflow.connect(get_settings().api_url)
        path = (conn.extra_dejson or {}).get("path", "/mlbench")
        url = f"{conn.schema or 'http'}://{conn.host}:{conn.port or 80}{path}"
        return runflow.connect(url, conn.login, conn.password)

    def get_conn(self) -> ApiClient:
        """A client logged in as the connection's user (a new one each call: close it)."""
        try:
            conn = self.get_connection(self.mlbench_conn_id)
        except AirflowNotFoundException:
            conn = None
        return self._client(conn)

    async def aget_conn(self) -> ApiClient:
        """:meth:`get_conn` for triggers (the triggerer's event loop must not block)."""
        try:
            conn = await self.aget_connection(self.mlbench_conn_id)
        except AirflowNotFoundException:
            conn = None
        return await asyncio.to_thread(self._client, conn)
