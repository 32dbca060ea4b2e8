"""Aggregation strategies across 2 real processes (gloo)."""

from __future__ import annotations

import pytest
import torch

from tests.support.rank_group import Group


def run_step(tmp_path, strategy: str) -> list[dict]:
    args = ["-m", "tests.support.ranks", f"aggregate-{strategy}", str(tmp_path)]
    with Group(args, 2, tmp_path) as group:
        assert group.wait(60) == [0, 0], group.output()
    return [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]


@pytest.mark.parametrize("strategy", ["allreduce", "allreduce-buckets", "ddp"])
def test_aggregated_gradients_are_the_mean_of_the_ranks_gradients(tmp_path, strategy):
    ranks = run_step(tmp_path, strategy)
    # The two ranks really had different gradients...
    assert not torch.equal(ranks[0]["before"][0], ranks[1]["before"][0])
    expected = [(a + b) / 2 for a, b in zip(ranks[0]["before"], ranks[1]["before"], strict=True)]
    for rank in ranks:
        for got, want in zip(rank["after"], expected, strict=True):
            torch.testing.assert_close(got, want)
        if strategy != "ddp":  # ...parameters without a gradient reduced as zeros...
            assert torch.equal(rank["after"][-1], torch.zeros(2))
            assert torch.equal(rank["after"][-2], torch.zeros(2, 2))
    # ...and both ranks took the same step.
    for a, b in zip(ranks[0]["params_after"], ranks[1]["params_after"], strict=True):
        torch.testing.assert_close(a, b)


def test_allreduce_carries_the_extras_summed_and_splits_buckets(tmp_path):
    ranks = run_step(tmp_path, "allreduce-buckets")
    assert [r["summed"] for r in ranks] == [[3.0, 20.0], [3.0, 20.0]]
    assert ranks[0]["buckets"] == 6  # one per parameter tensor with 16-byte buckets
    whole = run_step(tmp_path, "allreduce")
    assert whole[0]["buckets"] == 1


def test_ddp_and_gossip_leave_the_extras_to_the_caller(tmp_path):
    assert [r["summed"] for r in run_step(tmp_path, "ddp")] == [None, None]


def test_gossip_averages_parameters_with_the_neighbour_after_the_step(tmp_path):
    ranks = run_step(tmp_path, "gossip")
    # Each rank stepped on its own gradients (no averaging)...
    for rank in ranks:
        for got, own in zip(rank["after"], rank["before"], strict=True):
            torch.testing.assert_close(got, own)
    # ...then both hold the mean of the two stepped models (two ranks: one neighbour each).
    stepped = [
        [p0 - 0.5 * g for p0, g in zip(r["params_before"], r["before"], strict=True)] for r in ranks
    ]
    for rank in ranks:
        for got, a, b in zip(rank["params_after"], *stepped, strict=True):
            torch.testing.assert_close(got, (a + b) / 2)
    assert ranks[0]["summed"] is None
