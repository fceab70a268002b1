"""Batches of any ``torch.utils.data.Dataset``, through a ``DataLoader`` with workers, as a batch source.

:class:`DatasetBatches` keeps the engine's batch-source protocol (``num_batches``, ``epoch(epoch, rank,
world_size, start)``) over a map-style Dataset, so ``reprlab.fit`` trains on one like on its own arrays:

* the order of an epoch depends only on ``(seed, epoch)``: in one process it is the same
  ``torch.randperm`` as :class:`~reprlab.data.batches.TensorBatches` (a Dataset over the same values gives
  the same batches, element for element); under DDP each rank takes its share from a
  ``DistributedSampler`` (``set_epoch(epoch)``, ``drop_last=True``, so every rank has as many batches);
* ``start`` skips the batches a stopped run already trained on, so ``--resume`` is exact;
* the ``DataLoader``'s workers are seeded from a generator of ``(seed, epoch)``, never from the global
  random stream, which the engine saves and restores with its checkpoints.

An item may be ``x``, ``(x,)``, ``(x, y)`` or a dict with ``"x"`` (and ``"y"``). Collated batches are
``{"x": float32, "y": int64}``: uint8 images are scaled to [0, 1] as reprlab's own loaders do.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ..errors import DataError
from .batches import Batch, epoch_generator


def _as_batch(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        if "x" not in item:
            raise DataError(f"a Dataset item is a dict without 'x' (it has {', '.join(map(str, item))}); add 'x'")
        return item
    if isinstance(item, (tuple, list)):
        if len(item) == 1:
            return {"x": item[0]}
        if len(item) == 2:
            return {"x": item[0], "y": item[1]}
        raise DataError(f"a Dataset item is a sequence of {len(item)} values; give x, (x, y) or {{'x': ..., 'y': ...}}")
    return {"x": item}


def _tensor(v: Any, key: str) -> torch.Tensor:
    t = v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))
    if t.dtype == torch.uint8 and key == "x":
        return t.float().div_(255.0)  # the same op as the built-in loaders
    if t.dtype == torch.bool:
        return t.float()
    if t.is_floating_point():
        return t.float()
    return t.long()


def collate_items(items: Sequence[Any]) -> Batch:
    """A batch dict from Dataset items (module level, so DataLoader workers can run it)."""
    from torch.utils.data import default_collate

    batch = default_collate([_as_batch(it) for it in items])
    return {k: _tensor(v, k) for k, v in batch.items()}


class DatasetBatches:
    """A batch source over a map-style ``torch.utils.data.Dataset`` (see the module docstring).

    ``indices`` restricts it to those items (a split part); ``workers`` is the DataLoader's
    ``num_workers`` (0 loads in this process)."""

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        workers: int = 0,
        indices: Sequence[int] | np.ndarray | None = None,
    ):
        try:
            total = len(dataset)
        except TypeError:
            raise DataError(
                f"{type(dataset).__name__} has no length; give a map-style Dataset (with __len__ and __getitem__)"
            ) from None
        self.dataset = dataset
        self.indices = np.arange(total, dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
        self.n = len(self.indices)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.workers = max(0, int(workers))

    def __len__(self) -> int:
        return self.n

    def _per_rank(self, world_size: int) -> int:
        return self.n // world_size if world_size > 1 else self.n

    def num_batches(self, world_size: int = 1) -> int:
        m = self._per_rank(world_size)
        return m // self.batch_size if self.drop_last else -(-m // self.batch_size)

    def order(self, epoch: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
        """The positions (into ``indices``) this rank reads in ``epoch``, in order."""
        if world_size > 1:
            from torch.utils.data import DistributedSampler

            sampler = DistributedSampler(
                range(self.n), num_replicas=world_size, rank=rank, shuffle=self.shuffle, seed=self.seed, drop_last=True
            )
            sampler.set_epoch(epoch)
            return np.fromiter(iter(sampler), dtype=np.int64, count=self._per_rank(world_size))
        if self.shuffle:
            return torch.randperm(self.n, generator=epoch_generator(self.seed, epoch)).numpy()
        return np.arange(self.n, dtype=np.int64)

    def epoch(self, epoch: int, rank: int = 0, world_size: int = 1, start: int = 0) -> Iterator[Batch]:
        from torch.utils.data import DataLoader

        order = self.order(epoch, rank, world_size)
        bs = self.batch_size
        batches = [
            self.indices[order[b * bs : (b + 1) * bs]].tolist() for b in range(start, self.num_batches(world_size))
        ]
        if not batches:
            return
        # workers take their seeds from this generator, not from the global stream the engine checkpoints
        g = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + int(epoch) + 7919 * int(rank))
        loader = DataLoader(
            self.dataset, batch_sampler=batches, num_workers=self.workers, collate_fn=collate_items, generator=g
        )
        yield from loader

    def first(self, n: int = 64) -> Batch:
        """The first ``n`` items as one batch (in dataset order, in this process): to read shapes and ranges."""
        take = self.indices[: max(1, min(n, self.n))].tolist()
        return collate_items([self.dataset[i] for i in take])


__all__ = ["DatasetBatches", "collate_items"]
