"""Benchmark 0a: sizes, metrics, one rank in process, two real ranks over gloo."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.distributed as dist

from mlbench_core.benchmarks import allreduce
from tests.support.rank_group import Group


def test_sizes_are_log_spaced_from_one_to_the_maximum():
    full = allreduce.sizes()
    assert full[0] == 1 and full[-1] == 10**8
    assert full == sorted(set(full)) and all(isinstance(n, int) for n in full)
    assert len(full) == 8 * 4 + 1
    assert {10**k for k in range(9)} <= set(full)
    assert allreduce.sizes(1000, per_decade=1) == [1, 10, 100, 1000]
    assert allreduce.sizes(1) == [1]
    odd = allreduce.sizes(12345, per_decade=2)
    assert odd[0] == 1 and odd[-1] == 12345
    ratios = [b / a for a, b in zip(odd[1:], odd[2:], strict=False)]
    assert all(2 < r < 4 for r in ratios)  # about sqrt(10) apart
    for bad in ({"max_elements": 0}, {"per_decade": 0}):
        with pytest.raises(ValueError):
            allreduce.sizes(**bad)


ROW = {
    "dtype": "float16",
    "elements": 1000,
    "bytes": 2000,
    "world_size": 4,
    "repeats": 5,
    "median_s": 1e-6,
    "p10_s": 5e-7,
    "p90_s": 2e-6,
    "min_s": 4e-7,
    "algbw_bytes_per_s": 2e9,
    "busbw_bytes_per_s": 3e9,
    "skipped": None,
}


def test_a_row_becomes_metrics_to_post():
    metrics = allreduce.to_metrics(ROW)
    assert [(name, value) for name, value, _ in metrics] == [
        ("allreduce_latency_us", pytest.approx(1.0)),
        ("allreduce_latency_p10_us", pytest.approx(0.5)),
        ("allreduce_latency_p90_us", pytest.approx(2.0)),
        ("allreduce_algbw_gbit_s", pytest.approx(16.0)),
        ("allreduce_busbw_gbit_s", pytest.approx(24.0)),
    ]
    assert all(
        meta == {"dtype": "float16", "elements": 1000, "bytes": 2000} for *_, meta in metrics
    )
    assert allreduce.to_metrics({**ROW, "skipped": "too big", "median_s": None}) == []


@pytest.fixture
def group_of_one():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_one_rank_times_the_no_op(group_of_one):
    rows = allreduce.run(0, 1, sizes=[10, 1, 10], dtypes=(torch.float64,), warmup=1, repeats=3)
    assert [r["elements"] for r in rows] == [1, 10]
    for row in rows:
        assert row["median_s"] > 0 and row["busbw_bytes_per_s"] == 0.0
        assert row["bytes"] == row["elements"] * 8
    with pytest.raises(ValueError, match="world size"):
        allreduce.run(0, 2, sizes=[1], warmup=0, repeats=1)
    with pytest.raises(ValueError, match="repeats"):
        allreduce.run(0, 1, sizes=[1], warmup=0, repeats=0)


def test_an_injected_step_delay_is_inside_the_timing_and_the_step_times_are_kept(group_of_one):
    rows = allreduce.run(
        0, 1, sizes=[1, 100], dtypes=(torch.float32, torch.float64), warmup=0, repeats=4,
        step_delay=0.01,
    )  # fmt: skip
    assert all(min(r["times_s"]) >= 0.01 for r in rows)
    steps = allreduce.step_times(rows)
    # the largest size of the first data type, each repetition a step
    assert steps == {
        "seconds": [round(t, 9) for t in rows[1]["times_s"]],
        "steps": 4,
        "stride": 1,
        "of": "float32 x 100",
    }
    assert allreduce.step_times([{**rows[0], "times_s": [], "skipped": "no"}]) is None


def test_no_process_group_is_an_error():
    with pytest.raises(RuntimeError, match="process group"):
        allreduce.run(0, 1, sizes=[1], warmup=0, repeats=1)


def _check_measured(row: dict) -> None:
    n = row["world_size"]
    assert row["skipped"] is None and row["repeats"] == 3
    assert 0 < row["min_s"] <= row["p10_s"] <= row["median_s"] <= row["p90_s"]
    assert len(row["times_s"]) == 3 and sorted(row["times_s"])[1] == row["median_s"]
    # each rank's own median is no longer than the slowest rank's, repetition by repetition
    assert 0 < row["rank_median_min_s"] <= row["rank_median_max_s"] <= row["median_s"] * 1.0001
    assert math.isclose(row["algbw_bytes_per_s"], row["bytes"] / row["median_s"])
    assert math.isclose(row["busbw_bytes_per_s"], row["algbw_bytes_per_s"] * 2 * (n - 1) / n)


def test_two_ranks_over_gloo(tmp_path):
    with Group(["-m", "tests.support.suite_ranks", "bench", str(tmp_path)], 2, tmp_path) as group:
        assert group.wait(60) == [0, 0], group.output()
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    rows = rank0["rows"]
    assert rows == rank1["rows"]  # times are maxima over the ranks: every rank agrees
    assert rank0["seen"] == len(rows) == 9
    by = {(r["dtype"], r["elements"]): r for r in rows}
    for dtype, size in (("float32", 4), ("float16", 2)):
        for elements in (1, 1000, 100000):
            row = by[dtype, elements]
            assert row["bytes"] == elements * size and row["world_size"] == 2
            _check_measured(row)  # gloo (torch 2.13) does reduce float16 on CPU
    for elements in (1, 1000, 100000):
        row = by["uint16", elements]
        assert row["median_s"] is None and row["repeats"] == 0
        assert "gloo cannot all-reduce uint16" in row["skipped"]
        assert allreduce.to_metrics(row) == []
    assert len(allreduce.to_metrics(by["float32", 1000])) == 5

    # Rank 1's budget (4000 bytes) is the one both obey.
    budgeted = {r["elements"]: r for r in rank0["budgeted"]}
    assert rank0["budgeted"] == rank1["budgeted"]
    assert budgeted[1000]["skipped"] is None and budgeted[1000]["repeats"] == 2
    assert budgeted[100000]["skipped"] == (
        "400000 bytes exceed the memory budget of 4000 bytes per tensor"
    )
