"""The local backend: a run's ranks as processes on this machine, each in a pod-like
sandbox (``sandbox``), supervised.

One call starts every rank (so it also works under ``dag.test()``, which runs tasks one by
one), streams their output to the run's logs, keeps their pods' phases current, stops all of
them when one fails or when the task itself is stopped, and removes their sandboxes.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from mlbench_core.api.client import ApiClient
from mlbench_core.api.errors import ApiError
from mlbench_core.benchmarks import REGISTRY
from mlbench_core.launch.backend import Capabilities, Echo, Enforcement
from mlbench_core.launch.facilities import detect
from mlbench_core.launch.facilities import refusals as facility_refusals
from mlbench_core.launch.limits import Limits
from mlbench_core.launch.logship import LogShipper
from mlbench_core.launch.sandbox import Sandbox, SandboxError, sweep
from mlbench_core.launch.workers import (
    pod_labels,
    pod_name,
    training_env,
    worker_command,
    worker_env,
)
from mlbench_core.settings import Settings, get_settings

log = logging.getLogger(__name__)


# What a rank takes from the launcher's environment: the system's basics and the knobs of
# torch, CUDA, NCCL and the math libraries. Nothing else: the launcher runs in the stack,
# whose environment holds its secrets (Airflow's JWT secret and secret key, the service
# user's password, the database URL); a rank gets the API URL, its run's token and what
# training needs, as a pod does.
HOST_VARIABLES = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
HOST_PREFIXES = ("LC_", "CUDA_", "NCCL_", "TORCH_", "CUBLAS_", "OMP_", "MKL_", "KMP_")


def host_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The part of ``environ`` (default: this process's) a rank may see."""
    environ = dict(os.environ if environ is None else environ)
    return {
        key: value
        for key, value in environ.items()
        if key in HOST_VARIABLES or key.startswith(HOST_PREFIXES)
    }


def ended(code: int) -> str:
    """How a rank's process ended, from its exit status (negative: killed by a signal)."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "an unknown signal"
        return f"was killed by signal {-code} ({name})"
    return f"exited with code {code}"


def local_command(run: dict[str, Any]) -> list[str]:
    """The worker command of the pods, run by this interpreter."""
    return [sys.executable, *worker_command(run)[1:]]


class WorkersFailed(RuntimeError):
    """A rank failed (the others were stopped), the ranks could not be started, or the
    launch was cancelled."""


def prefetch(run: dict[str, Any], echo: Callable[[str], None] | None = None) -> None:
    """Get the benchmark's dataset files into the data folder before any rank starts, as an
    init container would: ranks in sandboxes reach nothing but the API."""
    # Imported here: the datasets import torch, which the DAG's other tasks (and the parsing
    # of the DAG file) need not load.
    from mlbench_core.datasets import SOURCES, DatasetError, obtain

    spec = REGISTRY.get(run.get("benchmark") or "")
    if spec is None or run.get("synthetic"):
        return
    settings = get_settings()
    for source in SOURCES.get(spec.dataset, []):
        try:
            path, _ = obtain(
                source,
                settings.datasets_dir,
                base_url=settings.data_url,
                checksums=settings.data_checksums,
                progress=echo is not None,
            )
        except DatasetError as exc:
            raise WorkersFailed(f"dataset of benchmark {spec.id}: {exc}") from None
        if echo is not None:
            echo(f"[mlbench] dataset file {path} ready")


class LocalLauncher:
    """Runs the ranks of ``run`` (the API's run JSON) and supervises them.

    ``on_limits`` gets the limits in force once the sandboxes exist, before any rank starts
    (``runflow`` records them in the run).
    """

    def __init__(
        self,
        run: dict[str, Any],
        client: ApiClient,
        *,
        worker_token: str,
        api_url: str,
        grace: float = 5.0,
        echo: Callable[[str], None] | None = print,
        on_limits: Callable[[Limits], None] | None = None,
    ) -> None:
        self.run, self.client = run, client
        self.worker_token, self.api_url = worker_token, api_url
        self.grace, self.echo, self.on_limits = grace, echo, on_limits
        self.processes: list[subprocess.Popen] = []
        self.sandbox: Sandbox | None = None
        self._cancelled: int | None = None

    def launch(self) -> list[int]:
        """Start all ranks, wait for them; their exit codes. Raises :class:`WorkersFailed`."""
        run = self.run
        if run.get("benchmark") is None:
            raise WorkersFailed("custom images need the kubernetes backend")
        sweep()  # sandboxes of launches that were killed
        prefetch(run, self.echo)
        try:
            sandbox = Sandbox(run, self.api_url)
        except SandboxError as exc:
            raise WorkersFailed(f"the run's limits cannot be enforced here: {exc}") from None
        self.sandbox, host, command = sandbox, socket.gethostname(), local_command(run)
        settings = get_settings()
        shipper = LogShipper(self.client, run["id"], echo=self.echo)
        previous = self._trap_signals()
        codes: list[int] = []
        try:
            try:
                sandbox.open()
            except SandboxError as exc:
                raise WorkersFailed(f"cannot make the ranks' sandboxes: {exc}") from None
            if self.on_limits is not None:
                self.on_limits(sandbox.limits())
            for rank in range(run["num_workers"]):
                env = {
                    **host_env(),
                    **training_env(settings, str(settings.datasets_dir)),
                    **worker_env(
                        run,
                        rank,
                        master_addr=sandbox.master_addr,
                        master_port=sandbox.master_port,
                        api_url=sandbox.worker_api_url,
                    ),
                    **sandbox.env(rank),
                    "MLBENCH_API_TOKEN": self.worker_token,
                }
                process = subprocess.Popen(
                    command,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    preexec_fn=sandbox.preexec(rank),  # noqa: PLW1509 - sandbox before exec
                )
                self.processes.append(process)
                shipper.follow(rank, "stdout", process.stdout)
                shipper.follow(rank, "stderr", process.stderr)
                self._pod(rank, "Running", ip=sandbox.address(rank), node=host)
                self._echo(f"rank {rank}: pid {process.pid}, {sandbox.describe(rank)}")
            codes, failed_rank = self._supervise()
        finally:
            self._stop_all()
            sandbox.close()
            self._restore_signals(previous)
            shipper.close()
        for rank, code in enumerate(codes):
            self._pod(rank, "Succeeded" if code == 0 else "Failed")
        if self._cancelled is not None:
            raise WorkersFailed(f"cancelled by signal {self._cancelled}: all ranks stopped")
        if failed_rank is not None:
            tail = shipper.tail(failed_rank)
            raise WorkersFailed(
                f"rank {failed_rank} {ended(codes[failed_rank])}; the other ranks "
                f"were stopped" + (f". Its last stderr lines:\n{tail}" if tail else "")
            )
        return codes

    def _supervise(self) -> tuple[list[int], int | None]:
        """Wait until all ranks exit, or one fails (then stop the rest)."""
        failed: int | None = None
        while True:
            codes = [p.poll() for p in self.processes]
            if self._cancelled is not None:
                self._stop_all()
                return [p.wait() for p in self.processes], None
            bad = [r for r, c in enumerate(codes) if c not in (None, 0)]
            if bad and failed is None:
                failed = bad[0]
                self._echo(f"rank {failed} {ended(codes[failed])}: stopping the others")
                self._stop_all()
                return [p.wait() for p in self.processes], failed
            if all(c is not None for c in codes):
                return [int(c) for c in codes], None
            time.sleep(0.1)

    def _stop_all(self) -> None:
        """SIGTERM each rank's process group, SIGKILL after the grace period."""
        alive = [p for p in self.processes if p.poll() is None]
        for process in alive:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for process in alive:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()

    def _trap_signals(self) -> dict[int, Any]:
        """On SIGTERM/SIGINT (the task being stopped), signal the ranks to stop, then let the
        previous handler do what it does; the waiting (and SIGKILL after the grace period)
        happens outside the handler, in :meth:`_supervise` or ``launch``'s ``finally``.

        The handler must not wait itself: it runs in the main thread wherever that thread
        was, possibly inside ``Popen.poll`` holding that process's non-reentrant waitpid
        lock, where a ``wait`` would deadlock."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}

        def handler(signum: int, frame: Any) -> None:
            self._cancelled = signum
            for process in self.processes:
                if process.returncode is None:  # an attribute: takes no lock
                    _signal_group(process, signal.SIGTERM)
            old = previous.get(signum)
            if callable(old):
                old(signum, frame)

        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, handler)
        return previous

    @staticmethod
    def _restore_signals(previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def _pod(self, rank: int, phase: str, **fields: Any) -> None:
        try:
            self.client.put_pod(
                pod_name(self.run, rank),
                run_id=self.run["id"],
                rank=rank,
                phase=phase,
                labels=pod_labels(self.run, rank),
                **fields,
            )
        except Exception as exc:  # noqa: BLE001 - the run goes on without a pod status
            log.warning("mlbench: could not record pod phase %s of rank %d: %s", phase, rank, exc)

    def _echo(self, text: str) -> None:
        if self.echo is not None:
            self.echo(f"[mlbench] {text}")


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


class LocalBackend:
    """The embedded default: every rank a process here, in its sandbox, all supervised by
    one task (:class:`LocalLauncher`)."""

    name = "local"
    per_rank_tasks = False
    admission = True
    pods_from_cluster = False

    def capabilities(self, settings: Settings) -> Capabilities:
        facilities = detect(settings)
        cpu = (
            Enforcement(status="enforced", by=f"CFS quota per rank ({facilities.cpu.name})")
            if facilities.cpu is not None
            else Enforcement(
                status="enforced", by=f"CPU affinity, whole CPUs ({facilities.cpu_missing})"
            )
        )
        bandwidth = (
            Enforcement(
                status="enforced",
                by="tc token buckets on each rank's link, both ways (a network namespace per rank)",
            )
            if facilities.sandboxes
            else Enforcement(status="unavailable", by=str(facilities.network_missing))
        )
        return Capabilities(
            backend=self.name,
            cpu=cpu,
            fractional_cpus=facilities.cpu is not None,
            bandwidth=bandwidth,
            gpus=False,
            custom_images=False,
            logs="the launcher reads each rank's stdout and stderr pipes and posts every line",
            admission=self.admission,
            cpu_capacity=settings.cpus,
            pods_from_cluster=self.pods_from_cluster,
            max_workers=settings.max_workers,
        )

    def refusals(
        self, num_workers: int, num_cpus: float, max_bandwidth: float | None, settings: Settings
    ) -> dict[str, str]:
        return facility_refusals(detect(settings), num_cpus, max_bandwidth)

    def start_metadata(self, run: dict[str, Any]) -> dict[str, Any]:
        return {}  # the limits are recorded when the sandboxes exist (``launch``)

    def setup(self, client: ApiClient, run: dict[str, Any], echo: Echo = print) -> list[dict]:
        """Nothing to make before the ranks' task: :meth:`launch` sweeps sandboxes of killed
        launches and fetches the dataset (as an init container would) in the task that
        imports torch anyway. Kept light: a task start-up is on the run's start-up path."""
        if run.get("benchmark") is None:
            raise WorkersFailed("custom images need the kubernetes backend")
        return [{"rank": rank, "pod": pod_name(run, rank)} for rank in range(run["num_workers"])]

    def launch(
        self, client: ApiClient, run: dict[str, Any], ranks: list[dict], echo: Echo = print
    ) -> dict[str, Any]:
        """All ranks here, each in its sandbox; records the limits in force when they start,
        raises :class:`WorkersFailed` with the reason when they fail."""
        token = client.issue_worker_token(run["id"])
        api_url = client.api_url

        def record(limits: Limits) -> None:
            try:
                client.update_run(run["id"], job_metadata={"limits": limits.record()})
            except ApiError as exc:
                log.warning("mlbench: could not record the limits of run %s: %s", run["id"], exc)

        launcher = LocalLauncher(
            run,
            ApiClient(api_url, token=token),
            worker_token=token,
            api_url=api_url,
            echo=echo,
            on_limits=record,
        )
        return {"run_id": run["id"], "exit_codes": launcher.launch()}

    def teardown(self, client: ApiClient, run: dict[str, Any], echo: Echo = print) -> None:
        """Sandboxes whose launch was killed (the launch removes its own when it ends)."""
        removed = sweep()
        if removed and echo is not None:
            echo(f"[mlbench] removed sandboxes left by a killed launch: {', '.join(removed)}")


BACKEND = LocalBackend()
