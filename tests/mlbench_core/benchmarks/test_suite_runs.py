"""Each benchmark of the suite for a few steps: 2 real worker processes over gloo, the real API,
dataset files in the official formats downloaded from a local mirror and verified."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlbench_core.api import ApiClient
from mlbench_core.engine.tracker import PHASES
from tests.mlbench_core.datasets import formats
from tests.support.mirror import serve
from tests.support.rank_group import Group, worker_args


@dataclass
class Outcome:
    result: dict[str, Any]
    record: dict[str, Any]
    series: dict[str, list[dict[str, Any]]]
    output: str


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store_url(tmp_path) -> str:
    """SQLite only: the store is not what these tests are about (the API tests cover both)."""
    return f"sqlite:///{tmp_path / 'mlbench.db'}"


@pytest.fixture(scope="module")
def mirror_files(tmp_path_factory) -> Path:
    """The three datasets, tiny, in their official formats and file names."""
    root = tmp_path_factory.mktemp("suite-mirror")
    archive, *_ = formats.cifar10_set(seed=1, per_batch=32, n_test=40)
    (root / "cifar-10-python.tar.gz").write_bytes(archive)
    rng = np.random.default_rng(2)
    for name, rows in (("epsilon_normalized.bz2", 200), ("epsilon_normalized.t.bz2", 60)):
        x = rng.normal(size=(rows, 2000)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        y = np.where(x[:, 0] > 0, 1, -1)  # a learnable label
        (root / name).write_bytes(formats.libsvm_bz2(x, y))
    words = [f"w{i}" for i in range(40)]
    lines = [" ".join(rng.choice(words, 12)) for _ in range(120)]
    text = "\n".join(lines) + "\n"
    (root / "wikitext-2-v1.zip").write_bytes(formats.wikitext2_zip(text, text[:2000], text[:800]))
    return root


def run_benchmark(
    live_server: str,
    admin_token: str,
    tmp_path: Path,
    mirror_files: Path,
    name: str,
    benchmark: str,
    *extra: str,
) -> Outcome:
    url = f"{live_server}/mlbench"
    checksums = {f.name: f"sha256:{sha256(f)}" for f in mirror_files.iterdir()}
    with serve(mirror_files) as mirror, ApiClient(url, token=admin_token) as admin:
        run = admin.create_run(name, 2, benchmark=benchmark)
        token = admin.issue_worker_token(run["id"])
        env = {
            "MLBENCH_API_URL": url,
            "MLBENCH_API_TOKEN": token,
            "MLBENCH_DATA_DIR": str(tmp_path / "data"),  # empty: every file is downloaded
            "MLBENCH_DATA_URL": mirror.url,
            "MLBENCH_DATA_CHECKSUMS": json.dumps(checksums),
        }
        args = worker_args(run["id"], benchmark, "--timeout", "60", *extra)
        with Group(args, 2, tmp_path, env=env) as group:
            assert group.wait(240) == [0, 0], group.output()
        got = admin.get_run(run["id"])
        series = admin.get_run_metrics(run["id"], metadata=True)
    output = group.output()
    assert "Traceback" not in output, output
    return Outcome(got["result"], got["record"], series, output)


def check_training(outcome: Outcome, benchmark: str, metric: str, steps: int) -> None:
    result, record, series = outcome.result, outcome.record, outcome.series
    assert result["benchmark"] == benchmark and result["epochs"] == 1
    assert result["steps_per_epoch_limit"] == steps
    assert result["samples"] > 0 and result["throughput"] > 0
    assert set(result["phases"]) == set(PHASES)
    for phase in ("batch_load", "fwd_pass", "comp_loss", "backprop", "agg", "opt_step"):
        assert result["phases"][phase] > 0, phase
    assert {f"val_{metric}", "val_loss", "throughput", "time_agg", "time_fwd_pass"} <= set(series)
    assert record["benchmark"] == benchmark and record["world_size"] == 2
    assert record["backend"] == "gloo" and record["hyperparameters"]["overridden"]


def check_files(record: dict[str, Any], mirror_files: Path, names: list[str]) -> None:
    data = record["data"]
    assert data["source"] == "file"
    files = {f["filename"]: f for f in data["files"]}
    assert sorted(files) == sorted(names)
    for name in names:
        assert files[name]["sha256"] == sha256(mirror_files / name)
        assert files[name]["verified"] == f"sha256:{sha256(mirror_files / name)}"
        assert files[name]["url"].startswith("http://127.0.0.1:")


@pytest.mark.parametrize("aggregation", ["allreduce", "ddp"])
def test_1a_resnet20_on_cifar10(
    live_server, admin_token, store, tmp_path, mirror_files, aggregation
):
    outcome = run_benchmark(
        live_server,
        admin_token,
        tmp_path,
        mirror_files,
        f"suite-1a-{aggregation}",
        "1a",
        "--epochs", "1", "--steps", "2", "--set", "batch_size=16",
        "--aggregation", aggregation,
    )  # fmt: skip
    check_training(outcome, "1a", "top1", 2)
    assert outcome.result["aggregation"] == aggregation
    assert outcome.record["hyperparameters"]["batch_size"] == 16
    check_files(outcome.record, mirror_files, ["cifar-10-python.tar.gz"])


def test_2a_logistic_regression_on_epsilon(live_server, admin_token, store, tmp_path, mirror_files):
    outcome = run_benchmark(
        live_server, admin_token, tmp_path, mirror_files, "suite-2a", "2a",
        "--epochs", "1", "--steps", "3", "--set", "batch_size=20",
    )  # fmt: skip
    check_training(outcome, "2a", "accuracy", 3)
    check_files(
        outcome.record, mirror_files, ["epsilon_normalized.bz2", "epsilon_normalized.t.bz2"]
    )


def test_3a_awd_lstm_on_wikitext2(live_server, admin_token, store, tmp_path, mirror_files):
    outcome = run_benchmark(
        live_server, admin_token, tmp_path, mirror_files, "suite-3a", "3a",
        "--epochs", "1", "--steps", "3",
        "--set", "emb=16", "--set", "hidden=24", "--set", "layers=2",
        "--set", "batch_size=4", "--set", "bptt=8",
    )  # fmt: skip
    check_training(outcome, "3a", "perplexity", 3)
    assert outcome.record["hyperparameters"]["vocabulary"] == 41  # 40 words and <eos>
    assert 1 < outcome.result["final"]["val_perplexity"] < 1000
    check_files(outcome.record, mirror_files, ["wikitext-2-v1.zip"])


def test_synthetic_data_is_marked_and_has_no_goal(
    live_server, admin_token, store, tmp_path, mirror_files
):
    outcome = run_benchmark(
        live_server, admin_token, tmp_path, mirror_files, "suite-2a-synthetic", "2a",
        "--epochs", "1", "--steps", "2", "--synthetic",
    )  # fmt: skip
    assert outcome.result["synthetic"] is True and outcome.result["goal"] is None
    assert "reached" not in outcome.result and "time_to_target_s" not in outcome.result
    assert outcome.record["data"]["source"] == "synthetic"
    assert "(synthetic data)" in outcome.output


def test_0a_allreduce_for_a_few_sizes(live_server, admin_token, store, tmp_path, mirror_files):
    outcome = run_benchmark(
        live_server, admin_token, tmp_path, mirror_files, "suite-0a", "0a",
        "--light", "--set", "light_max_elements=1000", "--set", "repeats=3",
        "--set", "warmup=1",
    )  # fmt: skip
    rows = outcome.result["rows"]
    measured = [r for r in rows if not r["skipped"]]
    assert {r["dtype"] for r in measured} == {"float32", "float16"}
    assert sorted({r["elements"] for r in measured}) == [1, 10, 100, 1000]
    for row in measured:
        assert row["median_s"] > 0
        assert row["busbw_bytes_per_s"] == pytest.approx(row["algbw_bytes_per_s"])  # 2(n-1)/n
    latency = outcome.series["allreduce_latency_us"]
    assert len(latency) == len(measured)
    assert {json.loads(p["metadata"])["elements"] for p in latency} == {1, 10, 100, 1000}
    assert outcome.record["benchmark"] == "0a" and outcome.record["world_size"] == 2
    memory = outcome.result["memory"]
    assert [r["peak_bytes"] > 10 * 2**20 for r in memory["per_rank"]] == [True, True]
    assert memory["peak_bytes"] == max(r["peak_bytes"] for r in memory["per_rank"])
