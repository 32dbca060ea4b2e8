"""Batches of a language model: consecutive windows of ``bptt`` steps over token streams."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from mlbench_core.datasets.wikitext2 import batchify, get_batch

__all__ = ["BpttBatches"]


class BpttBatches:
    """``(inputs (n, streams), targets (n * streams,))`` windows over ``tokens`` cut into
    ``streams`` parallel streams (:func:`batchify`), ``n = bptt`` except at the end.

    The window length is fixed (the AWD-LSTM reference draws it at random around ``bptt``):
    every rank then takes the same number of steps per epoch from streams of equal length,
    which the gradient all-reduce needs.
    """

    def __init__(self, tokens: torch.Tensor, streams: int, bptt: int) -> None:
        if bptt < 1:
            raise ValueError(f"bptt {bptt} is not positive")
        self.source = batchify(tokens, streams)
        if len(self.source) < 2:
            raise ValueError(
                f"{len(tokens)} tokens are too few for {streams} streams of at least 2 steps"
            )
        self.bptt = bptt

    def __len__(self) -> int:
        return -(-(len(self.source) - 1) // self.bptt)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, len(self.source) - 1, self.bptt):
            yield get_batch(self.source, i, self.bptt)
