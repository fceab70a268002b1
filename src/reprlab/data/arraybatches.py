"""Batching by index over numpy arrays, in memory or memory-mapped from disk.

:class:`ArrayBatches` is the :class:`~reprlab.data.batches.TensorBatches` protocol over numpy arrays: the
order of an epoch is the same ``torch.randperm`` of ``(seed, epoch)``, so over the same rows it yields the
same batches as ``TensorBatches`` over the same values, element for element. Only the rows of one batch are
read and converted (uint8 -> float32 in [0, 1]), so a memory-mapped array larger than memory streams from
disk.

Pages read through a memory map count as the process's resident memory until it is unmapped, and recent
kernels map whole large folios around each touched row, so a few random batches make most of a file
resident. A memory-mapped array larger than ``map_limit`` is therefore read with positioned file reads
(``os.preadv``) of just the batch's rows: the page cache still serves repeated reads, but nothing stays
resident in the process.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from .batches import Batch, epoch_generator

MAP_LIMIT = 512 << 20  # memory maps larger than this are read row by row with file reads


def open_npy_memmap(path: str | Path) -> np.memmap:
    """A read-only memory map of a ``.npy`` file (no byte of data is read)."""
    a = np.load(path, mmap_mode="r")
    if not isinstance(a, np.memmap):  # pragma: no cover - np.load maps every non-object .npy
        raise TypeError(f"{path} did not open as a memory map")
    return a


def is_own_map(a: np.ndarray) -> bool:
    """True for a memory map that owns its mapping (not a view of one): only those can be re-opened."""
    return isinstance(a, np.memmap) and isinstance(a.base, mmap.mmap) and a.filename is not None


def _read_rows(a: np.memmap, fd: int, rows: np.ndarray) -> np.ndarray:
    """``a[rows]`` read from the file with one ``preadv`` per run of consecutive rows (no mapping)."""
    row_bytes = int(np.prod(a.shape[1:], dtype=np.int64)) * a.dtype.itemsize
    srt = np.argsort(rows, kind="stable")
    r = rows[srt]
    buf = np.empty((len(r), *a.shape[1:]), dtype=a.dtype)
    view = memoryview(buf.reshape(-1).view(np.uint8))
    cuts = (np.flatnonzero(np.diff(r) != 1) + 1).tolist()
    first = r.tolist()
    base = int(a.offset)
    for s, e in zip([0, *cuts], [*cuts, len(first)]):
        lo, hi, pos = s * row_bytes, e * row_bytes, base + first[s] * row_bytes
        while lo < hi:  # a read may return less than asked
            got = os.preadv(fd, [view[lo:hi]], pos)
            if got <= 0:
                raise OSError(f"{a.filename}: unexpected end of file")
            lo, pos = lo + got, pos + got
    out = np.empty_like(buf)
    out[srt] = buf
    return out


def iter_row_chunks(a: np.ndarray, chunk_bytes: int = 64 << 20) -> Iterator[np.ndarray]:
    """Copies of consecutive row blocks of ``a``; a memory map is read with plain file reads (not mapped),
    so a pass over a file larger than memory leaves nothing resident."""
    n = len(a)
    row_bytes = max(1, int(np.prod(a.shape[1:], dtype=np.int64)) * a.dtype.itemsize)
    step = max(1, chunk_bytes // row_bytes)
    if is_own_map(a) and a.flags.c_contiguous:
        with open(a.filename, "rb") as f:
            for s in range(0, n, step):
                k = min(step, n - s)
                f.seek(a.offset + s * row_bytes)
                yield np.fromfile(f, dtype=a.dtype, count=k * (row_bytes // a.dtype.itemsize)).reshape(
                    (k, *a.shape[1:])
                )
        return
    for s in range(0, n, step):
        yield np.array(a[s : s + step])


def to_tensor(a: np.ndarray, channels_last: bool = False) -> Tensor:
    """One batch as a tensor: uint8 -> float32 / 255 (images), other integers -> int64, floats -> float32."""
    if channels_last:
        a = np.moveaxis(a, -1, 1)
    t = torch.from_numpy(np.ascontiguousarray(a))
    if a.dtype == np.uint8:
        return t.float().div_(255.0)  # the same op as the built-in loaders, so the values are bitwise equal
    if a.dtype == np.bool_:
        return t.float()
    if np.issubdtype(a.dtype, np.integer):
        return t.long()
    return t.float()


class ArrayBatches:
    """Batches of a dict of equal-length numpy arrays (or memory maps), by index, shuffled per epoch.

    ``indices`` restricts the source to those rows (a split part) without copying anything;
    ``channels_last`` names keys stored as (N, H, W, C) that batches return as (B, C, H, W).
    Memory maps larger than ``map_limit`` bytes are read with file reads (see the module docstring);
    ``map_limit=None`` always reads through the map, ``0`` never does, ``"auto"`` takes :data:`MAP_LIMIT` as it
    is when the source is made.
    """

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        indices: np.ndarray | Sequence[int] | None = None,
        channels_last: Sequence[str] = (),
        map_limit: int | None | str = "auto",
    ):
        lengths = {k: len(v) for k, v in arrays.items()}
        if not lengths or len(set(lengths.values())) != 1:
            raise ValueError(f"arrays differ in length (or none given): {lengths}")
        total = next(iter(lengths.values()))
        self.arrays = dict(arrays)
        self.indices = np.arange(total, dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= total):
            raise ValueError(f"indices outside 0..{total - 1}")
        self.n = len(self.indices)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.channels_last = tuple(channels_last)
        if map_limit == "auto":
            map_limit = MAP_LIMIT
        self.map_limit = map_limit
        self._fds: dict[str, int] = {}
        for k, a in self.arrays.items():
            if map_limit is not None and a.nbytes > map_limit and is_own_map(a) and a.flags.c_contiguous:
                self._fds[k] = os.open(a.filename, os.O_RDONLY)

    def __del__(self) -> None:
        for fd in getattr(self, "_fds", {}).values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = {}

    def __getstate__(self) -> dict:
        # a memory map pickles as its whole content: send where it lives instead, and no file descriptors
        state = dict(self.__dict__)
        state["_fds"] = {}
        state["arrays"] = {
            k: ("memmap", str(a.filename), a.dtype.str, int(a.offset), a.shape) if is_own_map(a) else a
            for k, a in self.arrays.items()
        }
        state["_streamed"] = sorted(self._fds)
        return state

    def __setstate__(self, state: dict) -> None:
        streamed = state.pop("_streamed", [])
        self.__dict__.update(state)
        for k, a in list(self.arrays.items()):
            if isinstance(a, tuple) and a and a[0] == "memmap":
                _, filename, dtype, offset, shape = a
                self.arrays[k] = np.memmap(filename, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape)
        self._fds = {k: os.open(self.arrays[k].filename, os.O_RDONLY) for k in streamed}

    def streams(self, key: str = "x") -> bool:
        """True when ``key`` is read with file reads rather than through its memory map."""
        return key in self._fds

    def __len__(self) -> int:
        return self.n

    def _per_rank(self, world_size: int) -> int:
        return self.n // world_size if world_size > 1 else self.n

    def num_batches(self, world_size: int = 1) -> int:
        m = self._per_rank(world_size)
        return m // self.batch_size if self.drop_last else -(-m // self.batch_size)

    def _take(self, key: str, rows: np.ndarray) -> np.ndarray:
        a = self.arrays[key]
        if key in self._fds:
            return _read_rows(a, self._fds[key], rows)
        if isinstance(a, np.memmap):
            # read in file order (fewer seeks, whole pages), then put the rows back in batch order
            srt = np.argsort(rows, kind="stable")
            out = np.empty((len(rows), *a.shape[1:]), dtype=a.dtype)
            out[srt] = a[rows[srt]]
            return out
        return a[rows]

    def rows(self, rows: np.ndarray | Sequence[int]) -> Batch:
        """The batch of the given row numbers (positions in the data, not in ``indices``)."""
        rows = np.asarray(rows, dtype=np.int64)
        return {k: to_tensor(self._take(k, rows), k in self.channels_last) for k in self.arrays}

    def epoch(self, epoch: int, rank: int = 0, world_size: int = 1, start: int = 0) -> Iterator[Batch]:
        if self.shuffle:
            order = torch.randperm(self.n, generator=epoch_generator(self.seed, epoch)).numpy()
        else:
            order = np.arange(self.n)
        if world_size > 1:
            order = order[rank::world_size][: self._per_rank(world_size)]
        for b in range(start, self.num_batches(world_size)):
            yield self.rows(self.indices[order[b * self.batch_size : (b + 1) * self.batch_size]])


__all__ = ["ArrayBatches", "open_npy_memmap", "iter_row_chunks", "to_tensor", "MAP_LIMIT"]
