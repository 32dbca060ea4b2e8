"""Gradient aggregation strategies, and the small collectives of the training loop.

- ``allreduce`` (default): every gradient lives in one flat buffer (each parameter's ``.grad``
  is a view into it, so backward accumulates straight into the buffer: no copying in or out);
  after backward the buffer is all-reduced in buckets of at most ``bucket_bytes`` and divided
  by the world size. The training loop's loss sums ride at the buffer's tail, so the global
  training loss costs no collective of its own.
- ``ddp``: ``torch.nn.parallel.DistributedDataParallel``; its bucketed all-reduce overlaps the
  backward pass (its time is therefore counted in ``backprop``, not ``agg``).
- ``gossip``: decentralized SGD (D-PSGD, Lian et al. 2017): no global averaging; after each
  optimizer step every rank averages its parameters with its two neighbours on a ring.

The trainer calls :meth:`Aggregator.prepare` once, then per step :meth:`Aggregator.zero_grad`,
backward, :meth:`Aggregator.reduce`, the optimizer step and :meth:`Aggregator.after_step`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.distributed as dist
from torch import nn

from mlbench_core.engine.distributed import collective

__all__ = [
    "AGGREGATORS",
    "Aggregator",
    "AllReduceAggregator",
    "DDPAggregator",
    "GossipAggregator",
    "all_reduce_sum",
    "broadcast_parameters",
    "make_aggregator",
]

DEFAULT_BUCKET_BYTES = 25 * 2**20  # DDP's default bucket cap


def _trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


class Aggregator:
    """A strategy; the base class trains each rank alone (world size 1 needs nothing more)."""

    name = "none"

    def prepare(self, model: nn.Module) -> nn.Module:
        """Set up for ``model``; returns the module to train (possibly a wrapper)."""
        self.model = model
        return model

    def zero_grad(self) -> None:
        """Clear the gradients before a backward pass."""
        self.model.zero_grad(set_to_none=True)

    def reduce(self, extras: Sequence[float] = ()) -> list[float] | None:
        """After backward: aggregate the gradients. Returns ``extras`` summed over the ranks
        when the strategy carries them in its own collective, else ``None`` (the caller then
        reduces them itself when it needs them)."""
        return None

    def after_step(self) -> None:
        """After the optimizer step (gossip exchanges parameters here)."""

    @property
    def has_after_step(self) -> bool:
        return type(self).after_step is not Aggregator.after_step


class AllReduceAggregator(Aggregator):
    """Flat gradient buffer, all-reduced in buckets (see the module docstring)."""

    name = "allreduce"

    def __init__(self, extras: int = 2, bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
        if extras < 0 or bucket_bytes < 1:
            raise ValueError("need extras >= 0 and bucket_bytes >= 1")
        self.extras, self.bucket_bytes = extras, bucket_bytes

    def prepare(self, model: nn.Module) -> nn.Module:
        self.model = model
        self.world_size = dist.get_world_size()
        params = _trainable(model)
        if not params:
            raise ValueError("the model has no trainable parameters")
        kinds = {(p.dtype, p.device) for p in params}
        if len(kinds) > 1:
            raise ValueError(f"all parameters must share dtype and device, found {kinds}")
        self.size = sum(p.numel() for p in params)
        self.buffer = torch.zeros(
            self.size + self.extras, dtype=params[0].dtype, device=params[0].device
        )
        self.params, self.views = params, []
        bounds, start, offset = [], 0, 0
        limit = max(1, self.bucket_bytes // self.buffer.element_size())
        for p in params:
            n = p.numel()
            if offset > start and offset + n - start > limit:
                bounds.append((start, offset))
                start = offset
            view = self.buffer[offset : offset + n].view_as(p)
            p.grad = view
            self.views.append(view)
            offset += n
        bounds.append((start, self.size + self.extras))  # the extras ride in the last bucket
        self.buckets = [self.buffer[a:b] for a, b in bounds]
        self.grads = self.buffer[: self.size]
        tail = self.buffer[self.size :]
        # On the CPU a NumPy view of the tail makes setting and reading the extras cheap.
        self._tail = tail.numpy() if tail.device.type == "cpu" else tail
        return model

    def zero_grad(self) -> None:
        self.buffer.zero_()

    def _check_views(self) -> None:
        if self.params[0].grad is not self.views[0]:
            raise RuntimeError(
                "gradients were detached from the aggregation buffer (was "
                "optimizer.zero_grad(set_to_none=True) called?); use the aggregator's zero_grad"
            )

    def reduce(self, extras: Sequence[float] = ()) -> list[float]:
        self._check_views()
        if len(extras) != self.extras:
            raise ValueError(f"expected {self.extras} extras, got {len(extras)}")
        if self.world_size == 1:
            return list(extras)
        tail = self._tail
        for i, value in enumerate(extras):
            tail[i] = value
        with collective():
            if len(self.buckets) == 1:
                dist.all_reduce(self.buckets[0])
            else:
                for work in [dist.all_reduce(b, async_op=True) for b in self.buckets]:
                    work.wait()
        summed = [float(tail[i]) for i in range(self.extras)]
        self.grads.div_(self.world_size)
        return summed


class DDPAggregator(Aggregator):
    """``DistributedDataParallel`` around the model (its all-reduce overlaps backward)."""

    name = "ddp"

    def __init__(self, bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
        self.bucket_bytes = bucket_bytes

    def prepare(self, model: nn.Module) -> nn.Module:
        if dist.get_world_size() == 1:
            return super().prepare(model)
        device = next(model.parameters()).device
        self.model = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device] if device.type == "cuda" else None,
            bucket_cap_mb=self.bucket_bytes / 2**20,
        )
        return self.model


class GossipAggregator(Aggregator):
    """Decentralized SGD on a ring: after each step, average parameters with both neighbours
    (weights 1/3 each; 1/2 each with two ranks, whose ring has one neighbour)."""

    name = "gossip"

    def prepare(self, model: nn.Module) -> nn.Module:
        super().prepare(model)
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.params = _trainable(model)
        self.neighbours = sorted(
            {(self.rank - 1) % self.world_size, (self.rank + 1) % self.world_size} - {self.rank}
        )
        return model

    def after_step(self) -> None:
        if not self.neighbours:
            return
        with torch.no_grad():
            mine = nn.utils.parameters_to_vector(self.params)
            received = [torch.empty_like(mine) for _ in self.neighbours]
            with collective():
                works = [dist.isend(mine, peer) for peer in self.neighbours]
                works += [
                    dist.irecv(buf, peer)
                    for buf, peer in zip(received, self.neighbours, strict=True)
                ]
                for work in works:
                    work.wait()
            mixed = mine.clone()
            for buf in received:
                mixed.add_(buf)
            mixed.div_(len(received) + 1)
            nn.utils.vector_to_parameters(mixed, self.params)


AGGREGATORS: dict[str, type[Aggregator]] = {
    cls.name: cls for cls in (AllReduceAggregator, DDPAggregator, GossipAggregator)
}


def make_aggregator(name: str) -> Aggregator:
    """The strategy called ``name``; ``ValueError`` lists the valid names."""
    try:
        return AGGREGATORS[name]()
    except KeyError:
        raise ValueError(f"unknown aggregation {name!r}; valid: {', '.join(AGGREGATORS)}") from None


def all_reduce_sum(values: Iterable[float], device: torch.device | None = None) -> list[float]:
    """The element-wise sums of ``values`` over all ranks (float64)."""
    buffer = torch.tensor(list(values), dtype=torch.float64, device=device)
    if dist.get_world_size() > 1:
        with collective():
            dist.all_reduce(buffer)
    return buffer.tolist()


def broadcast_parameters(module: nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers."""
    if dist.get_world_size() == 1:
        return
    with collective():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)
