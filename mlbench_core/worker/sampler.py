"""A thread that posts the worker's resource usage as pod metrics."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import psutil

from mlbench_core.api.writer import MetricsWriter

__all__ = ["ResourceSampler"]

log = logging.getLogger(__name__)

_PROCESS_NOTE = json.dumps({"scope": "this process and its children"}, sort_keys=True)


def _note(**fields: str) -> str:
    return json.dumps(fields, sort_keys=True)


def network_reader(interface: str | None) -> tuple[Callable[[], tuple[int, int]], str]:
    """A function reading (received, sent) bytes, and the metadata saying what they count.

    With ``interface`` (the rank's own, as the launcher or the pod gives it) the counters
    are that interface's, read in the rank's network namespace; without it (or when it is
    missing) they are the whole namespace's: on a local run without sandboxes, the machine's,
    shared by every rank.
    """
    if interface and interface in psutil.net_io_counters(pernic=True):

        def own() -> tuple[int, int]:
            counters = psutil.net_io_counters(pernic=True)[interface]
            return counters.bytes_recv, counters.bytes_sent

        scope = f"interface {interface} of this rank's network namespace: its own link"
        return own, _note(source="psutil.net_io_counters", interface=interface, scope=scope)

    def whole() -> tuple[int, int]:
        counters = psutil.net_io_counters()
        return counters.bytes_recv, counters.bytes_sent

    scope = "every interface of the network namespace (on a local run without sandboxes: the "
    scope += "whole machine, shared by all ranks)"
    if interface:
        scope += f"; interface {interface} was not found"
    return whole, _note(source="psutil.net_io_counters", scope=scope)


def throttling_reader(cgroup: Path | None) -> Callable[[], tuple[int, float] | None] | None:
    """A function reading (throttled periods, throttled seconds) of the rank's CPU quota from
    its cgroup's ``cpu.stat`` (v1: ``throttled_time`` ns, v2: ``throttled_usec``)."""
    if cgroup is None or not (cgroup / "cpu.stat").exists():
        return None
    path = cgroup / "cpu.stat"

    def read() -> tuple[int, float] | None:
        try:
            stat = dict(line.split() for line in path.read_text().splitlines() if line.strip())
        except (OSError, ValueError):
            return None
        if "throttled_usec" in stat:
            return int(stat.get("nr_throttled", 0)), int(stat["throttled_usec"]) / 1e6
        if "throttled_time" in stat:
            return int(stat.get("nr_throttled", 0)), int(stat["throttled_time"]) / 1e9
        return None

    return read


class ResourceSampler:
    """Posts CPU seconds, memory, and network bytes of this worker every ``interval`` s.

    Series (of pod ``pod_name``): ``container_cpu_usage_seconds_total`` (cumulative),
    ``container_memory_usage_bytes`` (RSS), ``container_network_receive_bytes_total`` and
    ``container_network_transmit_bytes_total`` (cumulative; of ``interface`` when given, see
    :func:`network_reader`), and with the rank's CPU-quota ``cgroup``
    ``container_cpu_cfs_throttled_periods_total`` and
    ``container_cpu_cfs_throttled_seconds_total`` (cumulative). One sample is posted at
    :meth:`start`, then every ``interval`` seconds, and a last one at :meth:`stop`.
    """

    def __init__(
        self,
        writer: MetricsWriter,
        pod_name: str,
        interval: float = 5.0,
        *,
        interface: str | None = None,
        cgroup: Path | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.writer = writer
        self.pod_name = pod_name
        self.interval = interval
        self.samples = 0
        self._process = psutil.Process()
        self._cpu = 0.0  # the counter never goes down, even when a child's time leaves it
        self._network, self._network_note = network_reader(interface)
        self._throttling = throttling_reader(cgroup)
        self._quota_note = _note(scope="the rank's cgroup (its CPU quota)", cgroup=str(cgroup))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlbench-sampler", daemon=True)

    def start(self) -> ResourceSampler:
        """Post a first sample and start the thread."""
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and post a last sample."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.sample()

    def __enter__(self) -> ResourceSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def _usage(self) -> tuple[float, int]:
        """CPU seconds and RSS bytes of this process and its live and reaped children."""
        times = self._process.cpu_times()
        cpu = times.user + times.system + times.children_user + times.children_system
        rss = self._process.memory_info().rss
        for child in self._process.children(recursive=True):
            try:
                child_times = child.cpu_times()
                cpu += child_times.user + child_times.system
                rss += child.memory_info().rss
            except psutil.Error:  # gone since listed
                continue
        return cpu, rss

    def sample(self) -> None:
        """Queue one sample of each series (never raises)."""
        try:
            cpu, rss = self._usage()
            self._cpu = max(self._cpu, cpu)
            received, sent = self._network()
            points = [
                ("container_cpu_usage_seconds_total", self._cpu, True, _PROCESS_NOTE),
                ("container_memory_usage_bytes", rss, False, _PROCESS_NOTE),
                ("container_network_receive_bytes_total", received, True, self._network_note),
                ("container_network_transmit_bytes_total", sent, True, self._network_note),
            ]
            throttled = self._throttling() if self._throttling is not None else None
            if throttled is not None:
                periods, seconds = throttled
                points += [
                    ("container_cpu_cfs_throttled_periods_total", periods, True, self._quota_note),
                    ("container_cpu_cfs_throttled_seconds_total", seconds, True, self._quota_note),
                ]
            for name, value, cumulative, note in points:
                self.writer.write(
                    name, value, pod_name=self.pod_name, cumulative=cumulative, metadata=note
                )
            self.samples += 1
        except Exception:  # noqa: BLE001 - sampling must never break training
            log.exception("mlbench resource sampler: cannot take a sample")
