"""Validation metrics: hand-computed values, and sums over ranks equal to the whole set's."""

from __future__ import annotations

import math

import pytest
import torch

from mlbench_core.engine.metrics import (
    Metric,
    accuracy,
    combine,
    f1,
    perplexity,
    top_k_accuracy,
)


def value(metric: Metric, output: torch.Tensor, target: torch.Tensor) -> float:
    return metric.finish(metric.sums(output, target))


SCORES = torch.tensor(
    [
        [0.1, 0.7, 0.2, 0.0],  # ranking 1 2 0 3
        [0.9, 0.0, 0.04, 0.06],  # ranking 0 3 2 1
        [0.3, 0.2, 0.4, 0.1],  # ranking 2 0 1 3
        [0.25, 0.1, 0.3, 0.35],  # ranking 3 2 0 1
    ]
)
LABELS = torch.tensor([1, 2, 0, 1])  # ranked 1st, 3rd, 2nd and 4th


def test_top_k_accuracy_by_hand():
    assert top_k_accuracy(1).sums(SCORES, LABELS) == [1.0, 4.0]
    assert value(top_k_accuracy(1), SCORES, LABELS) == 25.0
    assert value(top_k_accuracy(2), SCORES, LABELS) == 50.0
    assert value(top_k_accuracy(3), SCORES, LABELS) == 75.0
    assert value(top_k_accuracy(4), SCORES, LABELS) == 100.0
    assert top_k_accuracy(1).name == "top1" and top_k_accuracy(5).name == "top5"
    assert top_k_accuracy(5).higher_is_better
    with pytest.raises(ValueError):
        top_k_accuracy(0)


def test_top_k_takes_sequence_outputs():
    # (seq, batch, classes) scores against (seq, batch) targets, as a language model gives
    scores = SCORES.view(2, 2, 4)
    assert value(top_k_accuracy(1), scores, LABELS.view(2, 2)) == 25.0


def test_binary_accuracy_by_hand():
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0, 0.0])
    labels = torch.tensor([1, 0, 0, 0, 1])  # right, right, wrong, right, wrong (0 is negative)
    metric = accuracy()
    assert metric.name == "accuracy" and metric.higher_is_better
    assert metric.sums(logits, labels) == [3.0, 5.0]
    assert value(metric, logits, labels) == 60.0
    assert value(metric, logits.view(5, 1), labels * 2 - 1) == 60.0  # (n, 1) and {-1, +1}
    two_columns = torch.stack([-logits, logits], dim=1)
    assert value(metric, two_columns, labels.float()) == 60.0


def test_perplexity_by_hand():
    metric = perplexity()
    assert metric.name == "perplexity" and not metric.higher_is_better
    uniform = torch.zeros(3, 2, 4)  # every token has probability 1/4
    assert value(metric, uniform, torch.zeros(3, 2, dtype=torch.long)) == pytest.approx(4.0)
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]]))
    target = torch.tensor([0, 1])  # probabilities 1/2 and 1/4
    loss, tokens = metric.sums(logits, target)
    assert tokens == 2.0 and loss == pytest.approx(math.log(2) + math.log(4))
    assert metric.finish([loss, tokens]) == pytest.approx(1 / math.sqrt(0.5 * 0.25))


def test_binary_f1_by_hand():
    logits = torch.tensor([1.0, 2.0, -1.0, -2.0, 3.0])  # predicted 1 1 0 0 1
    labels = torch.tensor([1, 0, 1, 0, 1])
    metric = f1()
    assert metric.name == "f1" and metric.higher_is_better
    assert metric.sums(logits, labels) == [2.0, 1.0, 1.0]  # TP, FP, FN
    assert value(metric, logits, labels) == pytest.approx(100 * 4 / 6)
    # precision 2/3, recall 2/3: F1 is their harmonic mean
    assert math.isnan(value(metric, -torch.ones(3), torch.zeros(3)))  # no positives at all


@pytest.mark.parametrize(
    "metric", [top_k_accuracy(1), top_k_accuracy(5), accuracy(), perplexity(), f1()]
)
def test_no_data_is_nan_and_zeros_fit_the_size(metric):
    assert len(metric.zeros()) == metric.size
    assert math.isnan(metric.finish(metric.zeros()))


def test_sums_need_no_grad_mode():
    scores = SCORES.clone().requires_grad_()
    assert perplexity().sums(scores, LABELS)[1] == 4.0
    assert not scores.grad


def random_data(name: str, n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    if name in ("accuracy", "f1"):
        return torch.randn(n, generator=generator), torch.randint(0, 2, (n,), generator=generator)
    return torch.randn(n, 7, generator=generator), torch.randint(0, 7, (n,), generator=generator)


def rank_sums(metric: Metric, output: torch.Tensor, target: torch.Tensor, batch: int) -> list:
    """What one rank's validation does: the batch sums added up (zeros for no data)."""
    total = metric.zeros()
    for start in range(0, len(target), batch):
        sums = metric.sums(output[start : start + batch], target[start : start + batch])
        total = [t + s for t, s in zip(total, sums, strict=True)]
    return total


@pytest.mark.parametrize(
    "metric", [top_k_accuracy(1), top_k_accuracy(5), accuracy(), perplexity(), f1()]
)
def test_summing_over_uneven_ranks_equals_the_metric_of_all_the_data(metric):
    generator = torch.Generator().manual_seed(11)
    output, target = random_data(metric.name, 61, generator)
    whole = value(metric, output, target)
    shard_sizes = [23, 0, 5, 33]  # uneven, one rank with nothing
    bounds = torch.tensor([0, *shard_sizes]).cumsum(0).tolist()
    per_rank = [
        rank_sums(metric, output[a:b], target[a:b], batch=4)
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]
    assert combine(metric, per_rank) == pytest.approx(whole, rel=1e-9, abs=1e-9)
    # ...which the mean of each rank's own value is not
    own = [v for v in (metric.finish(s) for s in per_rank) if not math.isnan(v)]
    assert sum(own) / len(own) != pytest.approx(whole, rel=1e-6)


def test_combine_checks_its_input():
    assert math.isnan(combine(accuracy(), []))
    with pytest.raises(ValueError):
        combine(accuracy(), [[1.0, 2.0], [1.0]])
    assert combine(accuracy(), [[1.0, 2.0], [3.0, 6.0]]) == 50.0


def test_a_metric_without_size_has_no_zeros():
    metric = Metric("custom", lambda o, t: [0.0], lambda s: s[0])
    with pytest.raises(ValueError):
        metric.zeros()
