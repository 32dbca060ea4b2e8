"""The network of one local run: a network namespace per rank, joined like pods on a node.

::

    namespace <id>-0 (rank 0)     namespace <id>-br (the run's switch)     namespace <id>-1
    eth0 10.200.0.1/16  <--veth-->  r0 --+-- br0 --+-- r1  <--veth-->  eth0 10.200.0.2/16
    lo (the API, relayed)                                               lo (the API, relayed)

Every interface lives in a namespace of the run's own: the host's namespace gets no address,
route or link. With a bandwidth cap each rank's link is shaped both ways by a token bucket
(``tc`` ``tbf``): ``eth0`` in the rank's namespace shapes what it sends, ``r<rank>`` in the
switch's namespace what it receives, as the CNI bandwidth plugin shapes a pod's traffic.
The mlbench API is reached over the rank's loopback, which is not shaped (see ``relay``).
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
from collections.abc import Iterable
from pathlib import Path

__all__ = ["IFNAME", "NETNS_DIR", "RunNetwork", "SandboxError", "burst_bytes", "remove"]

IFNAME = "eth0"  # the rank's interface, as in a pod
SUBNET = ipaddress.ip_network("10.200.0.0/16")  # inside the run's namespaces only
NETNS_DIR = Path("/run/netns")  # where `ip netns` keeps named namespaces
# The token bucket: the queue may hold LATENCY of traffic (25 ms, as Kubernetes' CNI
# bandwidth plugin); the bucket holds at least what a segmentation offload hands the qdisc at
# once (64 KiB) and at least 1 ms of traffic at the rate, below which tbf falls short of the
# rate at high rates (measured here: 16 KiB gave 64 % of 1 Gbit/s, 64 KiB 94 %). A larger
# bucket lets longer transfers pass unshaped: with this one, a transfer of 64 KiB (or 1 ms
# at the rate) passes at the link's own speed, one of 2 MB at 10 Mbit/s is 3 % faster than
# the cap alone would allow.
GSO_BYTES = 65_536
BUCKET_S = 0.001
LATENCY_MS = 25


class SandboxError(RuntimeError):
    """A sandbox could not be made (the message says which step failed and why)."""


def burst_bytes(rate_mbit: float) -> int:
    """The token bucket's size for ``rate_mbit`` Mbit/s."""
    return max(GSO_BYTES, round(rate_mbit * 1e6 / 8 * BUCKET_S))


def _run(command: list[str], what: str, stdin: str | None = None) -> None:
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise SandboxError(f"{what}: {' '.join(command[:4])}... failed: {' '.join(detail[-2:])}")


def remove(ip: str, names: Iterable[str]) -> None:
    """Kill what runs in the named namespaces that exist, then delete them (their links and
    qdiscs go with them)."""
    present = [n for n in names if (NETNS_DIR / n).exists()]
    for name in present:
        done = subprocess.run([ip, "netns", "pids", name], capture_output=True, text=True)
        for pid in (int(p) for p in done.stdout.split() if p.isdigit()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if present:
        _run([ip, "-force", "-batch", "-"], "delete network namespaces",
             "".join(f"netns delete {n}\n" for n in present))  # fmt: skip


class RunNetwork:
    """The namespaces, links and qdiscs of one run's ``ranks`` ranks, named ``<prefix>-*``."""

    def __init__(
        self, prefix: str, ranks: int, rate_mbit: float | None, *, ip: str, tc: str
    ) -> None:
        if ranks > SUBNET.num_addresses - 2:
            raise SandboxError(f"{ranks} ranks do not fit in {SUBNET}")
        self.prefix, self.ranks, self.rate_mbit = prefix, ranks, rate_mbit
        self.ip, self.tc = ip, tc

    @property
    def switch(self) -> str:
        return f"{self.prefix}-br"

    def namespace(self, rank: int) -> str:
        return f"{self.prefix}-{rank}"

    def namespaces(self) -> list[str]:
        return [self.switch, *(self.namespace(r) for r in range(self.ranks))]

    def path(self, rank: int) -> Path:
        """The rank's namespace as a file (to join it: ``setns``)."""
        return NETNS_DIR / self.namespace(rank)

    @staticmethod
    def address(rank: int) -> str:
        return str(SUBNET[rank + 1])

    @property
    def burst(self) -> int | None:
        return None if self.rate_mbit is None else burst_bytes(self.rate_mbit)

    def describe(self) -> str:
        return (
            f"a network namespace per rank ({self.prefix}-<rank>), its {IFNAME} on a bridge in "
            f"namespace {self.switch}, {SUBNET}"
        )

    def describe_shaping(self) -> str | None:
        if self.rate_mbit is None:
            return None
        return (
            f"tc tbf rate {self.rate_mbit:g} Mbit/s, burst {self.burst} bytes, latency "
            f"{LATENCY_MS} ms on each rank's link, egress ({IFNAME}) and ingress (r<rank>)"
        )

    def create(self) -> None:
        """Make the namespaces, links, addresses and qdiscs (raises :class:`SandboxError`)."""
        names = self.namespaces()
        _run([self.ip, "-batch", "-"], "create network namespaces",
             "".join(f"netns add {n}\n" for n in names))  # fmt: skip
        switch = ["link add br0 type bridge", "link set br0 addrgenmode none", "link set br0 up"]
        for rank in range(self.ranks):
            switch += [
                f"link add r{rank} type veth peer name {IFNAME} netns {self.namespace(rank)}",
                f"link set r{rank} addrgenmode none",
                f"link set r{rank} master br0 up",
            ]
        _run([self.ip, "-n", self.switch, "-batch", "-"], "create the run's bridge",
             "".join(line + "\n" for line in switch))  # fmt: skip
        for rank in range(self.ranks):
            commands = [
                f"link set {IFNAME} addrgenmode none",
                f"addr add {self.address(rank)}/{SUBNET.prefixlen} dev {IFNAME}",
                f"link set {IFNAME} up",
                "link set lo up",
            ]
            _run([self.ip, "-n", self.namespace(rank), "-batch", "-"], f"set up rank {rank}",
                 "".join(line + "\n" for line in commands))  # fmt: skip
        if self.rate_mbit is not None:
            for rank in range(self.ranks):
                self._shape(self.namespace(rank), IFNAME)  # what the rank sends
                self._shape(self.switch, f"r{rank}")  # what it receives

    def _shape(self, namespace: str, device: str) -> None:
        rate = f"{self.rate_mbit * 1000:.0f}kbit"
        _run([self.tc, "-n", namespace, "qdisc", "replace", "dev", device, "root", "tbf",
              "rate", rate, "burst", str(self.burst), "latency", f"{LATENCY_MS}ms"],
             f"cap {device} in {namespace}")  # fmt: skip

    def remove(self) -> None:
        """Delete the namespaces (with their links and qdiscs) after killing what runs
        inside."""
        remove(self.ip, self.namespaces())
