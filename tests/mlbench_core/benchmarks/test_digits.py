"""The digits demo benchmark: data, split, partition, task."""

from __future__ import annotations

import pytest
import torch

from mlbench_core.benchmarks import REGISTRY, digits, get_benchmark
from mlbench_core.engine.trainer import TaskContext

SPEC = REGISTRY["digits"]


def test_data_is_the_bundled_set_split_80_20_the_same_way_each_time():
    x_train, y_train, x_val, y_val = digits.load()
    assert len(y_train) + len(y_val) == 1797
    assert len(y_val) == round(1797 * 0.2)
    assert x_train.shape[1] == 64 and x_train.dtype == torch.float32
    assert 0.0 <= float(x_train.min()) and float(x_train.max()) == 1.0
    assert set(y_train.tolist()) == set(range(10)) == set(y_val.tolist())
    again = digits.load()
    assert torch.equal(again[0], x_train) and torch.equal(again[3], y_val)


@pytest.mark.parametrize("world_size", [1, 2, 3, 7])
def test_partition_is_disjoint_equal_and_complete_but_a_remainder(world_size):
    n = 1438
    parts = [digits.partition(n, r, world_size, seed=5) for r in range(world_size)]
    assert {len(p) for p in parts} == {n // world_size}
    union = torch.cat(parts)
    assert len(set(union.tolist())) == len(union)  # disjoint
    left_out = set(range(n)) - set(union.tolist())
    assert len(left_out) == n % world_size < world_size  # complete but the remainder
    # Shuffled with the shared seed: the same on every rank, different for another seed.
    assert torch.equal(parts[0], digits.partition(n, 0, world_size, seed=5))
    assert not torch.equal(parts[0], digits.partition(n, 0, world_size, seed=6))


def test_partition_refuses_bad_ranks_and_too_few_samples():
    with pytest.raises(ValueError):
        digits.partition(10, 2, 2, seed=0)
    with pytest.raises(ValueError):
        digits.partition(1, 0, 2, seed=0)


def test_validation_shards_cover_the_set_once():
    shards = [digits.shard(359, r, 3) for r in range(3)]
    assert sorted(torch.cat(shards).tolist()) == list(range(359))


def test_batches_cover_the_partition_and_reshuffle_each_epoch():
    x = torch.arange(70.0).unsqueeze(1)
    y = torch.arange(70)
    batches = digits.Batches(x, y, 32, shuffle=True, seed=1)
    first = [b[1] for b in batches]
    second = [b[1] for b in batches]
    assert len(batches) == len(first) == 3 and [len(b) for b in first] == [32, 32, 6]
    assert sorted(torch.cat(first).tolist()) == list(range(70))
    assert not torch.equal(torch.cat(first), torch.cat(second))
    assert all(torch.equal(bx.squeeze(1).long(), by) for bx, by in batches)  # pairs kept
    again = [b[1] for b in digits.Batches(x, y, 32, shuffle=True, seed=1)]
    assert torch.equal(torch.cat(again), torch.cat(first))  # seeded


def test_task_per_rank_same_model_same_number_of_batches():
    tasks = [digits.build(TaskContext(rank=r, world_size=2, seed=3), SPEC) for r in (0, 1)]
    spec = get_benchmark("digits")
    assert tasks[0].goal == spec.goal and tasks[0].epochs == spec.epochs == 30
    assert len(tasks[0].train_loader) == len(tasks[1].train_loader) == -(-719 // 32)
    for a, b in zip(tasks[0].model.parameters(), tasks[1].model.parameters(), strict=True):
        assert torch.equal(a, b)
    light = digits.build(TaskContext(rank=0, world_size=1, light=True, epochs=4), SPEC)
    assert light.goal == spec.light_goal and light.epochs == 4
    x, y = next(iter(tasks[0].val_loader))
    assert tasks[0].model(x).shape == (len(y), 10)


def test_each_benchmark_names_its_implementation():
    from mlbench_core.benchmarks import allreduce, language, linear, vision

    loaded = {spec.id: spec.load() for spec in REGISTRY.values()}
    assert loaded == {
        "0a": allreduce.run,
        "1a": vision.build,
        "2a": linear.build,
        "3a": language.build,
        "digits": digits.build,
    }
    assert {spec.id for spec in REGISTRY.values() if spec.kind == "communication"} == {"0a"}
    assert "implementation" not in SPEC.model_dump()  # the API shows what, not which code
