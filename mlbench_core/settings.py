"""The one settings object. Nothing else in mlbench reads environment variables."""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The source tree (mlbench is installed editable from it; DAGs and plugin live beside).
REPO = Path(__file__).resolve().parents[1]


class AuthMode(StrEnum):
    AIRFLOW = "airflow"
    NONE = "none"


class Settings(BaseSettings):
    """Configuration, read from ``MLBENCH_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="MLBENCH_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".mlbench")
    database_url: str | None = None
    api_url: str = "http://127.0.0.1:8080/mlbench"
    api_token: str | None = None
    auth: AuthMode = AuthMode.AIRFLOW
    # Origins besides the server's own whose pages may write with the UI's cookie (a proxy
    # that rewrites Host), e.g. ["https://mlbench.example.com"]; see mlbench_api.csrf.
    trusted_origins: list[str] = Field(default_factory=list)
    # How often the API server ends runs whose DAG run ended without ending them (seconds;
    # 0: only on POST /api/runs/reconcile).
    reconcile_seconds: float = Field(default=60.0, ge=0)
    # How long workers and the log shipper wait for an API that is away (restarting) before
    # giving up on a write (seconds).
    api_wait: float = Field(default=180.0, ge=0)
    # The launch backend: "local", "kubernetes", or package.module:attribute of an object
    # implementing mlbench_core.launch.backend.LaunchBackend.
    backend: str = Field(default="local", pattern=r"^([a-z][a-z0-9_]*|[\w.]+:\w+)$")
    namespace: str = "default"
    image_registry: str = "mlbench"
    max_workers: int = Field(default=16, ge=1)
    # Fields of RunCreate given to each new run of a benchmark whose request leaves them out
    # (JSON object in the env), e.g. {"epochs": 1, "steps_per_epoch": 5, "settings": {"3a":
    # {"hidden": 24}}} for a smoke-test deployment whose clients (the original mlbench's)
    # cannot say so; "settings" maps a benchmark to its settings.
    run_defaults: dict[str, Any] = Field(default_factory=dict)
    data_dir: Path | None = None  # datasets (default: <home>/data)
    data_url: str | None = None  # a mirror of the datasets' official download locations
    # Digests pinned per dataset file name, "sha256:HEX" or "md5:HEX" (JSON object in the env).
    data_checksums: dict[str, str] = Field(default_factory=dict)
    dag_id: str = "mlbench_run"
    # The kubernetes backend (set by the Helm chart):
    # a PersistentVolumeClaim with the datasets, mounted at DATA_MOUNT in every worker pod;
    data_volume_claim: str | None = None
    # where pods of runs with a GPU go (JSON in the env: {"label": "value"}, [{toleration}]);
    gpu_node_selector: dict[str, str] = Field(default_factory=dict)
    gpu_tolerations: list[dict[str, str | int]] = Field(default_factory=list)
    # seconds ``GET /api/pods/`` reuses one listing of the cluster's worker pods, and the
    # kubeconfig it uses outside a cluster (default: KUBECONFIG, else ~/.kube/config).
    pod_cache_seconds: float = Field(default=5.0, ge=0)
    kubeconfig: Path | None = None
    # The local backend's limits: CPUs this machine gives to runs at once (default: its CPU
    # count; more is refused unless a run asks to oversubscribe, and runs wait for free
    # CPUs), the cgroup hierarchy with the cpu controller (default: found in
    # /proc/self/mountinfo) and where sandboxes of ranks are recorded while they exist.
    cpu_capacity: float | None = Field(default=None, gt=0)
    cgroup_mount: Path | None = None
    sandbox_dir: Path = Path("/run/mlbench/sandboxes")
    # Set by the launcher for each worker process / pod:
    pod_name: str | None = None
    # the rank's own network interface (its counters are the rank's network series), the
    # rank's cgroup in the cpu hierarchy (for its throttling series), its memory cgroup (for
    # its true peak memory), the run's cap (Mbit/s)
    network_interface: str | None = None
    cpu_cgroup: Path | None = None
    memory_cgroup: Path | None = None
    max_bandwidth: float | None = None
    # Seconds each worker sleeps per training step: an injected slowdown, to check that the
    # nightly comparison flags it (and to keep test runs going long enough to stop them).
    step_delay: float = Field(default=0.0, ge=0)
    # The benchmarks the step delay applies to (comma-separated ids; empty: every benchmark),
    # e.g. "digits": a slowdown of an entry but not of the nightly's reference (0a).
    step_delay_benchmarks: str = Field(default="", pattern=r"^[\w.,+ -]*$")
    # The nightly suite (``mlbench_nightly``): its cron schedule (UTC), the suite file
    # (default <home>/nightly.yaml; the Airflow Variable mlbench_nightly_suite wins), and the
    # seconds between looks at a running run.
    nightly_schedule: str = "0 2 * * *"
    nightly_suite: Path | None = None
    nightly_poll_interval: float = Field(default=5.0, gt=0)
    # The embedded stack (``mlbench up``):
    port: int = Field(default=8080, ge=1, le=65535)
    dags_folder: Path = Field(default_factory=lambda: REPO / "dags")
    plugins_folder: Path = Field(default_factory=lambda: REPO / "plugins")

    @field_validator("run_defaults")
    @classmethod
    def _run_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        from mlbench_core.api.schemas import RunCreate

        settable = set(RunCreate.model_fields) - {"name", "num_workers", "job_id"}
        if unknown := sorted(set(value) - settable):
            raise ValueError(f"not fields a run's defaults may set: {', '.join(unknown)}")
        settings = value.get("settings", {})
        if not (isinstance(settings, dict) and all(isinstance(v, dict) for v in settings.values())):
            raise ValueError('"settings" maps a benchmark to its settings: {"3a": {"bptt": 8}}')
        return value

    def step_delay_of(self, benchmark: str) -> float:
        """The injected step delay of a run of ``benchmark`` (0 where it does not apply)."""
        only = {b.strip() for b in self.step_delay_benchmarks.split(",") if b.strip()}
        return self.step_delay if not only or benchmark in only else 0.0

    @property
    def nightly_suite_file(self) -> Path:
        return self.nightly_suite or self.home / "nightly.yaml"

    @property
    def cpus(self) -> float:
        """CPUs the local backend gives to runs at once."""
        return self.cpu_capacity or float(os.cpu_count() or 1)

    @property
    def datasets_dir(self) -> Path:
        """Where workers look for (and download) datasets."""
        return self.data_dir or self.home / "data"

    @property
    def store_url(self) -> str:
        """SQLAlchemy URL of the mlbench store (SQLite under ``home`` unless set)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'mlbench.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once."""
    return Settings()
