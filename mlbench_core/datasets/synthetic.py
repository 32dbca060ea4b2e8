"""Random data with each dataset's shapes and dtypes, for ``--synthetic`` throughput runs.

Seeded: the same seed gives the same data. Nothing is downloaded or read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from mlbench_core.datasets import cifar10, epsilon
from mlbench_core.datasets.batches import Transform
from mlbench_core.datasets.wikitext2 import EOS, UNK, Corpus, Dictionary

__all__ = [
    "SyntheticBatches",
    "synthetic_cifar10",
    "synthetic_epsilon",
    "synthetic_tokens",
    "synthetic_wikitext2",
]

WIKITEXT2_VOCAB = 33_278
WIKITEXT2_TOKENS = {"train": 2_088_628, "valid": 217_646, "test": 245_569}


def synthetic_cifar10(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random images uint8 ``(n, 3, 32, 32)`` and labels int64 in 0..9."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *cifar10.SHAPE), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, cifar10.N_CLASSES, (n,), generator=g, dtype=torch.int64)
    return images, labels


def synthetic_epsilon(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random samples: features float32 ``(n, 2000)`` of unit length (as epsilon's
    normalised rows are) and labels float32 0/1."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, epsilon.N_FEATURES, generator=g)
    x /= x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    y = torch.randint(0, 2, (n,), generator=g).to(torch.float32)
    return x, y


def synthetic_tokens(n: int, vocab_size: int, seed: int) -> torch.Tensor:
    """A stream of ``n`` random word indices (int64) below ``vocab_size``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (n,), generator=g, dtype=torch.int64)


def synthetic_wikitext2(
    seed: int,
    *,
    vocab_size: int = WIKITEXT2_VOCAB,
    sizes: dict[str, int] | None = None,
) -> Corpus:
    """A corpus of random token streams, by default with WikiText-2's vocabulary size and
    split lengths; its dictionary has ``<eos>``, ``<unk>`` and placeholder words."""
    if vocab_size < 2:
        raise ValueError(f"vocabulary size {vocab_size} is below 2")
    sizes = {**WIKITEXT2_TOKENS, **(sizes or {})}
    words = [EOS, UNK, *(f"w{i}" for i in range(vocab_size - 2))]
    dictionary = Dictionary({w: i for i, w in enumerate(words)}, words)
    streams = {
        split: synthetic_tokens(sizes[split], vocab_size, seed + k)
        for k, split in enumerate(("train", "valid", "test"))
    }
    return Corpus(dictionary, **streams)


class SyntheticBatches:
    """Batches of random data made as they are needed (nothing is held in memory): ``n``
    samples an epoch in batches of ``batch_size``, ``make(size, seed)`` giving one batch's
    ``(x, y)``; each batch has its own seed (from ``seed``, the epoch and its index), so the
    same loader seed gives the same data. ``transform`` as in :class:`Batches`."""

    def __init__(
        self,
        make: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]],
        n: int,
        batch_size: int,
        *,
        seed: int = 0,
        transform: Transform | None = None,
    ) -> None:
        if n < 1 or batch_size < 1:
            raise ValueError("need at least one sample and a positive batch size")
        self.make, self.n, self.batch_size, self.seed = make, n, batch_size, seed
        self.transform = transform
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.epoch += 1
        for index, start in enumerate(range(0, self.n, self.batch_size)):
            size = min(self.batch_size, self.n - start)
            x, y = self.make(size, (self.seed * 1_000_003 + self.epoch) * 100_003 + index)
            if self.transform is not None:
                x = self.transform(x, self.generator)
            yield x, y

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.generator.set_state(state["generator"])
