"""Seeding and the run record."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from importlib import metadata

import numpy as np
import psutil
import pytest
import torch

from harness.environment import REPO
from mlbench_core.worker.reproducibility import data_source, record, seed_everything


def _draws() -> tuple:
    return (
        [random.random() for _ in range(3)],
        np.random.rand(3).tolist(),
        torch.rand(3).tolist(),
        torch.nn.Dropout(0.5)(torch.ones(8)).tolist(),
    )


@pytest.fixture
def restore_determinism():
    saved = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    yield
    seed_everything(0, deterministic=False)
    os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    if saved is not None:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved


def test_the_same_seed_draws_the_same_numbers(restore_determinism):
    settings = seed_everything(42)
    first = _draws()
    seed_everything(42)
    assert _draws() == first
    seed_everything(43)
    assert _draws() != first
    assert settings["seed"] == 42 and settings["deterministic"] is False
    assert settings["deterministic_algorithms"] is False
    assert not torch.are_deterministic_algorithms_enabled()


def test_deterministic_mode_is_applied_and_reported(restore_determinism):
    settings = seed_everything(1, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert settings == {
        "seed": 1,
        "deterministic": True,
        "deterministic_algorithms": True,
        "deterministic_warn_only": True,
        "cudnn_deterministic": True,
        "cudnn_benchmark": False,
        "cublas_workspace_config": ":4096:8",
        "python_hash_seed": os.environ.get("PYTHONHASHSEED"),
    }
    # Switching it off again leaves nothing behind.
    off = seed_everything(1)
    assert not torch.are_deterministic_algorithms_enabled()
    assert off["cudnn_deterministic"] is False


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "3"])
def test_bad_seeds_are_refused(seed):
    with pytest.raises(ValueError, match="seed"):
        seed_everything(seed)


def test_data_source_lists_sizes_and_checksums(tmp_path):
    file = tmp_path / "train.bin"
    file.write_bytes(b"mlbench" * 1000)
    data = data_source("file", [file], url=None)
    assert data == {
        "source": "file",
        "files": [
            {
                "filename": "train.bin",
                "size": 7000,
                "sha256": hashlib.sha256(b"mlbench" * 1000).hexdigest(),
            }
        ],
        "url": None,
    }
    assert data_source("synthetic", seed=3) == {"source": "synthetic", "files": [], "seed": 3}


def test_the_record_is_json_with_real_values(tmp_path):
    file = tmp_path / "digits.npz"
    file.write_bytes(b"\x01\x02")
    settings = seed_everything(5)
    got = record(
        backend="gloo",
        world_size=2,
        seed=5,
        benchmark="0a",
        hyperparameters={"lr": 0.1, "sizes": (1, 10), "bad": float("nan"), "dtype": torch.float16},
        data=data_source("bundled", [file]),
        deterministic=settings,
    )
    text = json.dumps(got, allow_nan=False)
    assert json.loads(text) == got
    assert set(got) == {
        "benchmark",
        "backend",
        "world_size",
        "seed",
        "deterministic",
        "hyperparameters",
        "data",
        "versions",
        "platform",
        "hardware",
        "threads",
        "date",
        "hostname",
    }
    assert (got["benchmark"], got["backend"], got["world_size"], got["seed"]) == (
        "0a",
        "gloo",
        2,
        5,
    )
    assert got["hyperparameters"] == {
        "lr": 0.1,
        "sizes": [1, 10],
        "bad": None,
        "dtype": "torch.float16",
    }
    assert got["deterministic"]["seed"] == 5
    assert got["data"]["files"][0]["sha256"] == hashlib.sha256(b"\x01\x02").hexdigest()

    versions = got["versions"]
    assert versions["torch"] == torch.__version__
    assert versions["numpy"] == np.__version__
    assert versions["python"] == platform.python_version()
    assert versions["mlbench"] == metadata.version("mlbench")
    assert versions["airflow"] == metadata.version("apache-airflow")
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert head and versions["mlbench_commit"].removesuffix("+dirty") == head  # a checkout

    assert got["platform"]["system"] == platform.system()
    assert got["platform"]["machine"] == platform.machine()
    hardware = got["hardware"]
    assert hardware["cpus_logical"] == psutil.cpu_count()
    assert hardware["memory_bytes"] == psutil.virtual_memory().total
    assert hardware["cpu_model"]
    if torch.cuda.is_available():
        assert hardware["gpu"]["count"] == torch.cuda.device_count()
    else:
        assert hardware["gpu"] is None
    assert got["threads"]["intra_op"] == torch.get_num_threads()
    when = datetime.fromisoformat(got["date"])
    assert when.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - when) < timedelta(minutes=1)
    assert got["hostname"] == platform.node()


def test_recording_imports_no_airflow():
    code = (
        "import sys; from mlbench_core.worker.reproducibility import record; "
        "r = record(backend='gloo', world_size=1, seed=0, benchmark='x', "
        "hyperparameters={}, data=None); "
        "print(r['versions']['airflow'], 'airflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [metadata.version("apache-airflow"), "False"]


def test_an_image_names_its_commit_and_outside_a_checkout_there_is_none(monkeypatch, tmp_path):
    from mlbench_core.worker import reproducibility

    assert reproducibility.source_commit({"MLBENCH_COMMIT": "abc123"}) == "abc123"
    # the package's folder is not in a checkout: no commit, no guess
    monkeypatch.setattr(reproducibility, "__file__", str(tmp_path / "a" / "b" / "x.py"))
    assert reproducibility.source_commit({}) is None
