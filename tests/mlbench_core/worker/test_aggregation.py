"""Gradient averaging across 2 real processes (gloo)."""

from __future__ import annotations

import torch

from tests.mlbench_core.worker.launch import Group


def test_averaged_gradients_are_the_mean_of_the_ranks_gradients(tmp_path):
    with Group(
        ["-m", "tests.mlbench_core.worker.ranks", "aggregate", str(tmp_path)], 2, tmp_path
    ) as group:
        assert group.wait(60) == [0, 0], group.output()
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    # The two ranks really had different gradients...
    assert not torch.equal(ranks[0]["before"][0], ranks[1]["before"][0])
    expected = [(a + b) / 2 for a, b in zip(ranks[0]["before"], ranks[1]["before"], strict=True)]
    for rank in ranks:
        after = rank["after"]
        assert len(after) == len(expected) + 1
        for got, want in zip(after, expected, strict=False):
            torch.testing.assert_close(got, want)
        # ...and the parameter without a gradient reduced as zeros.
        assert torch.equal(after[-1], torch.zeros(2))
        assert rank["communication"] > 0
