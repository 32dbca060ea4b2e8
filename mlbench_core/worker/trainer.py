"""The generic distributed training loop: train, average gradients, validate, stop together."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from mlbench_core.api.writer import MetricsWriter
from mlbench_core.benchmarks.registry import Goal
from mlbench_core.worker.aggregation import all_reduce_sum, average_gradients
from mlbench_core.worker.distributed import DistContext, collective
from mlbench_core.worker.tracker import PhaseTracker

__all__ = ["Metric", "Task", "TaskContext", "goal_reached", "train"]

Batch = tuple[torch.Tensor, torch.Tensor]


def _identity(value: float) -> float:
    return value


@dataclass(frozen=True)
class Metric:
    """A validation metric: ``batch`` sums it over a batch; ``finish`` maps the global mean
    (sum over all samples / count) to the reported value (e.g. ``exp`` for perplexity)."""

    name: str
    batch: Callable[[torch.Tensor, torch.Tensor], float]
    finish: Callable[[float], float] = _identity


@dataclass(frozen=True)
class TaskContext:
    """What a benchmark's builder needs to know about this worker."""

    rank: int
    world_size: int
    seed: int = 0
    light: bool = False
    epochs: int | None = None  # None: the benchmark's default
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


@dataclass
class Task:
    """One benchmark, built for one rank. Every rank's ``train_loader`` yields the same number
    of batches per epoch (gradients are averaged after each one); ``val_loader`` yields this
    rank's validation shard (any size)."""

    model: torch.nn.Module
    train_loader: Iterable[Batch]
    val_loader: Iterable[Batch]
    optimizer: torch.optim.Optimizer
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    metric: Metric
    goal: Goal | None
    epochs: int


def goal_reached(goal: Goal | None, value: float) -> bool:
    """Whether ``value`` meets ``goal`` (never, without a goal)."""
    if goal is None or not math.isfinite(value):
        return False
    return value >= goal.target if goal.higher_is_better else value <= goal.target


class _Reporter:
    """Run metrics, posted by rank 0 only (metadata: JSON text with epoch and step)."""

    def __init__(self, writer: MetricsWriter | None, run_id: int | None, active: bool) -> None:
        self.writer = writer if active and run_id is not None else None
        self.run_id = run_id

    def post(self, name: str, value: float, epoch: int, step: int) -> None:
        if self.writer is None or not math.isfinite(value):
            return
        meta = json.dumps({"epoch": epoch, "step": step})
        self.writer.write(name, value, run_id=self.run_id, metadata=meta)


def _to(batch: Batch, device: torch.device) -> Batch:
    x, y = batch
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def _validate(task: Task, ctx: DistContext, tracker: PhaseTracker) -> tuple[float, float, float]:
    """This rank's sums over its validation shard: metric, loss, count."""
    task.model.eval()
    metric_sum = loss_sum = count = 0.0
    batches = iter(task.val_loader)
    with torch.no_grad():
        while True:
            with tracker.phase("data"):
                batch = next(batches, None)
            if batch is None:
                break
            with tracker.phase("compute"):
                x, y = _to(batch, ctx.device)
                output = task.model(x)
                n = len(y)
                loss_sum += float(task.loss_fn(output, y)) * n
                metric_sum += float(task.metric.batch(output, y))
                count += n
    return metric_sum, loss_sum, count


class _Window:
    """Training loss since the last ``train_loss`` point, posted every ``every`` steps."""

    def __init__(self, every: int) -> None:
        self.every, self.step, self.loss, self.samples = every, 0, 0.0, 0.0


def _train_epoch(
    task: Task,
    ctx: DistContext,
    tracker: PhaseTracker,
    report: _Reporter,
    window: _Window,
    epoch: int,
    step_delay: float = 0.0,
) -> list[float]:
    """One pass over this rank's partition; this rank's loss sum and sample count."""
    params = [p for p in task.model.parameters() if p.requires_grad]
    task.model.train()
    loss_sum = samples = 0.0
    batches = iter(task.train_loader)
    while True:
        with tracker.phase("data"):
            batch = next(batches, None)
        if batch is None:
            return [loss_sum, samples]
        with tracker.phase("compute"):
            x, y = _to(batch, ctx.device)
            task.optimizer.zero_grad(set_to_none=True)
            loss = task.loss_fn(task.model(x), y)
            loss.backward()
            n = float(len(y))
            local = float(loss.detach()) * n
            # The loss rides in the gradients' all-reduce: the global train_loss for free.
            window_sums = average_gradients(params, tracker, (local, n))
            task.optimizer.step()
            if step_delay:  # an injected slowdown (MLBENCH_STEP_DELAY), counted as compute
                time.sleep(step_delay)
        loss_sum += local
        samples += n
        window.step += 1
        window.loss += window_sums[0]
        window.samples += window_sums[1]
        if window.step % window.every == 0:
            report.post("train_loss", window.loss / max(window.samples, 1.0), epoch, window.step)
            window.loss = window.samples = 0.0


def _decide(task: Task, ctx: DistContext, value: float, epoch: int) -> tuple[bool, bool]:
    """Rank 0's verdict (goal reached, stop), broadcast so that every rank follows it."""
    flag = torch.zeros(2, dtype=torch.int64, device=ctx.device)
    if ctx.is_main:
        hit = goal_reached(task.goal, value)
        flag[0], flag[1] = int(hit), int(hit or epoch >= task.epochs)
    if ctx.world_size > 1:
        with collective():
            dist.broadcast(flag, src=0)
    return bool(flag[0]), bool(flag[1])


def train(
    task: Task,
    ctx: DistContext,
    *,
    tracker: PhaseTracker | None = None,
    writer: MetricsWriter | None = None,
    run_id: int | None = None,
    log_every: int = 10,
    echo: Callable[[str], None] = print,
    step_delay: float = 0.0,
) -> dict[str, Any]:
    """Train ``task`` on every rank until rank 0 sees the goal reached or its epochs end.

    Returns ``reached``, ``time_to_target_s``, ``total_time_s``, ``epochs``, ``final`` and
    ``split`` (this rank's phase seconds); rank 0 also posts the run's metrics.
    """
    if task.epochs < 1:
        raise ValueError("a task needs at least one epoch")
    tracker = tracker or PhaseTracker()
    report = _Reporter(writer, run_id, ctx.is_main)
    window = _Window(log_every)
    val_name = f"val_{task.metric.name}"
    epoch = 0
    time_to_target: float | None = None
    if ctx.world_size > 1:
        with collective():
            dist.barrier()
    start = time.perf_counter()
    while True:
        epoch += 1
        train_loss = _train_epoch(task, ctx, tracker, report, window, epoch, step_delay)
        sums = [*_validate(task, ctx, tracker), *train_loss]
        with tracker.phase("communication"):
            metric_sum, loss_sum, count, train_sum, train_n = all_reduce_sum(sums, ctx.device)
            value = task.metric.finish(metric_sum / count) if count else math.nan
            reached, stop = _decide(task, ctx, value, epoch)
        elapsed = time.perf_counter() - start
        if reached and time_to_target is None:
            time_to_target = elapsed
        final = {
            val_name: value,
            "val_loss": loss_sum / count if count else math.nan,
            "train_loss": train_sum / train_n if train_n else math.nan,
        }
        phases = tracker.end_epoch()
        for name, number in (
            (val_name, value),
            ("val_loss", final["val_loss"]),
            ("epoch", epoch),
            *((f"time_{phase}", seconds) for phase, seconds in phases.items()),
        ):
            report.post(name, number, epoch, window.step)
        echo(
            f"rank {ctx.rank}: epoch {epoch}/{task.epochs} step {window.step}: "
            f"train_loss {final['train_loss']:.4f} {val_name} {value:.2f} "
            f"val_loss {final['val_loss']:.4f} ({elapsed:.1f} s)"
        )
        if stop:
            why = "goal reached" if reached else "no epochs left"
            echo(f"rank {ctx.rank}: stopped after epoch {epoch} ({why})")
            break

    return {
        "reached": reached,
        "time_to_target_s": time_to_target,
        "total_time_s": time.perf_counter() - start,
        "epochs": epoch,
        "final": final,
        "split": tracker.split(),
    }
