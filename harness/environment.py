"""The test environment: a private AIRFLOW_HOME and MLBENCH_HOME, set before Airflow loads.

Airflow reads its configuration when first imported, so ``tests/conftest.py`` calls
:func:`configure` at import time, before any test module imports Airflow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache"
ADMIN = ("admin", "mlbench-test-admin")
VENV_BIN = Path(sys.executable).parent


def configure() -> Path:
    """Point Airflow and mlbench at fresh private homes; returns the temporary root."""
    root = Path(tempfile.mkdtemp(prefix="mlbench-tests-"))
    airflow_home = root / "airflow"
    airflow_home.mkdir()
    passwords = airflow_home / "passwords.json"
    passwords.write_text(json.dumps({ADMIN[0]: ADMIN[1]}))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN[0]}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API_AUTH__JWT_SECRET": "mlbench-tests-jwt-secret-" + "0123456789abcdef" * 4,
            "AIRFLOW__API__SECRET_KEY": "mlbench-tests-secret-key",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "MLBENCH_HOME": str(root / "mlbench"),
            # Nothing is downloaded in tests: a dataset that is not made by the test itself
            # fails fast, locally, instead of reaching the internet.
            "MLBENCH_DATA_DIR": str(root / "data"),
            "MLBENCH_DATA_URL": "http://127.0.0.1:9/no-downloads-in-tests",
            # Tests reconcile when they mean to (POST /api/runs/reconcile): a background
            # round could end the runs they attach to made-up DAG runs.
            "MLBENCH_RECONCILE_SECONDS": "0",
        }
    )
    os.environ.pop("MLBENCH_DATABASE_URL", None)
    os.environ.pop("MLBENCH_AUTH", None)
    return root


def airflow_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the ``airflow`` CLI of this venv with the test environment."""
    return subprocess.run(
        [str(VENV_BIN / "airflow"), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


def migrate_airflow_db() -> None:
    """Create Airflow's SQLite metadata DB, from a cached migrated copy when there is one."""
    import airflow

    db = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    template = CACHE / f"airflow-{airflow.__version__}.db"
    if template.exists():
        shutil.copy(template, db)
    else:
        airflow_cli("db", "migrate")
        CACHE.mkdir(exist_ok=True)
        shutil.copy(db, template.with_suffix(".tmp"))
        template.with_suffix(".tmp").rename(template)
    airflow_cli("dags", "reserialize")
