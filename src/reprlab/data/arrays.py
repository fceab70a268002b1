"""Arrays from ``.npz`` (``x``, optional ``y``, optional ``x_test``/``y_test``) and ``.npy`` (``x`` only).

What ``x`` holds is read from its number of dimensions: (N, D) are feature vectors; (N, H, W) are
grayscale images; (N, C, H, W) or (N, H, W, C) (C of 1, 3 or 4 last and not first) are images. uint8 images
are scaled to [0, 1] per batch; other values are used as float32 as they are. ``y`` holds class labels
(whole numbers or strings); they are renumbered 0..K-1 in sorted order (``classes`` keeps the originals).

A ``.npy`` file is memory-mapped, so it may be larger than memory; an ``.npz`` member is read into memory
(zip members cannot be mapped), so save large data as ``.npy``. The first open scans ``x`` once for NaN
and infinite values and for its content digest; the result is remembered under ``cache_dir()/arrays``
by the file's path, size and modification time.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import atomic_write_text, cache_dir
from .arraybatches import is_own_map, iter_row_chunks
from .splits import Split, SplitRows, make_split

SCAN_VERSION = 2  # 2: the scan also keeps the smallest and largest value


@dataclass
class ArrayData(SplitRows):
    """Arrays of one file: ``x`` (maybe a memory map), ``y`` int64 class indices or None, the split."""

    path: Path
    x: np.ndarray
    y: np.ndarray | None
    classes: tuple[str, ...]
    kind: str  # "images" or "features"
    channels_last: bool
    split: Split
    fingerprint: str
    value_range: tuple[float, float] | None = None  # the smallest and largest value of x, as batches give them

    @property
    def input_shape(self) -> tuple[int, ...]:
        s = tuple(int(v) for v in self.x.shape[1:])
        return (s[2], s[0], s[1]) if self.channels_last else s

    def record(self) -> dict:
        return {
            "kind": "arrays",
            "path": str(self.path),
            "shape": list(self.input_shape),
            "classes": list(self.classes),
            "fingerprint": self.fingerprint,
            "split": self.split.record(),
        }


def _check_x(x: np.ndarray, where: str) -> tuple[str, bool]:
    """("images" | "features", channels_last) from the shape; DataError for shapes that are neither."""
    if x.dtype.kind not in "biuf":
        raise DataError(f"{where}: x holds {x.dtype} values; give numbers (float or uint8 images)")
    if x.ndim == 2:
        return "features", False
    if x.ndim == 3:
        return "images", False
    if x.ndim == 4:
        last = x.shape[3] in (1, 3, 4) and x.shape[1] not in (1, 3, 4)
        return "images", last
    raise DataError(f"{where}: x has shape {x.shape}; give (N, D) features, (N, H, W) or (N, C, H, W) images")


def _labels(y: np.ndarray, n: int, where: str) -> tuple[np.ndarray, tuple[str, ...]]:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{where}: y has shape {y.shape}; it must hold one label per row of x ({n})")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"{where}: y holds values that are not whole numbers; give class labels")
        y = y.astype(np.int64)
    if y.dtype.kind not in "biuUS":
        raise DataError(f"{where}: y holds {y.dtype} values; give class labels (whole numbers or strings)")
    values, idx = np.unique(y, return_inverse=True)
    return idx.astype(np.int64).reshape(-1), tuple(str(v) for v in values)


def _scan(x: np.ndarray, where: str) -> tuple[str, float, float]:
    """(the content digest of ``x``, its smallest and largest value as batches give them: uint8 / 255);
    DataError naming the first row with NaN or an infinite value."""
    h = hashlib.sha256(json.dumps([str(x.dtype), list(x.shape)]).encode())
    row = 0
    lo, hi = math.inf, -math.inf
    for chunk in iter_row_chunks(x):
        if chunk.dtype.kind == "f":
            bad = ~np.isfinite(chunk.reshape(len(chunk), -1)).all(axis=1)
            if bad.any():
                raise DataError(f"{where}: x row {row + int(np.argmax(bad))} holds NaN or an infinite value")
        if chunk.size:
            lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
        h.update(memoryview(np.ascontiguousarray(chunk).reshape(-1)))
        row += len(chunk)
    if x.dtype == np.uint8:
        lo, hi = lo / 255.0, hi / 255.0
    return h.hexdigest()[:16], lo, hi


def _scan_cached(path: Path, x: np.ndarray, where: str) -> tuple[str, float, float]:
    """:func:`_scan`, remembered by the file's path, size and mtime (a big .npy is read once)."""
    st = path.stat()
    key = hashlib.sha256(json.dumps([SCAN_VERSION, str(path), st.st_size, st.st_mtime_ns]).encode()).hexdigest()
    memo = cache_dir() / "arrays" / f"{key[:24]}.json"
    try:
        m = json.loads(memo.read_text())
        return m["fingerprint"], float(m["min"]), float(m["max"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    fp, lo, hi = _scan(x, where)
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(memo, json.dumps({"path": str(path), "fingerprint": fp, "min": lo, "max": hi}))
    except OSError:
        pass  # a read-only cache only costs a re-scan next time
    return fp, lo, hi


def _load_npy(path: Path) -> np.ndarray:
    try:
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read the .npy file ({e}); save it with np.save") from None
    if x.ndim == 3 and is_own_map(x):
        # (N, H, W) -> (N, 1, H, W) as a map of its own (not a view), so batches can read its rows from the file
        x = np.memmap(x.filename, dtype=x.dtype, mode="r", offset=x.offset, shape=(x.shape[0], 1, *x.shape[1:]))
    elif x.ndim == 3:
        x = x[:, None]
    return x


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None, int | None]:
    """(x, y, first test row or None) of an .npz; ``x_test``/``y_test`` are appended as the test part."""
    try:
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            if "x" not in names:
                held = ", ".join(sorted(names)) or "nothing"
                raise DataError(f"{path} has no array 'x' (it holds {held}); save it with np.savez(path, x=..., y=...)")
            x = z["x"]
            y = z["y"] if "y" in names else None
            if "x_test" not in names:
                return (x[:, None] if x.ndim == 3 else x), y, None
            xt = z["x_test"]
            if (y is None) != ("y_test" not in names):
                raise DataError(f"{path}: give y and y_test together, or neither")
            if xt.shape[1:] != x.shape[1:]:
                raise DataError(f"{path}: x_test has shape {xt.shape[1:]} per row, x has {x.shape[1:]}")
            if y is not None and (len(y) != len(x) or len(z["y_test"]) != len(xt)):
                raise DataError(f"{path}: y and y_test must hold one label per row of x and x_test")
            both = np.concatenate([x, xt])
            yy = None if y is None else np.concatenate([y, z["y_test"]])
            return (both[:, None] if both.ndim == 3 else both), yy, len(x)
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read the .npz file ({e}); save it with np.savez") from None


def open_arrays(path: str | Path, test_fraction: float = 0.2, val_fraction: float = 0.1, seed: int = 0) -> ArrayData:
    """Open an ``.npz`` or ``.npy`` file; the split is ``x_test`` when given, else drawn (stratified by y)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"{p} does not exist; give an .npz file (x, optional y) or an .npy file (x)")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        x, y, first_test = _load_npy(p), None, None
    elif suffix == ".npz":
        x, y, first_test = _load_npz(p)
    else:
        raise DataError(f"{p}: arrays are read from .npz or .npy files, not {suffix or 'a file without suffix'}")
    kind, last = _check_x(x, str(p))
    if len(x) < 2:
        raise DataError(f"{p}: x has {len(x)} row(s); give at least 2")
    labels, classes = (None, ()) if y is None else _labels(y, len(x), str(p))
    fingerprint, lo, hi = _scan_cached(p.resolve(), x, str(p))
    if first_test is not None:
        fingerprint = hashlib.sha256(f"{fingerprint}|test from {first_test}".encode()).hexdigest()[:16]
    if labels is not None:
        h = hashlib.sha256((fingerprint + json.dumps(classes)).encode() + labels.astype("<i8").tobytes())
        fingerprint = h.hexdigest()[:16]
    given = None if first_test is None else np.arange(first_test, len(x), dtype=np.int64)
    split = make_split(len(x), labels, test_fraction, val_fraction, seed, given_test=given)
    return ArrayData(p.resolve(), x, labels, classes, kind, last, split, fingerprint, (lo, hi))


__all__ = ["ArrayData", "open_arrays"]
