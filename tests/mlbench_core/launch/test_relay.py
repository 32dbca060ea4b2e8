"""The API inside a rank's namespace: requests made there reach a server on the host's
loopback, through the relay, over the rank's (unshaped) loopback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.server import free_port
from mlbench_core.launch.facilities import detect
from mlbench_core.launch.netns import RunNetwork
from mlbench_core.launch.relay import ApiRelay
from mlbench_core.settings import Settings
from tests.mlbench_core.launch.test_facilities import require_facilities

FETCH = """
import sys, requests
answer = requests.post(sys.argv[1] + "/echo", data=b"x" * 3_000_000, timeout=30)
print(answer.status_code, len(answer.content))
"""


def link_bytes(namespace: str) -> int:
    """Bytes received and sent by the rank's eth0 so far."""
    done = subprocess.run(
        ["ip", "-j", "-s", "-n", namespace, "link", "show", "eth0"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    stats = json.loads(done.stdout)[0]["stats64"]
    return stats["rx"]["bytes"] + stats["tx"]["bytes"]


@pytest.fixture
def echo_server():
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Echo)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/mlbench"
    server.shutdown()
    server.server_close()


def test_a_rank_reaches_the_api_through_the_relay_unshaped(echo_server):
    require_facilities()
    found = detect(Settings())
    net = RunNetwork("mlb-relay", 1, 1.0, ip=found.ip, tc=found.tc)  # a 1 Mbit/s link
    net.create()
    relay = ApiRelay(echo_server)
    try:
        relay.add(net.path(0))
        assert relay.url == echo_server
        done = subprocess.run(
            ["ip", "netns", "exec", net.namespace(0), sys.executable, "-c", FETCH, relay.url],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.stdout.split() == ["200", "3000000"], done.stderr
        # 6 MB went both ways, none of it over the rank's capped link
        assert link_bytes(net.namespace(0)) < 10_000
    finally:
        relay.close()
        net.remove()


def test_the_relay_needs_plain_http():
    with pytest.raises(ValueError, match="http://"):
        ApiRelay("https://mlbench.example/mlbench")
