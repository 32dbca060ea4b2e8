"""Declarative specs of the reference benchmarks (the original mlbench task list).

Run validation, ``GET /api/benchmarks/`` and the dashboard read this registry. The training
code behind each entry lives in the worker runtime; an entry states what the benchmark is and
what counts as reaching its goal.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Goal(BaseModel):
    model_config = ConfigDict(frozen=True)

    metric: str
    target: float
    higher_is_better: bool = True


class BenchmarkSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    task: str
    model: str
    dataset: str
    goal: Goal | None
    light_goal: Goal | None
    backends: tuple[str, ...] = ("gloo", "nccl")
    gpu: bool = True
    epochs: int | None = None  # at most this many epochs (None: the implementation decides)


REGISTRY: dict[str, BenchmarkSpec] = {
    spec.id: spec
    for spec in (
        BenchmarkSpec(
            id="0a",
            title="All-reduce backend benchmark",
            task="communication",
            model="none",
            dataset="random tensors",
            goal=None,
            light_goal=None,
        ),
        BenchmarkSpec(
            id="1a",
            title="ResNet-20 on CIFAR-10",
            task="image classification",
            model="resnet20",
            dataset="cifar10",
            goal=Goal(metric="val_top1", target=80.0),
            light_goal=Goal(metric="val_top1", target=70.0),
        ),
        BenchmarkSpec(
            id="2a",
            title="Logistic regression on epsilon",
            task="linear learning",
            model="logistic-regression",
            dataset="epsilon",
            goal=Goal(metric="val_accuracy", target=89.0),
            light_goal=Goal(metric="val_accuracy", target=80.0),
        ),
        BenchmarkSpec(
            id="3a",
            title="AWD-LSTM language model on Wikitext-2",
            task="language modelling",
            model="awd-lstm",
            dataset="wikitext2",
            goal=Goal(metric="val_perplexity", target=70.0, higher_is_better=False),
            light_goal=Goal(metric="val_perplexity", target=90.0, higher_is_better=False),
        ),
        BenchmarkSpec(
            id="digits",
            title="Demo: MLP on scikit-learn digits",
            task="image classification",
            model="mlp",
            dataset="sklearn-digits",
            goal=Goal(metric="val_accuracy", target=95.0),
            light_goal=Goal(metric="val_accuracy", target=90.0),
            backends=("gloo",),
            gpu=False,
            epochs=30,
        ),
    )
}


# What the original mlbench ran when a run named no image: ResNet-20 on CIFAR-10.
DEFAULT_BENCHMARK = "1a"


def get_benchmark(benchmark_id: str) -> BenchmarkSpec:
    """The spec of ``benchmark_id``; ``KeyError`` names the valid ids."""
    try:
        return REGISTRY[benchmark_id]
    except KeyError:
        raise KeyError(
            f"unknown benchmark {benchmark_id!r}; valid: {', '.join(REGISTRY)}"
        ) from None
