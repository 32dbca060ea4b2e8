"""The generic distributed training loop: train, aggregate, validate, stop together.

Per step (each part timed by the tracker): ``batch_load``, ``fwd_pass``, ``comp_loss``,
``backprop``, ``agg`` (the aggregation strategy), ``opt_step`` (clipping, optimizer, learning-
rate schedule), ``comp_metrics`` (the training-loss window). After each epoch: ``validation``
on this rank's shard, then ``sync``: one all-reduce of the validation and training sums and
rank 0's stop decision, broadcast so that all ranks stop at the same epoch.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from mlbench_core.api.writer import MetricsWriter
from mlbench_core.engine import checkpoint
from mlbench_core.engine.aggregation import Aggregator, all_reduce_sum, make_aggregator
from mlbench_core.engine.distributed import DistContext, collective
from mlbench_core.engine.goals import Goal, GoalWatch
from mlbench_core.engine.marks import VALIDATING
from mlbench_core.engine.metrics import Metric
from mlbench_core.engine.step_times import StepTimes
from mlbench_core.engine.tracker import PhaseTracker

__all__ = ["Task", "TaskContext", "train"]

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class TaskContext:
    """What a benchmark's builder needs to know about this worker."""

    rank: int
    world_size: int
    seed: int = 0
    light: bool = False
    epochs: int | None = None  # None: the benchmark's default
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    data_dir: Path | None = None  # where datasets are (or are downloaded to)
    data_url: str | None = None  # a mirror of the official download locations
    data_checksums: dict[str, str] = field(default_factory=dict)  # pinned digests by file name
    synthetic: bool = False  # random data of the real shapes: throughput only
    overrides: dict[str, Any] = field(default_factory=dict)  # settings changed for this run


@dataclass
class Task:
    """One benchmark, built for one rank. Every rank's ``train_loader`` yields the same number
    of batches per epoch (gradients are aggregated after each one); ``val_loader`` yields this
    rank's validation shard (any size). ``scheduler`` is stepped after every optimizer step."""

    model: torch.nn.Module
    train_loader: Iterable[Batch]
    val_loader: Iterable[Batch]
    optimizer: torch.optim.Optimizer
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    metric: Metric
    goal: Goal | None
    epochs: int
    scheduler: Any = None  # a torch LRScheduler, stepped per iteration
    aggregation: str = "allreduce"
    clip_grad_norm: float | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # where the data came from


class _Reporter:
    """Run metrics, posted by rank 0 only (metadata: JSON text with epoch and step, and the
    training samples seen by all ranks so far where known)."""

    def __init__(self, writer: MetricsWriter | None, run_id: int | None, active: bool) -> None:
        self.writer = writer if active and run_id is not None else None
        self.run_id = run_id

    def post(
        self, name: str, value: float, epoch: int, step: int, samples: float | None = None
    ) -> None:
        if self.writer is None or not math.isfinite(value):
            return
        seen = {} if samples is None else {"samples": samples}
        meta = json.dumps({"epoch": epoch, "step": step, **seen})
        self.writer.write(name, value, run_id=self.run_id, metadata=meta)


class _Window:
    """Training loss since the last ``train_loss`` point, posted every ``every`` steps."""

    def __init__(self, every: int) -> None:
        self.every, self.step = every, 0
        self.loss = self.samples = 0.0  # global sums (or this rank's, see ``local``)
        self.seen = 0.0  # global samples of all windows posted (since the start, resumed)
        self.local = False  # the strategy does not carry the sums: reduce them at the window


@dataclass
class _Loop:
    """What the epochs share."""

    task: Task
    ctx: DistContext
    model: torch.nn.Module
    agg: Aggregator
    tracker: PhaseTracker
    report: _Reporter
    window: _Window
    step_delay: float = 0.0
    steps_per_epoch: int | None = None  # at most this many steps per epoch (smoke runs)
    samples: float = 0.0  # global training samples so far
    train_seconds: float = 0.0  # seconds in training steps so far (validation excluded)
    step_times: StepTimes = field(default_factory=StepTimes)  # for the nightly's comparison


def _to(batch: Batch, device: torch.device) -> Batch:
    x, y = batch
    if device.type == "cpu":
        return x, y
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def _train_epoch(loop: _Loop, epoch: int) -> list[float]:
    """One pass over this rank's partition; this rank's loss sum and sample count."""
    task, tracker, agg, window, model = loop.task, loop.tracker, loop.agg, loop.window, loop.model
    switch, device, loss_fn = tracker.switch, loop.ctx.device, task.loss_fn
    optimizer, scheduler, clip = task.optimizer, task.scheduler, task.clip_grad_norm
    after_step = agg.has_after_step
    limit = loop.steps_per_epoch
    model.train()
    loss_sum = samples = 0.0
    taken = 0
    batches = iter(task.train_loader)
    while True:
        step_start = time.perf_counter()
        switch("batch_load")
        batch = next(batches, None) if limit is None or taken < limit else None
        if batch is None:
            return [loss_sum, samples]
        taken += 1
        x, y = _to(batch, device)
        switch("fwd_pass")
        agg.zero_grad()
        output = model(x)
        switch("comp_loss")
        loss = loss_fn(output, y)
        switch("backprop")
        loss.backward()
        switch("comp_metrics")
        n = float(y.numel())  # samples (tokens, for a language model)
        local = float(loss.detach()) * n
        switch("agg")
        summed = agg.reduce((local, n))
        switch("opt_step")
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(task.model.parameters(), clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if loop.step_delay:  # an injected slowdown (MLBENCH_STEP_DELAY)
            time.sleep(loop.step_delay)
        if after_step:
            switch("agg")
            agg.after_step()
        switch("comp_metrics")
        loss_sum += local
        samples += n
        window.step += 1
        if summed is None:
            window.local = True
            summed = (local, n)
        window.loss += summed[0]
        window.samples += summed[1]
        if window.step % window.every == 0:
            if window.local:  # every rank reaches this step: the collective is safe
                window.loss, window.samples = all_reduce_sum((window.loss, window.samples))
            window.seen += window.samples  # windows tile the steps: every sample once
            loop.report.post("train_loss", window.loss / max(window.samples, 1.0), epoch,
                             window.step, samples=window.seen)  # fmt: skip
            window.loss = window.samples = 0.0
        loop.step_times.add(time.perf_counter() - step_start)


def _validate(loop: _Loop) -> list[float]:
    """This rank's sums over its validation shard: the metric's sums, loss sum, count."""
    task, model, device = loop.task, loop.model, loop.ctx.device
    loop.tracker.switch("validation")
    model.eval()
    metric_sums: list[float] | None = None
    loss_sum = count = 0.0
    with torch.no_grad():
        for batch in task.val_loader:
            x, y = _to(batch, device)
            output = model(x)
            n = float(y.numel())
            loss_sum += float(task.loss_fn(output, y)) * n
            sums = task.metric.sums(output, y)
            metric_sums = (
                list(sums)
                if metric_sums is None
                else [a + b for a, b in zip(metric_sums, sums, strict=True)]
            )
            count += n
    if metric_sums is None:  # an empty shard: zeros of the right length
        metric_sums = task.metric.zeros()
    return [*metric_sums, loss_sum, count]


def _decide(loop: _Loop, hit: bool, last: bool) -> tuple[bool, bool]:
    """Rank 0's verdict (goal reached now, stop), broadcast so that every rank follows it."""
    ctx = loop.ctx
    flag = torch.tensor([int(hit), int(hit or last)], dtype=torch.int64, device=ctx.device)
    if ctx.world_size > 1:
        with collective():
            dist.broadcast(flag, src=0)
    return bool(flag[0]), bool(flag[1])


def _resume(loop: _Loop, directory: Path, watch: GoalWatch) -> tuple[int, float]:
    """Load the newest checkpoint all ranks have (a collective); the epoch it ended and the
    seconds spent before it (0, 0.0 when there is none)."""
    state = checkpoint.resume(
        directory,
        rank=loop.ctx.rank,
        model=loop.task.model,
        optimizer=loop.task.optimizer,
        scheduler=loop.task.scheduler,
        device=loop.ctx.device,
    )
    if state is None:
        return 0, 0.0
    extra = state.extra
    loop.tracker.restore(extra.get("phases", {}))
    loop.window.step = state.step
    loop.samples = float(extra.get("samples", 0.0))
    loop.train_seconds = float(extra.get("train_seconds", 0.0))
    watch.restore(extra.get("goal_epoch"), extra.get("time_to_target_s"))
    if hasattr(loop.task.train_loader, "load_state_dict") and "loader" in extra:
        loop.task.train_loader.load_state_dict(extra["loader"])
    return state.epoch, float(extra.get("elapsed_s", 0.0))


def _save(loop: _Loop, directory: Path, epoch: int, elapsed: float, watch: GoalWatch) -> None:
    loader = loop.task.train_loader
    extra = {
        "phases": loop.tracker.totals,
        "samples": loop.samples,
        "train_seconds": loop.train_seconds,
        "elapsed_s": elapsed,
        "goal_epoch": watch.epoch,
        "time_to_target_s": watch.seconds,
    }
    if hasattr(loader, "state_dict"):
        extra["loader"] = loader.state_dict()
    checkpoint.save(
        directory,
        rank=loop.ctx.rank,
        epoch=epoch,
        step=loop.window.step,
        model=loop.task.model,
        optimizer=loop.task.optimizer,
        scheduler=loop.task.scheduler,
        extra=extra,
    )


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
    checkpoint_dir: Path | None = None,
    steps_per_epoch: int | None = None,
) -> dict[str, Any]:
    """Train ``task`` on every rank until rank 0 sees the goal reached or its epochs end.

    With ``checkpoint_dir``, every rank saves its state there after each epoch and a restarted
    run resumes after the newest epoch that all ranks saved. ``steps_per_epoch`` cuts every
    epoch short (smoke runs: the result says so). Returns ``reached``,
    ``time_to_target_s``, ``total_time_s``, ``epochs``, ``final``, ``split`` (this rank's
    seconds in data loading / compute / communication), ``phases`` (per phase),
    ``samples`` (global training samples) and ``throughput`` (samples/s).
    """
    if task.epochs < 1:
        raise ValueError("a task needs at least one epoch")
    tracker = tracker or PhaseTracker()
    agg = make_aggregator(task.aggregation)
    model = agg.prepare(task.model)
    loop = _Loop(
        task,
        ctx,
        model,
        agg,
        tracker,
        _Reporter(writer, run_id, ctx.is_main),
        _Window(log_every),
        step_delay=step_delay,
        steps_per_epoch=steps_per_epoch,
    )
    watch = GoalWatch(task.goal)
    val_name = f"val_{task.metric.name}"
    epoch, before = 0, 0.0
    if checkpoint_dir is not None:
        epoch, before = _resume(loop, checkpoint_dir, watch)
        if epoch:
            echo(f"rank {ctx.rank}: resumed after epoch {epoch} ({before:.1f} s before)")
    loop.window.seen = loop.samples
    if ctx.world_size > 1:
        with collective():
            dist.barrier()
    start = time.perf_counter() - before
    final: dict[str, float] = {}
    reached = watch.reached
    while epoch < task.epochs:
        epoch += 1
        epoch_start = time.perf_counter()
        train_sums = _train_epoch(loop, epoch)
        train_seconds = time.perf_counter() - epoch_start
        loop.train_seconds += train_seconds
        loop.report.post(VALIDATING, epoch, epoch, loop.window.step)  # for progress views
        sums = [*_validate(loop), *train_sums]
        tracker.switch("sync")
        reduced = all_reduce_sum(sums, ctx.device)
        metric_sums, (loss_sum, count, train_sum, train_n) = reduced[:-4], reduced[-4:]
        value = task.metric.finish(metric_sums) if count else math.nan
        elapsed = time.perf_counter() - start
        hit = ctx.is_main and watch.check(value, epoch, elapsed)
        hit, stop = _decide(loop, hit, epoch >= task.epochs)
        tracker.pause()
        reached = reached or hit
        loop.samples += train_n
        final = {
            val_name: value,
            "val_loss": loss_sum / count if count else math.nan,
            "train_loss": train_sum / train_n if train_n else math.nan,
        }
        phases = tracker.end_epoch()
        throughput = train_n / train_seconds if train_seconds > 0 else math.nan
        lr = task.optimizer.param_groups[0]["lr"]
        for name, number in (
            (val_name, value),
            ("val_loss", final["val_loss"]),
            ("epoch", epoch),
            ("throughput", throughput),
            ("lr", lr),
            *((f"time_{phase}", seconds) for phase, seconds in phases.items()),
            *((f"time_{k.removesuffix('_s')}", v) for k, v in tracker.grouped(phases).items()),
        ):
            loop.report.post(name, number, epoch, loop.window.step, samples=loop.samples)
        echo(
            f"rank {ctx.rank}: epoch {epoch}/{task.epochs} step {loop.window.step}: "
            f"train_loss {final['train_loss']:.4f} {val_name} {value:.2f} "
            f"val_loss {final['val_loss']:.4f} ({elapsed:.1f} s)"
        )
        if checkpoint_dir is not None:
            _save(loop, checkpoint_dir, epoch, elapsed, watch)
        if stop:
            why = "goal reached" if hit else "no epochs left"
            echo(f"rank {ctx.rank}: stopped after epoch {epoch} ({why})")
            break

    total = time.perf_counter() - start
    totals = tracker.totals
    return {
        "reached": reached,
        "time_to_target_s": watch.seconds if ctx.is_main else None,
        "total_time_s": total,
        "epochs": epoch,
        "final": final,
        "split": tracker.grouped(totals),
        "phases": totals,
        "samples": loop.samples,
        # Training steps only, as the per-epoch series; validation's seconds are apart.
        "throughput": loop.samples / loop.train_seconds if loop.train_seconds > 0 else None,
        "training_s": loop.train_seconds,
        "validation_s": totals.get("validation", 0.0),
        "throughput_overall": loop.samples / total if total > 0 else None,
        "aggregation": task.aggregation,
        "steps_per_epoch_limit": steps_per_epoch,
        "step_times": loop.step_times.summary(),  # this rank's, from its resumed start
    }
