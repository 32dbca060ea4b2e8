"""The network of a run, made for real: a namespace per rank on a bridge of its own, the
cap on both ends of each rank's link, nothing in the host's namespace, all gone after."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time

import pytest

from mlbench_core.launch.facilities import detect
from mlbench_core.launch.netns import IFNAME, RunNetwork, burst_bytes
from mlbench_core.launch.relay import in_namespace
from mlbench_core.settings import Settings
from tests.mlbench_core.launch.test_facilities import require_facilities


@pytest.fixture
def network():
    require_facilities()
    found = detect(Settings())
    made = []

    def make(ranks: int, rate: float | None) -> RunNetwork:
        net = RunNetwork(f"mlb-test{len(made)}", ranks, rate, ip=found.ip, tc=found.tc)
        made.append(net)
        net.create()
        return net

    yield make
    for net in made:
        net.remove()


def ip_json(*args: str) -> list[dict]:
    done = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout or "[]")


def test_the_burst_holds_an_offloaded_segment_and_a_millisecond_at_the_rate():
    assert burst_bytes(1) == burst_bytes(100) == 65_536
    assert burst_bytes(1000) == 125_000
    assert burst_bytes(10_000) == 1_250_000


def test_each_rank_has_its_own_interface_and_the_host_gets_nothing(network):
    host_links = {link["ifname"] for link in ip_json("link")}
    host_addresses = json.dumps(ip_json("addr"), sort_keys=True)
    host_routes = json.dumps(ip_json("route"), sort_keys=True)
    net = network(3, 25)
    for rank in range(3):
        addresses = ip_json("-n", net.namespace(rank), "addr", "show", "dev", IFNAME)
        inet = [a["local"] for a in addresses[0]["addr_info"] if a["family"] == "inet"]
        assert inet == [net.address(rank)]
        assert not [a for a in addresses[0]["addr_info"] if a["family"] == "inet6"]
    bridged = {link["ifname"] for link in ip_json("-n", net.switch, "link")}
    assert {"br0", "r0", "r1", "r2"} <= bridged
    assert {link["ifname"] for link in ip_json("link")} == host_links
    assert json.dumps(ip_json("addr"), sort_keys=True) == host_addresses
    assert json.dumps(ip_json("route"), sort_keys=True) == host_routes


def test_the_cap_shapes_both_directions_of_every_link(network):
    net = network(2, 25)
    for namespace, device in [(net.namespace(0), IFNAME), (net.switch, "r0"),
                              (net.namespace(1), IFNAME), (net.switch, "r1")]:  # fmt: skip
        qdiscs = json.loads(
            subprocess.run(
                ["tc", "-j", "-n", namespace, "qdisc", "show", "dev", device],
                capture_output=True, text=True, check=True,
            ).stdout
        )  # fmt: skip
        tbf = [q for q in qdiscs if q["kind"] == "tbf"]
        assert len(tbf) == 1, (namespace, device, qdiscs)
        assert tbf[0]["options"]["rate"] == 25_000_000 / 8  # bytes per second
        # the kernel keeps the bucket in clock ticks: a few bytes of rounding
        assert tbf[0]["options"]["burst"] == pytest.approx(burst_bytes(25), rel=0.001)


def test_ranks_reach_each_other_and_the_transfer_is_capped(network):
    net = network(2, 20)
    server = in_namespace(net.path(1), lambda: socket.create_server((net.address(1), 5001)))
    received = []

    def receive() -> None:
        connection, _ = server.accept()
        with connection:
            while data := connection.recv(1 << 16):
                received.append(len(data))

    reader = threading.Thread(target=receive)
    reader.start()
    client = in_namespace(net.path(0), lambda: socket.create_connection((net.address(1), 5001)))
    payload = b"x" * 2_500_000  # 2 s at 20 Mbit/s
    start = time.perf_counter()
    with client:
        client.sendall(payload)
    reader.join(30)
    elapsed = time.perf_counter() - start
    server.close()
    assert sum(received) == len(payload)
    mbit = len(payload) * 8 / elapsed / 1e6
    assert 15 <= mbit <= 21, f"{mbit:.1f} Mbit/s through a 20 Mbit/s cap"


def test_removing_the_network_kills_what_runs_inside_and_leaves_nothing(network):
    net = network(2, None)
    sleeper = subprocess.Popen(["ip", "netns", "exec", net.namespace(0), "sleep", "600"])
    deadline = time.monotonic() + 10
    while not subprocess.run(["ip", "netns", "pids", net.namespace(0)], capture_output=True,
                             text=True).stdout.strip():  # fmt: skip
        assert time.monotonic() < deadline
        time.sleep(0.05)
    net.remove()
    assert sleeper.wait(10) == -9
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert net.prefix not in listed
