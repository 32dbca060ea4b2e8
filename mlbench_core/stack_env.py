"""The embedded stack's files and environment: layout of ``MLBENCH_HOME``, the generated
credentials, and the environment every Airflow process of the stack is started with.

Layout of ``MLBENCH_HOME``::

    airflow/            AIRFLOW_HOME (SQLite metadata DB, airflow.cfg, task logs)
    airflow/passwords.json   the Airflow users' passwords (SimpleAuthManager reads it)
    mlbench.db          the mlbench store (unless MLBENCH_DATABASE_URL is set)
    credentials.json    generated once, mode 0600: passwords of ``admin`` and ``mlbench``,
                        the JWT secret and the API secret key shared by all processes
    stack.json          pids, port and URLs of the running stack
    logs/<process>.log  stdout and stderr of each process
"""

from __future__ import annotations

import json
import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from mlbench_core.settings import Settings

__all__ = [
    "ADMIN_USER",
    "DAG_USER",
    "Credentials",
    "StackPaths",
    "api_root",
    "load_credentials",
    "stack_environment",
]

ADMIN_USER = "admin"  # for people: the Airflow UI, the dashboard, the CLI
DAG_USER = "mlbench"  # for DAG tasks, through the ``mlbench_api`` connection


@dataclass(frozen=True)
class StackPaths:
    """Where the stack keeps its files under ``home``."""

    home: Path

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def passwords(self) -> Path:
        return self.airflow_home / "passwords.json"

    @property
    def credentials(self) -> Path:
        return self.home / "credentials.json"

    @property
    def state(self) -> Path:
        return self.home / "stack.json"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    def log(self, process: str) -> Path:
        return self.logs / f"{process}.log"


HEARTBEAT_S = 5  # a task's heartbeat interval ([workers] min_heartbeat_interval)


@dataclass(frozen=True)
class Credentials:
    """Secrets of one embedded stack, generated once and reused by every start."""

    admin_password: str
    mlbench_password: str
    jwt_secret: str
    secret_key: str

    @classmethod
    def generate(cls) -> Credentials:
        return cls(
            admin_password=secrets.token_urlsafe(12),
            mlbench_password=secrets.token_urlsafe(24),
            jwt_secret=secrets.token_urlsafe(48),
            secret_key=secrets.token_urlsafe(32),
        )

    @property
    def passwords(self) -> dict[str, str]:
        return {ADMIN_USER: self.admin_password, DAG_USER: self.mlbench_password}


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_credentials(home: Path) -> Credentials | None:
    """The stack's credentials from ``<home>/credentials.json``; None when there are none.

    ``ValueError`` when the file exists but cannot be read as credentials.
    """
    path = StackPaths(home).credentials
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    try:
        passwords = data["passwords"]
        return Credentials(
            admin_password=str(passwords[ADMIN_USER]),
            mlbench_password=str(passwords[DAG_USER]),
            jwt_secret=str(data["jwt_secret"]),
            secret_key=str(data["secret_key"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path} lacks {exc}") from None


def ensure_credentials(paths: StackPaths) -> Credentials:
    """The stack's credentials, generated and written (0600) the first time; also writes
    the Airflow users' passwords file that SimpleAuthManager reads."""
    credentials = load_credentials(paths.home)
    if credentials is None:
        credentials = Credentials.generate()
        document = {
            "passwords": credentials.passwords,
            "jwt_secret": credentials.jwt_secret,
            "secret_key": credentials.secret_key,
        }
        _write_private(paths.credentials, json.dumps(document, indent=2) + "\n")
    _write_private(paths.passwords, json.dumps(credentials.passwords) + "\n")
    return credentials


def api_root(settings: Settings) -> str:
    """``http://127.0.0.1:<port>``: the api-server of the embedded stack."""
    return f"http://127.0.0.1:{settings.port}"


def stack_environment(
    settings: Settings, credentials: Credentials, base: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of every process of the stack (``base``: os.environ by default)."""
    paths = StackPaths(settings.home)
    root = api_root(settings)
    # The stack is self-contained: Airflow configuration of the calling shell (another
    # AIRFLOW_HOME, database, executor) is not inherited, and mlbench settings are handed on
    # from ``settings`` (a worker token or pod name of the caller must not leak in).
    env = {
        key: value
        for key, value in (os.environ if base is None else base).items()
        if not key.startswith(("AIRFLOW", "MLBENCH_"))
    }
    connection = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": settings.port,
        "schema": "http",
        "login": DAG_USER,
        "password": credentials.mlbench_password,
        "extra": {"path": "/mlbench"},
    }
    env.update(
        {
            "AIRFLOW_HOME": str(paths.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.plugins_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin,{DAG_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(paths.passwords),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{root}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(settings.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": root,
            "AIRFLOW__API__SECRET_KEY": credentials.secret_key,
            "AIRFLOW__API_AUTH__JWT_SECRET": credentials.jwt_secret,
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # Task heartbeats go to the api-server: a task survives it being away (restarted)
            # as long as the workers wait for it (MLBENCH_API_WAIT), instead of being killed
            # after 3 failed heartbeats (~25 s).
            "AIRFLOW__WORKERS__MAX_FAILED_HEARTBEATS": str(
                max(3, math.ceil(settings.api_wait / HEARTBEAT_S))
            ),
            # twice that before the scheduler takes a silent task for lost, as the chart
            # does (airflow.apiAwaySeconds, at least 30)
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(
                max(60, math.ceil(2 * settings.api_wait))
            ),
            "AIRFLOW_CONN_MLBENCH_API": json.dumps(connection),
            "MLBENCH_HOME": str(settings.home),
            "MLBENCH_API_URL": f"{root}/mlbench",
            "MLBENCH_AUTH": str(settings.auth),
            "MLBENCH_MAX_WORKERS": str(settings.max_workers),
            "MLBENCH_DAG_ID": settings.dag_id,
            "MLBENCH_BACKEND": str(settings.backend),
            "MLBENCH_NAMESPACE": settings.namespace,
            "MLBENCH_IMAGE_REGISTRY": settings.image_registry,
            "MLBENCH_PORT": str(settings.port),
            "MLBENCH_STEP_DELAY": str(settings.step_delay),
            "MLBENCH_STEP_DELAY_BENCHMARKS": settings.step_delay_benchmarks,
            "MLBENCH_RECONCILE_SECONDS": str(settings.reconcile_seconds),
            "MLBENCH_API_WAIT": str(settings.api_wait),
            "MLBENCH_NIGHTLY_SCHEDULE": settings.nightly_schedule,
            "MLBENCH_NIGHTLY_POLL_INTERVAL": str(settings.nightly_poll_interval),
            "MLBENCH_DAGS_FOLDER": str(settings.dags_folder),
            "MLBENCH_PLUGINS_FOLDER": str(settings.plugins_folder),
        }
    )
    if settings.database_url:
        env["MLBENCH_DATABASE_URL"] = settings.database_url
    if settings.data_dir is not None:
        env["MLBENCH_DATA_DIR"] = str(settings.data_dir)
    if settings.data_url:
        env["MLBENCH_DATA_URL"] = settings.data_url
    if settings.data_checksums:
        env["MLBENCH_DATA_CHECKSUMS"] = json.dumps(settings.data_checksums)
    if settings.nightly_suite is not None:
        env["MLBENCH_NIGHTLY_SUITE"] = str(settings.nightly_suite)
    if settings.run_defaults:
        env["MLBENCH_RUN_DEFAULTS"] = json.dumps(settings.run_defaults)
    if settings.cpu_capacity is not None:
        env["MLBENCH_CPU_CAPACITY"] = str(settings.cpu_capacity)
    return env
