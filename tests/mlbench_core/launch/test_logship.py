"""The log shipper: lines in order, and none lost or stored twice while the API is away."""

from __future__ import annotations

import time

from harness.server import ThreadedServer, free_port
from mlbench_core.api import ApiClient
from mlbench_core.launch.logship import LogShipper


def test_lines_wait_for_an_api_that_is_away_and_are_stored_once(
    airflow_app, live_server, admin_token, store
):
    with ApiClient(f"{live_server}/mlbench", token=admin_token) as admin:
        run = admin.create_run("logs-wait", 1, benchmark="digits", job_id="elsewhere")
        port = free_port()
        with ApiClient(f"http://127.0.0.1:{port}/mlbench", token=admin_token, timeout=5) as later:
            shipper = LogShipper(later, run["id"], interval=0.05, batch=3, retry_for=60)
            for i in range(10):
                shipper.put(0, "stdout", f"line {i}")
            time.sleep(3)  # the API is away: the shipper backs off, keeping every line
            assert shipper.failed == 0
            with ThreadedServer(airflow_app, port=port):
                shipper.close(timeout=60)
        assert shipper.failed == 0
        lines = admin.get_logs(run["id"])["lines"]
    assert [line["line"] for line in lines] == [f"line {i}" for i in range(10)]


def test_lines_are_counted_lost_once_the_api_stays_away(admin_token):
    with ApiClient(f"http://127.0.0.1:{free_port()}/mlbench", token=admin_token) as down:
        shipper = LogShipper(down, 1, interval=0.05, retry_for=1.0)
        shipper.put(0, "stderr", "Traceback: boom")
        shipper.close(timeout=30)
    assert shipper.failed == 1
    assert shipper.tail(0) == ""  # put() lines are not pipes' stderr
