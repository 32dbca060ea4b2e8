"""Validation metrics that add up across batches and workers.

A :class:`Metric` turns each validation batch into a fixed-length list of sums (correct
predictions and samples, summed cross-entropy and tokens, true and false positives...). The
trainer adds these lists up over its batches, sums them over the ranks with one all-reduce,
and ``finish`` maps the global sums to the reported value. Because only sums cross the
network, the result is the metric of the whole validation set, whatever its split into
shards of uneven sizes: :func:`combine` is that computation without the network.

A metric with no data (all sums zero) is ``nan``, which the trainer neither posts nor
counts as reaching a goal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Metric", "accuracy", "combine", "f1", "perplexity", "top_k_accuracy"]


@dataclass(frozen=True)
class Metric:
    """A validation metric, reported as ``val_<name>``.

    ``sums(output, target)`` gives one batch's sums, a list of ``size`` floats; ``finish``
    maps the sums over all batches and ranks to the value; ``size`` (where known) lets a
    rank with no validation data still take part in the all-reduce with zeros.
    """

    name: str
    sums: Callable[[torch.Tensor, torch.Tensor], list[float]]
    finish: Callable[[list[float]], float]
    higher_is_better: bool = True
    size: int | None = None

    def zeros(self) -> list[float]:
        """The sums of no data."""
        if self.size is None:
            raise ValueError(f"metric {self.name!r} does not say how many sums it has")
        return [0.0] * self.size


def combine(metric: Metric, sums_per_rank: Iterable[Sequence[float]]) -> float:
    """The value from every rank's sums: added up elementwise (what the all-reduce does),
    then finished."""
    total: list[float] | None = None
    for sums in sums_per_rank:
        if total is None:
            total = [float(s) for s in sums]
        elif len(sums) != len(total):
            raise ValueError("every rank must give as many sums")
        else:
            total = [t + float(s) for t, s in zip(total, sums, strict=True)]
    if total is None:
        return math.nan
    return metric.finish(total)


def _ratio_percent(sums: list[float]) -> float:
    hits, count = sums
    return 100.0 * hits / count if count else math.nan


def _flat_logits(output: torch.Tensor) -> torch.Tensor:
    """Class scores ``(..., classes)`` as ``(samples, classes)``."""
    return output.reshape(-1, output.size(-1))


def top_k_accuracy(k: int = 1) -> Metric:
    """Percentage of samples whose target is among the ``k`` highest scores (``top<k>``).

    ``output``: scores ``(..., classes)``; ``target``: class indices ``(...)``. Ties at the
    ``k``-th score count as ``torch.topk`` picks them.
    """
    if k < 1:
        raise ValueError("k must be at least 1")

    def sums(output: torch.Tensor, target: torch.Tensor) -> list[float]:
        scores = _flat_logits(output.detach())
        labels = target.reshape(-1, 1)
        top = scores.topk(k, dim=1).indices
        return [float((top == labels).any(dim=1).sum()), float(labels.size(0))]

    return Metric(f"top{k}", sums, _ratio_percent, True, size=2)


def _predicted_positive(output: torch.Tensor) -> torch.Tensor:
    """Binary predictions as booleans: a logit above 0 (shape ``(n,)`` or ``(n, 1)``), or
    class 1 winning for two-column scores ``(n, 2)``."""
    if output.ndim > 1 and output.size(-1) == 2:
        return _flat_logits(output).argmax(dim=1) == 1
    return output.reshape(-1) > 0


def _positive(target: torch.Tensor) -> torch.Tensor:
    """Binary labels as booleans: above 0 is positive ({0, 1} and {-1, +1} both work)."""
    return target.reshape(-1) > 0


def accuracy() -> Metric:
    """Percentage of correct binary predictions (``accuracy``) from logits; see
    ``_predicted_positive`` for the output shapes taken."""

    def sums(output: torch.Tensor, target: torch.Tensor) -> list[float]:
        predicted, actual = _predicted_positive(output.detach()), _positive(target)
        return [float((predicted == actual).sum()), float(actual.numel())]

    return Metric("accuracy", sums, _ratio_percent, True, size=2)


def _perplexity(sums: list[float]) -> float:
    loss, tokens = sums
    return math.exp(loss / tokens) if tokens else math.nan


def perplexity() -> Metric:
    """``exp`` of the mean cross-entropy per token (``perplexity``; lower is better).

    ``output``: logits ``(..., vocab)``; ``target``: token ids ``(...)``. The sums are the
    summed cross-entropy (in nats) and the token count, so the mean is over all tokens of all
    ranks, not a mean of per-batch means.
    """

    def sums(output: torch.Tensor, target: torch.Tensor) -> list[float]:
        logits = _flat_logits(output.detach()).float()
        labels = target.reshape(-1)
        # per token in float32, added up in float64: the total hardly depends on the grouping
        losses = F.cross_entropy(logits, labels, reduction="none")
        return [float(losses.double().sum()), float(labels.numel())]

    return Metric("perplexity", sums, _perplexity, False, size=2)


def _f1_percent(sums: list[float]) -> float:
    tp, fp, fn = sums
    denominator = 2 * tp + fp + fn
    return 100.0 * 2 * tp / denominator if denominator else math.nan


def f1() -> Metric:
    """Binary F1 score in percent (``f1``): ``2 TP / (2 TP + FP + FN)``, from the summed true
    positives, false positives and false negatives. Undefined (``nan``) where there is neither a
    positive label nor a positive prediction."""

    def sums(output: torch.Tensor, target: torch.Tensor) -> list[float]:
        predicted, actual = _predicted_positive(output.detach()), _positive(target)
        return [
            float((predicted & actual).sum()),
            float((predicted & ~actual).sum()),
            float((~predicted & actual).sum()),
        ]

    return Metric("f1", sums, _f1_percent, True, size=3)
