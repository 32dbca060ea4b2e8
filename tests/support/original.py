"""The original mlbench-core 3.0.0 client side (``make original-client``), run in its own
environment: its ``python`` with only its own ``mlbench_core`` importable, never ours."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from harness.environment import REPO

ORIGINAL = REPO / ".venv-original"
PYTHON = ORIGINAL / "bin" / "python"
LIB = ORIGINAL / "original"


def available() -> str | None:
    """Why the original client cannot run here (None when it can)."""
    if not (PYTHON.exists() and (LIB / "mlbench_core" / "api.py").exists()):
        return f"the original mlbench-core is not in {ORIGINAL}: run `make original-client`"
    return None


def original_env(**extra: str) -> dict[str, str]:
    """The environment of an original-client process: ours without MLBENCH_*, AIRFLOW* and
    PYTHON* variables (nothing of ours leaks in), with its library first on the path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLBENCH_", "AIRFLOW", "PYTHON", "KUBERNETES_"))
    }
    return {**env, "PYTHONPATH": str(LIB), "PYTHONNOUSERSITE": "1", **extra}


def run_original(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    input: str | None = None,  # noqa: A002 - subprocess's name
    timeout: float = 120,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` of the original's environment (``-c CODE``, a script, ``-m``), in
    ``cwd`` (default: its library's folder; ``-c`` puts the working folder first on the
    path, and ours would shadow it from the repository's root)."""
    return subprocess.run(
        [str(PYTHON), *args],
        env=env or original_env(),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or LIB,
    )


# The original's console script (``mlbench = mlbench_core.cli:cli_group``).
CLI = ["-c", "import sys; from mlbench_core.cli import cli_group; sys.exit(cli_group())"]
