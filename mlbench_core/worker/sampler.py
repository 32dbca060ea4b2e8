"""A thread that posts the worker's resource usage as pod metrics."""

from __future__ import annotations

import json
import logging
import threading

import psutil

from mlbench_core.api.writer import MetricsWriter

__all__ = ["ResourceSampler"]

log = logging.getLogger(__name__)

_NETWORK_NOTE = json.dumps(
    {
        "source": "psutil.net_io_counters",
        "scope": "network namespace: the whole machine on a local run, the pod in a container",
    },
    sort_keys=True,
)
_PROCESS_NOTE = json.dumps({"scope": "this process and its children"}, sort_keys=True)


class ResourceSampler:
    """Posts CPU seconds, memory, and network bytes of this worker every ``interval`` s.

    Series (of pod ``pod_name``): ``container_cpu_usage_seconds_total`` (cumulative),
    ``container_memory_usage_bytes`` (RSS), ``container_network_receive_bytes_total`` and
    ``container_network_transmit_bytes_total`` (cumulative). One sample is posted at
    :meth:`start`, then every ``interval`` seconds, and a last one at :meth:`stop`.
    """

    def __init__(self, writer: MetricsWriter, pod_name: str, interval: float = 5.0) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.writer = writer
        self.pod_name = pod_name
        self.interval = interval
        self.samples = 0
        self._process = psutil.Process()
        self._cpu = 0.0  # the counter never goes down, even when a child's time leaves it
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
            net = psutil.net_io_counters()
            points = (
                ("container_cpu_usage_seconds_total", self._cpu, True, _PROCESS_NOTE),
                ("container_memory_usage_bytes", rss, False, _PROCESS_NOTE),
                ("container_network_receive_bytes_total", net.bytes_recv, True, _NETWORK_NOTE),
                ("container_network_transmit_bytes_total", net.bytes_sent, True, _NETWORK_NOTE),
            )
            for name, value, cumulative, note in points:
                self.writer.write(
                    name, value, pod_name=self.pod_name, cumulative=cumulative, metadata=note
                )
            self.samples += 1
        except Exception:  # noqa: BLE001 - sampling must never break training
            log.exception("mlbench resource sampler: cannot take a sample")
