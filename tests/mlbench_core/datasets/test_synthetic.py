"""Synthetic stand-ins have the real data's shapes and dtypes, and follow the seed."""

from __future__ import annotations

import torch

from mlbench_core.datasets import (
    synthetic_cifar10,
    synthetic_epsilon,
    synthetic_tokens,
    synthetic_wikitext2,
)


def test_cifar10_shapes_dtypes_and_seed():
    images, labels = synthetic_cifar10(8, seed=1)
    assert images.shape == (8, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and 0 <= labels.min() and labels.max() < 10
    assert torch.equal(images, synthetic_cifar10(8, seed=1)[0])
    assert not torch.equal(images, synthetic_cifar10(8, seed=2)[0])


def test_epsilon_rows_have_unit_length_and_labels_are_0_or_1():
    x, y = synthetic_epsilon(16, seed=1)
    assert x.shape == (16, 2000) and x.dtype == y.dtype == torch.float32
    assert torch.allclose(x.norm(dim=1), torch.ones(16))
    assert set(y.tolist()) <= {0.0, 1.0}
    assert torch.equal(x, synthetic_epsilon(16, seed=1)[0])


def test_token_streams_and_corpus():
    tokens = synthetic_tokens(1000, 50, seed=1)
    assert tokens.dtype == torch.int64 and tokens.shape == (1000,) and tokens.max() < 50
    corpus = synthetic_wikitext2(3, vocab_size=100, sizes={"train": 500, "valid": 50, "test": 60})
    assert len(corpus.dictionary) == 100 and corpus.dictionary.word2idx["<eos>"] == 0
    assert [len(corpus.train), len(corpus.valid), len(corpus.test)] == [500, 50, 60]
    assert int(corpus.train.max()) < 100
    assert torch.equal(
        corpus.train,
        synthetic_wikitext2(3, vocab_size=100, sizes={"train": 500, "valid": 50, "test": 60}).train,
    )


def test_synthetic_batches_are_made_on_the_fly_reproducibly():
    from mlbench_core.datasets import SyntheticBatches, synthetic_epsilon

    loader = SyntheticBatches(synthetic_epsilon, 250, 100, seed=3)
    first = list(loader)
    assert len(loader) == len(first) == 3 and [len(y) for _, y in first] == [100, 100, 50]
    assert all(x.shape[1] == 2000 for x, _ in first)
    second = list(loader)  # another epoch: other data
    assert not torch.equal(first[0][0], second[0][0])
    again = SyntheticBatches(synthetic_epsilon, 250, 100, seed=3)
    assert torch.equal(next(iter(again))[0], first[0][0])  # same seed, same data
    resumed = SyntheticBatches(synthetic_epsilon, 250, 100, seed=3)
    resumed.load_state_dict(loader.state_dict())
    assert torch.equal(next(iter(resumed))[0], next(iter(loader))[0])
