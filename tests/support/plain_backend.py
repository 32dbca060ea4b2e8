"""A third launch backend, written only for the tests: every rank a plain subprocess on the
host's loopback, no sandbox and no supervision (a failed rank does not stop the others; the
launch waits for all of them). It plugs in as ``MLBENCH_BACKEND=tests.support.plain_backend:
BACKEND`` without any change to the DAG file."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from mlbench_core.api.client import ApiClient
from mlbench_core.launch.backend import Capabilities, Echo, Enforcement, record_failure
from mlbench_core.launch.logship import LogShipper
from mlbench_core.launch.sandbox import free_port
from mlbench_core.launch.workers import pod_labels, pod_name, worker_command, worker_env
from mlbench_core.settings import Settings


class PlainBackend:
    name = "plain"
    per_rank_tasks = False
    admission = False
    pods_from_cluster = False

    def __init__(self) -> None:
        self.teardowns: list[int] = []  # run ids torn down (in this process)

    def capabilities(self, settings: Settings) -> Capabilities:
        return Capabilities(
            backend=self.name,
            cpu=Enforcement(status="requested", by="thread counts only"),
            fractional_cpus=True,
            bandwidth=Enforcement(status="unavailable", by="no traffic control here"),
            gpus=False,
            custom_images=False,
            logs="pipes read by the launch task",
            admission=self.admission,
            cpu_capacity=None,
            pods_from_cluster=self.pods_from_cluster,
            max_workers=settings.max_workers,
        )

    def refusals(
        self, num_workers: int, num_cpus: float, max_bandwidth: float | None, settings: Settings
    ) -> dict[str, str]:
        return {} if max_bandwidth is None else {"max_bandwidth": "the plain backend has no caps"}

    def start_metadata(self, run: dict[str, Any]) -> dict[str, Any]:
        return {"unsupervised": True}

    def setup(self, client: ApiClient, run: dict[str, Any], echo: Echo = print) -> list[dict]:
        port = free_port()
        return [{"rank": r, "port": port} for r in range(run["num_workers"])]

    def launch(
        self, client: ApiClient, run: dict[str, Any], ranks: list[dict], echo: Echo = print
    ) -> dict[str, Any]:
        token = client.issue_worker_token(run["id"])
        api_url = client.api_url
        shipper = LogShipper(client, run["id"], echo=echo)
        command = [sys.executable, *worker_command(run)[1:]]
        processes = []
        for spec in ranks:
            rank = spec["rank"]
            env = os.environ | worker_env(
                run, rank, master_addr="127.0.0.1", master_port=spec["port"], api_url=api_url
            )
            env["MLBENCH_API_TOKEN"] = token
            process = subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            shipper.follow(rank, "stdout", process.stdout)
            shipper.follow(rank, "stderr", process.stderr)
            processes.append(process)
        codes = [p.wait() for p in processes]
        shipper.close()
        for rank, code in enumerate(codes):
            client.put_pod(
                pod_name(run, rank),
                run_id=run["id"],
                rank=rank,
                phase="Succeeded" if code == 0 else "Failed",
                labels=pod_labels(run, rank),
            )
        if any(codes):
            record_failure(client, run["id"], f"exit codes {codes}")
            raise RuntimeError(f"ranks exited with {codes}")
        return {"exit_codes": codes}

    def teardown(self, client: ApiClient, run: dict[str, Any], echo: Echo = print) -> None:
        self.teardowns.append(run["id"])  # the ranks were waited for: nothing is left


BACKEND = PlainBackend()
