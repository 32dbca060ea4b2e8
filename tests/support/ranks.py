"""Scenarios run by each rank of a real process group (started by the tests, one process per
rank): ``python -m tests.support.ranks SCENARIO OUTDIR``. Each rank writes what it
saw to ``OUTDIR/rank<R>.pt`` or ``.json``."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import torch

from mlbench_core.benchmarks import REGISTRY, digits
from mlbench_core.engine import aggregation, distributed
from mlbench_core.engine.goals import Goal
from mlbench_core.engine.trainer import TaskContext, train


class _Net(torch.nn.Module):
    def __init__(self, unused: bool) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Linear(4, 3))
        if unused:  # parameters that never get a gradient
            self.unused = torch.nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _net(unused: bool = True) -> torch.nn.Module:
    torch.manual_seed(0)  # the same initial weights on every rank
    return _Net(unused)


def _local_gradients(net: torch.nn.Module, rank: int) -> list[torch.Tensor]:
    """This rank's gradients of a rank-specific batch (also left in ``.grad``)."""
    generator = torch.Generator().manual_seed(1000 + rank)
    x, y = torch.randn(8, 5, generator=generator), torch.randn(8, 3, generator=generator)
    torch.nn.functional.mse_loss(net(x), y).backward()
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in net.parameters()]


def aggregate(ctx: distributed.DistContext, out: Path, strategy: str) -> None:
    """One step of ``strategy`` on rank-specific data; what each rank had and got."""
    unused = strategy != "ddp"  # DDP (without find_unused_parameters) needs every gradient
    reference = _net(unused)
    before = _local_gradients(reference, ctx.rank)
    net = _net(unused)
    params_before = [p.detach().clone() for p in net.parameters()]
    if strategy == "allreduce-buckets":  # tiny buckets: one per parameter tensor
        agg = aggregation.AllReduceAggregator(bucket_bytes=16)
    else:
        agg = aggregation.make_aggregator(strategy)
    model = agg.prepare(net)
    agg.zero_grad()
    generator = torch.Generator().manual_seed(1000 + ctx.rank)
    x, y = torch.randn(8, 5, generator=generator), torch.randn(8, 3, generator=generator)
    torch.nn.functional.mse_loss(model(x), y).backward()
    summed = agg.reduce((float(ctx.rank + 1), 10.0))
    torch.optim.SGD(net.parameters(), lr=0.5).step()
    agg.after_step()
    torch.save(
        {
            "before": before,
            "after": [
                p.grad.clone() if p.grad is not None else torch.zeros_like(p)
                for p in net.parameters()
            ],
            "summed": summed,
            "params_before": params_before,
            "params_after": [p.detach().clone() for p in net.parameters()],
            "buckets": len(getattr(agg, "buckets", [])),
        },
        out / f"rank{ctx.rank}.pt",
    )


def stop_by_rank0(ctx: distributed.DistContext, out: Path, variant: str) -> None:
    """Ranks disagree on goal and epochs: rank 0's decision must stop every rank."""
    task = digits.build(
        TaskContext(rank=ctx.rank, world_size=ctx.world_size, epochs=6), REGISTRY["digits"]
    )
    if variant == "goal":  # only rank 0 has a (trivial) goal
        goal = Goal(metric="val_accuracy", target=0.0) if ctx.rank == 0 else None
        task = dataclasses.replace(task, goal=goal)
    else:  # "epochs": no goal; rank 0 allows fewer epochs
        task = dataclasses.replace(task, goal=None, epochs=2 if ctx.rank == 0 else 6)
    result = train(task, ctx, echo=lambda line: None)
    (out / f"rank{ctx.rank}.json").write_text(json.dumps(result))


def main() -> None:
    scenario, out = sys.argv[1], Path(sys.argv[2])
    ctx = distributed.init(timeout=30)
    try:
        if scenario.startswith("aggregate-"):
            aggregate(ctx, out, scenario.removeprefix("aggregate-"))
        else:
            stop_by_rank0(ctx, out, scenario.removeprefix("stop-"))
    finally:
        distributed.destroy()


if __name__ == "__main__":
    main()
