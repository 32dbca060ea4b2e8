"""Declarative specs of the reference benchmarks (the original mlbench task list).

One spec per benchmark: what it trains (model, dataset), how (optimizer, learning-rate schedule,
batch size per worker, epochs, aggregation), what counts as reaching its goal, and the choices
made where the original specification and its code disagreed (``notes``). Run validation,
``GET /api/benchmarks/``, ``mlbench benchmarks``, the dashboard's run form and the docs table
(``python -m mlbench_core.benchmarks.docs``) all read this registry; the worker's builders
take their hyperparameters from it.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from mlbench_core.engine.goals import Goal


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OptimizerSpec(_Frozen):
    name: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(gt=0, description="learning rate for one worker (before any scaling)")
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0


class ScheduleSpec(_Frozen):
    """Per-iteration learning rate: linear warm-up to ``lr x scale`` (scale = number of workers
    when ``scale_with_workers``), then multiplied by ``gamma`` at each milestone epoch."""

    warmup_epochs: float = 0.0
    scale_with_workers: bool = False
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1


class BenchmarkSpec(_Frozen):
    """One benchmark: what it is, and the code that runs it (``implementation``, loaded only
    by the worker: the registry stays free of torch)."""

    id: str
    kind: Literal["training", "communication"] = Field(
        default="training",
        description="training: the engine trains the task the implementation builds; "
        "communication: the implementation measures the communication backend",
    )
    implementation: str = Field(
        exclude=True,
        pattern=r"^[\w.]+:\w+$",
        description="module:function of the task builder (training) or of the measurement",
    )
    title: str
    task: str
    model: str
    dataset: str
    metric: str | None = Field(description="the validation metric reported as val_<metric>")
    goal: Goal | None
    light_goal: Goal | None
    optimizer: OptimizerSpec | None = None
    schedule: ScheduleSpec = ScheduleSpec()
    batch_size: int | None = Field(default=None, description="samples per worker and step")
    epochs: int | None = Field(default=None, description="at most this many epochs")
    aggregation: str = "allreduce"
    aggregations: tuple[str, ...] = ("allreduce",)
    hyperparameters: dict[str, float | int | str | bool] = {}
    backends: tuple[str, ...] = ("gloo", "nccl")
    gpu: bool = True
    seed: int = 0
    image: str = "mlbench-worker"
    notes: tuple[str, ...] = ()

    @computed_field(description="What a run may change (its settings), with the reference values")
    @property
    def settings(self) -> dict[str, float | int | str | bool]:
        """What a run may change (``--set KEY=VALUE``, a run's ``settings``) with the
        reference values: the batch size, the optimizer's values and the hyperparameters."""
        base: dict[str, Any] = {"batch_size": self.batch_size, **self.hyperparameters}
        if self.optimizer is not None:
            base.update(
                lr=self.optimizer.lr,
                momentum=self.optimizer.momentum,
                weight_decay=self.optimizer.weight_decay,
            )
        return {key: value for key, value in base.items() if value is not None}

    def load(self) -> Any:
        """The implementation: a builder ``(TaskContext, BenchmarkSpec) -> Task`` for
        training benchmarks; the measurement function for communication ones."""
        module, _, name = self.implementation.partition(":")
        return getattr(importlib.import_module(module), name)


REGISTRY: dict[str, BenchmarkSpec] = {
    spec.id: spec
    for spec in (
        BenchmarkSpec(
            id="0a",
            kind="communication",
            implementation="mlbench_core.benchmarks.allreduce:run",
            title="All-reduce backend benchmark",
            task="communication",
            model="none",
            dataset="random tensors",
            metric=None,
            goal=None,
            light_goal=None,
            aggregations=(),
            aggregation="none",
            hyperparameters={
                "max_elements": 10**8,
                "light_max_elements": 10**6,
                "per_decade": 1,
                "warmup": 5,
                "repeats": 20,
                "dtypes": "float32,float16",
            },
            notes=(
                "Sizes 1, 10, ..., 1e8 elements (one per decade) in float32 and float16; the "
                "light variant stops at 1e6 elements. Latency is the median over repetitions of "
                "the slowest rank's time; bus bandwidth is algbw x 2(n-1)/n, the NCCL-tests "
                "convention, so that numbers compare across world sizes.",
            ),
        ),
        BenchmarkSpec(
            id="1a",
            implementation="mlbench_core.benchmarks.vision:build",
            title="ResNet-20 on CIFAR-10",
            task="image classification",
            model="resnet20",
            dataset="cifar10",
            metric="top1",
            goal=Goal(metric="val_top1", target=80.0),
            light_goal=Goal(metric="val_top1", target=70.0),
            optimizer=OptimizerSpec(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
            schedule=ScheduleSpec(
                warmup_epochs=5, scale_with_workers=True, milestones=(82, 109), gamma=0.1
            ),
            batch_size=128,
            epochs=164,
            aggregations=("allreduce", "ddp", "gossip"),
            hyperparameters={"augmentation": "random crop 32 (pad 4) + horizontal flip"},
            image="mlbench-worker-vision",
            notes=(
                "Learning rate 0.1 for 128 samples, multiplied by the number of workers after a "
                "linear 5-epoch warm-up (Goyal et al. 2017), decayed x0.1 at epochs 82 and 109 of "
                "164 (He et al.'s 32k/48k of 64k iterations at batch 128). The original spec "
                "named plain momentum; its code used Nesterov momentum: we use Nesterov, as the "
                "code that produced the published numbers did.",
                "Variants: allreduce (flat buffer, default), ddp (DistributedDataParallel) and "
                "gossip (decentralized SGD on a ring).",
            ),
        ),
        BenchmarkSpec(
            id="2a",
            implementation="mlbench_core.benchmarks.linear:build",
            title="Logistic regression on epsilon",
            task="linear learning",
            model="logistic-regression",
            dataset="epsilon",
            metric="accuracy",
            goal=Goal(metric="val_accuracy", target=89.0),
            light_goal=Goal(metric="val_accuracy", target=80.0),
            optimizer=OptimizerSpec(lr=4.0),
            batch_size=100,
            epochs=10,
            aggregations=("allreduce", "ddp"),
            hyperparameters={"l2": 2.5e-6, "features": 2000},
            image="mlbench-worker-linear",
            notes=(
                "Epsilon's rows have unit L2 norm, so the logistic loss has a gradient "
                "Lipschitz constant of at most 1/4: the step 4.0 = 1/L is the classical safe "
                "constant step. L2 regularisation lambda = 1/n = 2.5e-6 for the 400,000 training "
                "samples (the usual choice for epsilon), added to the loss as lambda/2 ||w||^2 "
                "rather than as the optimizer's weight decay, so that the reported loss is the "
                "regularised objective.",
            ),
        ),
        BenchmarkSpec(
            id="3a",
            implementation="mlbench_core.benchmarks.language:build",
            title="AWD-LSTM language model on Wikitext-2",
            task="language modelling",
            model="awd-lstm",
            dataset="wikitext2",
            metric="perplexity",
            goal=Goal(metric="val_perplexity", target=70.0, higher_is_better=False),
            light_goal=Goal(metric="val_perplexity", target=90.0, higher_is_better=False),
            optimizer=OptimizerSpec(lr=30.0, weight_decay=1.2e-6),
            batch_size=80,
            epochs=750,
            aggregations=("allreduce", "ddp"),
            hyperparameters={"bptt": 70, "clip": 0.25, "emb": 400, "hidden": 1150, "layers": 3},
            image="mlbench-worker-nlp",
            notes=(
                "Merity et al.'s Wikitext-2 settings: SGD at 30, gradient clipping 0.25, BPTT 70, "
                "dropouts 0.4/0.3/0.65/0.1 and weight drop 0.5, batch 80 per worker. The paper "
                "switches to averaged SGD when validation stalls; the original mlbench code kept "
                "plain SGD, and so do we (the comparison across worker counts stays fair).",
                "Perplexity is exp of the mean token cross-entropy over the whole validation "
                "split, summed across workers before the exponential.",
            ),
        ),
        BenchmarkSpec(
            id="digits",
            implementation="mlbench_core.benchmarks.digits:build",
            title="Demo: MLP on scikit-learn digits",
            task="image classification",
            model="mlp",
            dataset="sklearn-digits",
            metric="accuracy",
            goal=Goal(metric="val_accuracy", target=95.0),
            light_goal=Goal(metric="val_accuracy", target=90.0),
            optimizer=OptimizerSpec(lr=0.1, momentum=0.9),
            batch_size=32,
            epochs=30,
            aggregations=("allreduce", "ddp", "gossip"),
            hyperparameters={"hidden": 128},
            backends=("gloo",),
            gpu=False,
            notes=(
                "Real data that ships with scikit-learn (1,797 8x8 images), so that the demo and "
                "the tests never download anything.",
            ),
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
