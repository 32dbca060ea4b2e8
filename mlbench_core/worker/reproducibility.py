"""Seeding, and a record of everything a result depends on.

:func:`seed_everything` seeds every global random generator a benchmark may draw from and
optionally switches torch to deterministic kernels. :func:`record` describes a run for its
result: software versions, platform, hardware, threads, backend and world size, seed,
hyperparameters, the data used (with checksums, see :func:`data_source`), date and host. It
returns plain JSON data (``json.dumps`` works on it, without NaN or infinities), and imports
no Airflow: the Airflow version is read from the installed package's metadata.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import random
import socket
import subprocess
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch

__all__ = ["data_source", "file_digest", "record", "seed_everything"]

SEED_LIMIT = 2**32  # NumPy's global generator takes seeds below this
CUBLAS_WORKSPACE = ":4096:8"  # what cuBLAS needs for deterministic results (CUDA >= 10.2)


def seed_everything(seed: int, deterministic: bool = False) -> dict[str, Any]:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA
    device) with ``seed``; the settings now in force.

    ``deterministic``: ``torch.use_deterministic_algorithms(True, warn_only=True)`` (an
    operation without a deterministic kernel warns instead of failing), cuDNN deterministic
    and not benchmarking, and ``CUBLAS_WORKSPACE_CONFIG`` set for cuBLAS unless already set
    (it must be set before the first cuBLAS call to take effect). False switches the first
    two back off, so a later call never inherits an earlier one's choice. Neither touches
    ``PYTHONHASHSEED``, which only takes effect at interpreter start; it is reported.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"seed must be an integer in [0, {SEED_LIMIT}), not {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
    return {
        "seed": seed,
        "deterministic": deterministic,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "python_hash_seed": os.environ.get("PYTHONHASHSEED"),
    }


# -- data --------------------------------------------------------------------------------------


def file_digest(file: Path | str, chunk: int = 1 << 20) -> str:
    """The SHA-256 of ``file``'s bytes, in hex."""
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def data_source(source: str, files: Iterable[Path | str] = (), **details: Any) -> dict[str, Any]:
    """A ``data`` entry for :func:`record`: where the data came from (typically ``"file"``,
    ``"download"``, ``"synthetic"`` or ``"bundled"``), each file's name, size and SHA-256,
    and any ``details`` (a URL, a generator's seed, ...)."""
    listed = []
    for file in files:
        file = Path(file)
        listed.append(
            {"filename": file.name, "size": file.stat().st_size, "sha256": file_digest(file)}
        )
    return {"source": source, "files": listed, **details}


# -- the record --------------------------------------------------------------------------------


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def source_commit(env: Mapping[str, str] | None = None) -> str | None:
    """The git commit of the mlbench source this process runs: ``MLBENCH_COMMIT`` where it is
    set (an image records it when it is built), else ``git rev-parse HEAD`` of the checkout
    the package lives in, with ``+dirty`` when that checkout has uncommitted changes to
    tracked files; None outside a checkout or without git."""
    env = os.environ if env is None else env
    if env.get("MLBENCH_COMMIT"):
        return env["MLBENCH_COMMIT"]
    source = Path(__file__).resolve().parents[2]
    if not (source / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def _versions() -> dict[str, Any]:
    versions: dict[str, Any] = {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "mlbench": _version("mlbench"),
        "mlbench_commit": source_commit(),
        "airflow": _version("apache-airflow"),
        "cuda": torch.version.cuda,
        "cudnn": None,
        "nccl": None,
    }
    if torch.cuda.is_available():
        versions["cudnn"] = torch.backends.cudnn.version()
        try:
            nccl = torch.cuda.nccl.version()
            versions["nccl"] = ".".join(map(str, nccl)) if isinstance(nccl, tuple) else nccl
        except (AttributeError, RuntimeError):
            pass
    return versions


def _platform() -> dict[str, Any]:
    try:
        distro = platform.freedesktop_os_release().get("PRETTY_NAME")
    except OSError:
        distro = None
    return {
        "system": platform.system(),
        "release": platform.release(),
        "version": platform.version(),
        "machine": platform.machine(),
        "distribution": distro,
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def _usable_cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on every OS
        return os.cpu_count()


def _gpus() -> dict[str, Any] | None:
    if not torch.cuda.is_available():
        return None
    devices = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        devices.append(
            {
                "name": props.name,
                "memory_bytes": int(props.total_memory),
                "capability": f"{props.major}.{props.minor}",
            }
        )
    return {"count": len(devices), "cuda": torch.version.cuda, "devices": devices}


def _hardware() -> dict[str, Any]:
    return {
        "cpu_model": _cpu_model(),
        "cpus_logical": psutil.cpu_count(logical=True),
        "cpus_physical": psutil.cpu_count(logical=False),
        "cpus_usable": _usable_cpus(),
        "memory_bytes": int(psutil.virtual_memory().total),
        "gpu": _gpus(),
    }


def _jsonable(value: Any) -> Any:
    """``value`` as JSON data: containers recursively, non-finite floats as None, tensors
    and NumPy scalars as numbers or lists, anything else as its ``str``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [_jsonable(v) for v in items]
    if isinstance(value, torch.Tensor | np.ndarray | np.generic):
        return _jsonable(value.tolist())
    if isinstance(value, Path):
        return str(value)
    return str(value)


def record(
    *,
    backend: str,
    world_size: int,
    seed: int,
    benchmark: str,
    hyperparameters: Mapping[str, Any],
    data: Mapping[str, Any] | None,
    deterministic: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything this run's result depends on, as JSON data.

    ``deterministic``: what :func:`seed_everything` returned; ``data``: typically
    :func:`data_source`'s answer. Keys: ``benchmark``, ``backend``, ``world_size``, ``seed``,
    ``deterministic``, ``hyperparameters``, ``data``, ``versions`` (python, torch, numpy,
    mlbench, mlbench_commit (:func:`source_commit`), airflow, cuda, cudnn, nccl; None where
    absent), ``platform``, ``hardware`` (CPU
    model and counts, memory, ``gpu``: None without CUDA), ``threads`` (torch's intra- and
    inter-op), ``date`` (UTC, ISO 8601), ``hostname``.
    """
    return _jsonable(
        {
            "benchmark": benchmark,
            "backend": backend,
            "world_size": world_size,
            "seed": seed,
            "deterministic": deterministic,
            "hyperparameters": hyperparameters,
            "data": data,
            "versions": _versions(),
            "platform": _platform(),
            "hardware": _hardware(),
            "threads": {
                "intra_op": torch.get_num_threads(),
                "inter_op": torch.get_num_interop_threads(),
            },
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "hostname": socket.gethostname(),
        }
    )
