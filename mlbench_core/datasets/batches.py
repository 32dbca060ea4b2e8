"""Mini-batches of in-memory tensors, reshuffled each epoch by a seeded generator."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

__all__ = ["Batches", "Transform"]

# A batch transform (augmentation), given the loader's generator so that it is reproducible.
Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class Batches:
    """Mini-batches of ``(x, y)``, reshuffled each epoch (``shuffle``) by a seeded generator.

    ``transform`` (say, data augmentation) is applied to each batch of ``x`` with the same
    generator, so a loader built with the same seed gives the same batches.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        transform: Transform | None = None,
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} targets")
        if batch_size < 1:
            raise ValueError(f"batch size {batch_size} is not positive")
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.transform = transform
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.y)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            x = self.x[index]
            if self.transform is not None:
                x = self.transform(x, self.generator)
            yield x, self.y[index]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The shuffling state (for a checkpoint): the next epoch's order follows from it."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])
