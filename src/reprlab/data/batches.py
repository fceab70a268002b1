"""Batching by index over in-memory tensors: no per-sample Python, no PIL.

A *batch source* is anything with ``num_batches(world_size)`` and
``epoch(epoch, rank, world_size, start)``; the engine asks it for the batches of one epoch.
The order of an epoch depends only on ``(seed, epoch)``, which is what makes resume exact.
"""

from __future__ import annotations

from typing import Iterator, Protocol

import torch
from torch import Tensor

Batch = dict[str, Tensor]


class BatchSource(Protocol):
    def num_batches(self, world_size: int = 1) -> int: ...

    def epoch(self, epoch: int, rank: int = 0, world_size: int = 1, start: int = 0) -> Iterator[Batch]: ...


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator seeded by (seed, epoch) only, so any epoch can be replayed exactly."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))


class TensorBatches:
    """Batches of a dict of equal-length tensors, shuffled per epoch and sharded per rank."""

    def __init__(self, tensors: Batch, batch_size: int, shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        lengths = {k: len(v) for k, v in tensors.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"tensors differ in length: {lengths}")
        self.tensors = tensors
        self.n = next(iter(lengths.values()))
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last

    def __len__(self) -> int:
        return self.n

    def _per_rank(self, world_size: int) -> int:
        return self.n // world_size if world_size > 1 else self.n

    def num_batches(self, world_size: int = 1) -> int:
        m = self._per_rank(world_size)
        return m // self.batch_size if self.drop_last else -(-m // self.batch_size)

    def epoch(self, epoch: int, rank: int = 0, world_size: int = 1, start: int = 0) -> Iterator[Batch]:
        if self.shuffle:
            order = torch.randperm(self.n, generator=epoch_generator(self.seed, epoch))
        else:
            order = torch.arange(self.n)
        if world_size > 1:
            order = order[rank::world_size][: self._per_rank(world_size)]
        for b in range(start, self.num_batches(world_size)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield {k: v[idx] for k, v in self.tensors.items()}
