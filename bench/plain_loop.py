"""The rank side of ``bench.overhead``'s throughput comparison (not a test).

``python -m bench.plain_loop --rounds R --block-epochs B --out FILE --api URL --token T
--run-id N --pods NAME``, started once per rank with torchrun-style ``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT``.

Both loops train the digits task (``mlbench_core.benchmarks.digits.build``: same model,
partition, batch size, optimizer and initial weights):

- *ours*: ``mlbench_core.engine.trainer.train`` as the worker runs it (goal disabled so that
  the number of epochs is fixed): phase tracker, ``train_loss`` every 10 steps, per-epoch
  validation, the stop decision broadcast, the epoch's metrics queued on a ``MetricsWriter``
  that sends them to the API from its thread, this rank's ``ResourceSampler`` posting pod
  metrics, and the epoch line printed on stdout (the launcher ships it to the API; here it
  goes to a file);
- *plain*: the loop a PyTorch user would write: forward, backward, one ``dist.all_reduce`` of
  the flattened gradients divided by the world size, ``optimizer.step()``; after each epoch
  the same validation pass over the same shard with one ``all_reduce`` of its sums (so both
  loops do the same work per epoch). No tracker, no metrics, no output.

The two loops alternate in blocks of ``B`` epochs in the same processes (the order reversed
every other round), so that both see the same machine at nearly the same time; the model
simply trains on. Round 0 is warm-up. Before a plain block the writer has delivered
everything and the sampler is stopped, so no background work of ours runs during it. Rank 0
times each block from the end of its first epoch to
the end of its last and writes, per loop, the timed samples (all ranks) and seconds of every
block as JSON to ``FILE``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist

from mlbench_core.benchmarks import REGISTRY, digits
from mlbench_core.engine.trainer import Task, TaskContext

EPOCH_LINE = re.compile(r"rank \d+: epoch (\d+)/")  # train()'s line at the end of an epoch
FLUSH_TIMEOUT_S = 30.0


def plain_train(task: Task, on_epoch: Callable[[int], None]) -> None:
    """Train ``task`` for ``task.epochs`` epochs the plain way; ``on_epoch(epoch)`` after each."""
    model, optimizer, loss_fn = task.model, task.optimizer, task.loss_fn
    params = [p for p in model.parameters() if p.requires_grad]
    world_size = dist.get_world_size()
    for epoch in range(1, task.epochs + 1):
        model.train()
        for x, y in task.train_loader:
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            flat = torch.cat([p.grad.reshape(-1) for p in params])
            dist.all_reduce(flat)
            flat /= world_size
            offset = 0
            for p in params:
                p.grad.copy_(flat[offset : offset + p.numel()].view_as(p))
                offset += p.numel()
            optimizer.step()
        model.eval()
        sums = torch.zeros(3, dtype=torch.float64)
        with torch.no_grad():
            for x, y in task.val_loader:
                output = model(x)
                sums[0] += float(loss_fn(output, y)) * len(y)
                sums[1] += task.metric.sums(output, y)[0]
                sums[2] += len(y)
        dist.all_reduce(sums)
        on_epoch(epoch)


class Ours:
    """mlbench's loop with the worker's writer and sampler, block after block."""

    def __init__(self, args: argparse.Namespace) -> None:
        from mlbench_core.api import ApiClient, MetricsWriter
        from mlbench_core.engine.distributed import DistContext

        self.ctx = DistContext(
            rank=dist.get_rank(),
            world_size=dist.get_world_size(),
            backend="gloo",
            device=torch.device("cpu"),
        )
        self.run_id = args.run_id
        self.pod = f"{args.pods}-w{self.ctx.rank}"
        self.client = ApiClient(args.api, token=args.token, timeout=10.0)
        self.writer = MetricsWriter(self.client)

    def train(self, task: Task, on_epoch: Callable[[int], None]) -> None:
        """One block: ``train()`` with a sampler running; then wait for the metrics to be
        delivered (after the timed span)."""
        from mlbench_core.engine.tracker import PhaseTracker
        from mlbench_core.engine.trainer import train
        from mlbench_core.worker.sampler import ResourceSampler

        def echo(line: str) -> None:
            print(line, flush=True)
            if match := EPOCH_LINE.match(line):
                on_epoch(int(match[1]))

        sampler = ResourceSampler(self.writer, self.pod).start()
        try:
            train(
                task,
                self.ctx,
                tracker=PhaseTracker(),
                writer=self.writer,
                run_id=self.run_id,
                echo=echo,
            )
        finally:
            sampler.stop()
        if not self.writer.flush(FLUSH_TIMEOUT_S):
            raise SystemExit(f"metrics not delivered: {self.writer.stats}")

    def close(self) -> None:
        stats = self.writer.close(FLUSH_TIMEOUT_S)
        self.client.close()
        if stats.failed or stats.dropped:
            raise SystemExit(f"metrics lost: {stats}")


def main() -> None:
    parser = argparse.ArgumentParser(description="The ranks of bench.overhead's comparison.")
    parser.add_argument("--rounds", type=int, required=True, help="timed rounds (+1 warm-up)")
    parser.add_argument("--block-epochs", type=int, required=True, help="epochs per block")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--api", required=True, help="the mlbench API")
    parser.add_argument("--token", required=True, help="the run's worker token")
    parser.add_argument("--run-id", type=int, required=True)
    parser.add_argument("--pods", required=True, help="pod names are PODS-w<rank>")
    args = parser.parse_args()

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="env://")
    try:
        rank, world_size = dist.get_rank(), dist.get_world_size()
        task = digits.build(TaskContext(rank=rank, world_size=world_size), REGISTRY["digits"])
        task = dataclasses.replace(task, goal=None, epochs=args.block_epochs)
        samples = world_size * len(task.train_loader.y) * (args.block_epochs - 1)
        ours = Ours(args)
        loops = {"ours": ours.train, "plain": plain_train}
        blocks: dict[str, list[dict[str, float]]] = {name: [] for name in loops}
        for round_ in range(args.rounds + 1):
            order = sorted(loops, reverse=round_ % 2 == 1)  # ours, plain / plain, ours
            for name in order:
                marks: dict[int, float] = {}

                def on_epoch(epoch: int, marks: dict[int, float] = marks) -> None:
                    marks[epoch] = time.perf_counter()

                dist.barrier()
                loops[name](task, on_epoch)
                if round_ > 0:
                    seconds = marks[args.block_epochs] - marks[1]
                    blocks[name].append({"round": round_, "samples": samples, "seconds": seconds})
        ours.close()
        if rank == 0:
            result = {"blocks": blocks, "threads": torch.get_num_threads()}
            args.out.write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
