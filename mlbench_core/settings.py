"""The one settings object. Nothing else in mlbench reads environment variables."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The source tree (mlbench is installed editable from it; DAGs and plugin live beside).
REPO = Path(__file__).resolve().parents[1]


class AuthMode(StrEnum):
    AIRFLOW = "airflow"
    NONE = "none"


class Backend(StrEnum):
    LOCAL = "local"
    KUBERNETES = "kubernetes"


class Settings(BaseSettings):
    """Configuration, read from ``MLBENCH_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="MLBENCH_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".mlbench")
    database_url: str | None = None
    api_url: str = "http://127.0.0.1:8080/mlbench"
    api_token: str | None = None
    auth: AuthMode = AuthMode.AIRFLOW
    backend: Backend = Backend.LOCAL
    namespace: str = "default"
    image_registry: str = "mlbench"
    max_workers: int = Field(default=16, ge=1)
    data_dir: Path | None = None  # datasets (default: <home>/data)
    data_url: str | None = None  # a mirror of the datasets' official download locations
    # Digests pinned per dataset file name, "sha256:HEX" or "md5:HEX" (JSON object in the env).
    data_checksums: dict[str, str] = Field(default_factory=dict)
    dag_id: str = "mlbench_run"
    # Set by the launcher for each worker process / pod:
    pod_name: str | None = None
    # Seconds each worker sleeps per training step: an injected slowdown, to check that the
    # nightly comparison flags it (and to keep test runs going long enough to stop them).
    step_delay: float = Field(default=0.0, ge=0)
    # The embedded stack (``mlbench up``):
    port: int = Field(default=8080, ge=1, le=65535)
    dags_folder: Path = Field(default_factory=lambda: REPO / "dags")
    plugins_folder: Path = Field(default_factory=lambda: REPO / "plugins")

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
