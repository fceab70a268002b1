"""Seeded train / val / test splits of a user's data, stratified by label, recorded so a run can re-create them.

A split is three arrays of row indices into the data. It is a pure function of the number of rows, the
labels, the fractions and the seed, so a run stores :meth:`Split.record` (method, seed, fractions, counts
and a digest of the indices) and :func:`split_from_record` makes the same split again, or says that the
data no longer gives it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .arraybatches import ArrayBatches


@dataclass(frozen=True)
class Split:
    """Row indices of each part, each sorted ascending; ``method`` is "stratified", "random" or "given"."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    method: str
    seed: int
    test_fraction: float
    val_fraction: float

    def part(self, name: str) -> np.ndarray:
        if name not in ("train", "val", "test"):
            raise ValueError(f"no split part {name!r}; use train, val or test")
        return getattr(self, name)

    def digest(self) -> str:
        """A short hex digest of the three index lists."""
        h = hashlib.sha256()
        for part in (self.train, self.val, self.test):
            h.update(np.ascontiguousarray(part, dtype="<i8").tobytes())
            h.update(b"|")
        return h.hexdigest()[:16]

    def record(self, indices: bool = False) -> dict:
        """What a run stores to re-create this split (JSON-ready); ``indices=True`` adds the val/test lists."""
        out = {
            "method": self.method,
            "seed": int(self.seed),
            "test_fraction": float(self.test_fraction),
            "val_fraction": float(self.val_fraction),
            "counts": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
            "digest": self.digest(),
        }
        if indices:
            out["val"] = self.val.tolist()
            out["test"] = self.test.tolist()
        return out


def _check_fraction(name: str, f: float) -> float:
    f = float(f)
    if not 0.0 <= f < 1.0:
        raise DataError(f"{name}={f} is out of range; give a fraction in [0, 1)")
    return f


def _held_out(rows: np.ndarray, labels: np.ndarray | None, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A seeded subset of ``rows`` holding ``fraction`` of each label (at least one row stays behind per label)."""
    if fraction == 0.0 or len(rows) == 0:
        return rows[:0]
    if labels is None:
        k = min(int(np.floor(fraction * len(rows) + 0.5)), len(rows) - 1)
        return np.sort(rng.permutation(rows)[:k])
    held = []
    lab = labels[rows]
    for c in np.unique(lab):  # sorted, so the draws happen in a fixed order
        members = rows[lab == c]
        k = min(int(np.floor(fraction * len(members) + 0.5)), len(members) - 1)
        held.append(rng.permutation(members)[:k])
    return np.sort(np.concatenate(held)) if held else rows[:0]


def make_split(
    n: int,
    labels: np.ndarray | None = None,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
    given_test: np.ndarray | None = None,
    given_val: np.ndarray | None = None,
) -> Split:
    """Split ``n`` rows: ``test_fraction`` of all rows, then ``val_fraction`` of the rest for validation.

    With labels the split is stratified (each class keeps its share; every class keeps at least one
    training row). ``given_test`` / ``given_val`` (row indices, e.g. from ``train/`` and ``test/``
    sub-folders) are used as they are instead of drawing them; the val part is then drawn from the rest.
    """
    test_fraction = _check_fraction("test_fraction", test_fraction)
    val_fraction = _check_fraction("val_fraction", val_fraction)
    if labels is not None:
        labels = np.asarray(labels)
        if len(labels) != n:
            raise ValueError(f"{len(labels)} labels for {n} rows")
    rng = np.random.default_rng(int(seed))
    rows = np.arange(n, dtype=np.int64)
    if given_test is not None:
        test = np.sort(np.asarray(given_test, dtype=np.int64))
    else:
        test = _held_out(rows, labels, test_fraction, rng)
    rest = np.setdiff1d(rows, test, assume_unique=True)
    if given_val is not None:
        val = np.sort(np.asarray(given_val, dtype=np.int64))
    else:
        val = _held_out(rest, labels, val_fraction, rng)
    train = np.setdiff1d(rest, val, assume_unique=True)
    if len(train) == 0:
        raise DataError(f"the split leaves no training rows ({n} rows, test {len(test)}, val {len(val)})")
    if given_test is not None or given_val is not None:
        method = "given"
    else:
        method = "stratified" if labels is not None else "random"
    return Split(train, val, test, method, int(seed), test_fraction, val_fraction)


def split_from_record(
    record: dict,
    n: int,
    labels: np.ndarray | None = None,
    given_test: np.ndarray | None = None,
    given_val: np.ndarray | None = None,
) -> Split:
    """Re-create a recorded split; DataError when the data now gives a different one (it changed)."""
    if "val" in record and given_val is None:
        given_val = np.asarray(record["val"], dtype=np.int64)
    if "test" in record and given_test is None:
        given_test = np.asarray(record["test"], dtype=np.int64)
    sp = make_split(
        n,
        labels,
        record["test_fraction"],
        record["val_fraction"],
        record["seed"],
        given_test=given_test,
        given_val=given_val,
    )
    if sp.digest() != record["digest"]:
        raise DataError(
            f"the data no longer gives the recorded split (digest {sp.digest()} != {record['digest']}); "
            "the data changed since the run was made"
        )
    return Split(sp.train, sp.val, sp.test, record["method"], sp.seed, sp.test_fraction, sp.val_fraction)


def require_labels(data, min_classes: int = 2) -> None:
    """DataError (one line) unless ``data`` (FolderData, ArrayData, TableData) has >= ``min_classes`` classes."""
    where = getattr(data, "root", None) or getattr(data, "path", "the data")
    if getattr(data, "y", None) is None:
        raise DataError(
            f"{where} has no labels, and this model needs them; "
            "put the images in one sub-folder per class (or give a label column / a 'y' array)"
        )
    classes = list(getattr(data, "classes", ()) or np.unique(data.y))
    if len(classes) < min_classes:
        names = ", ".join(repr(str(c)) for c in classes)
        raise DataError(f"{where} has {len(classes)} class ({names}); this model needs at least {min_classes} classes")


class SplitRows:
    """What a user's data set split three ways shares (FolderData, ArrayData, TableData): ``x``, ``y`` (or
    None), ``classes`` and a :class:`Split`, read in batches of one split part."""

    # A subclass (a dataclass) has the fields x, y, classes and split, and may have channels_last (x is
    # (N, H, W, C), batches give (B, C, H, W)); they are not declared here, so its field order stays its own.

    def __len__(self) -> int:
        return len(self.x)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def labelled(self) -> bool:
        return self.y is not None

    def require_labels(self, min_classes: int = 2) -> None:
        """DataError unless the data has labels of at least ``min_classes`` classes."""
        require_labels(self, min_classes)

    def _rows(self, part: str, limit: int = 0):
        rows = self.split.part(part)
        return rows[:limit] if limit else rows

    def batches(
        self,
        part: str = "train",
        batch_size: int = 256,
        shuffle: bool | None = None,
        seed: int = 0,
        drop_last: bool = False,
        limit: int = 0,
    ) -> ArrayBatches:
        """An :class:`ArrayBatches` over one split part: ``{"x": float32, "y": int64}`` (no ``y`` without
        labels; images as (B, C, H, W) in [0, 1]). Shuffled by default for ``train`` only."""
        arrays = {"x": self.x} if self.y is None else {"x": self.x, "y": self.y}
        shuffle = part == "train" if shuffle is None else shuffle
        return ArrayBatches(
            arrays,
            batch_size,
            shuffle,
            seed,
            drop_last,
            indices=self._rows(part, limit),
            channels_last=("x",) if getattr(self, "channels_last", False) else (),
        )


__all__ = ["Split", "SplitRows", "make_split", "require_labels", "split_from_record"]
