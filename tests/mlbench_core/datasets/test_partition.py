"""Partitions, shards and contiguous chunks; mini-batches."""

from __future__ import annotations

import pytest
import torch

from mlbench_core.datasets import Batches, augment, contiguous, partition, shard


@pytest.mark.parametrize(("n", "world_size"), [(10, 1), (10, 3), (1437, 4), (8, 8)])
def test_partitions_are_disjoint_equal_complete_and_repeatable(n, world_size):
    parts = [partition(n, r, world_size, seed=11) for r in range(world_size)]
    assert {len(p) for p in parts} == {n // world_size}
    together = torch.cat(parts)
    assert len(set(together.tolist())) == len(together)  # disjoint
    assert len(together) == n - n % world_size  # all but the remainder
    assert all(torch.equal(p, partition(n, r, world_size, seed=11)) for r, p in enumerate(parts))
    if world_size > 1:
        assert not torch.equal(parts[0], partition(n, 0, world_size, seed=12))


def test_bad_ranks_and_too_few_samples_are_refused():
    for make in (lambda: partition(10, 2, 2, 0), lambda: contiguous(10, -1, 2)):
        with pytest.raises(ValueError, match="rank"):
            make()
    with pytest.raises(ValueError, match="cannot be shared"):
        contiguous(1, 0, 2)


def test_shards_cover_every_sample_once():
    shards = [shard(359, r, 3) for r in range(3)]
    assert sorted(torch.cat(shards).tolist()) == list(range(359))


def test_contiguous_chunks_are_in_order_and_of_equal_length():
    stream = torch.arange(103)
    chunks = [stream[contiguous(len(stream), r, 4)] for r in range(4)]
    assert [len(c) for c in chunks] == [25] * 4
    assert torch.equal(torch.cat(chunks), stream[:100])


def test_batches_reshuffle_each_epoch_and_apply_the_transform_reproducibly():
    x = torch.randint(0, 256, (50, 3, 32, 32), dtype=torch.uint8)
    y = torch.arange(50)

    def epochs(seed: int) -> list[list[torch.Tensor]]:
        loader = Batches(x, y, 16, shuffle=True, seed=seed, transform=augment)
        return [[b for _, b in loader] for _ in range(2)], [xb for xb, _ in loader]

    (first, second), images = epochs(seed=3)
    assert [len(b) for b in first] == [16, 16, 16, 2]
    assert sorted(torch.cat(first).tolist()) == list(range(50))
    assert not torch.equal(torch.cat(first), torch.cat(second))
    again, again_images = epochs(seed=3)
    assert all(torch.equal(a, b) for a, b in zip(again[0], first, strict=True))
    assert images[0].dtype == torch.float32 and images[0].shape == (16, 3, 32, 32)
    assert all(torch.equal(a, b) for a, b in zip(images, again_images, strict=True))


def test_batches_in_order_without_shuffle_and_mismatched_lengths_refused():
    loader = Batches(torch.zeros(5, 2), torch.arange(5), 2)
    assert len(loader) == 3
    assert [b.tolist() for _, b in loader] == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError):
        Batches(torch.zeros(4, 2), torch.arange(5), 2)
