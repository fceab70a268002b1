"""Image datasets held as in-memory tensors: Fashion-MNIST (IDX files) and scikit-learn's digits.

Images are float32 in [0, 1] with shape (N, C, H, W); labels are int64.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError

FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_MNIST_COUNTS = {"train": 60000, "test": 10000}
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
HOW_TO_GET_FASHION_MNIST = (
    "install it with 'apt-get install dataset-fashion-mnist' (Debian), "
    "or put the four IDX files (gzipped or raw) in a folder and pass --data-dir DIR or set REPRLAB_DATA=DIR"
)

# IDX magic: two zero bytes, a type code (0x08 = unsigned byte), and the number of dimensions.
_IDX_UBYTE = 0x08


def read_idx(
    path: str | Path, expect_ndim: int, expect_count: int | None = None, expect_shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """Read an IDX file (raw or gzipped) of unsigned bytes, checking magic number, dimensions and size."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(
            f"{path}: cannot read ({e.__class__.__name__}: {e}); the file is corrupt, re-download it"
        ) from None
    if len(raw) < 4:
        raise DataError(f"{path}: truncated IDX file ({len(raw)} bytes); re-download it")
    zero, dtype, ndim = int.from_bytes(raw[0:2], "big"), raw[2], raw[3]
    if zero != 0 or dtype != _IDX_UBYTE:
        raise DataError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()}); is this the right file?")
    if ndim != expect_ndim:
        raise DataError(f"{path}: IDX file has {ndim} dimensions, expected {expect_ndim}; is this the right file?")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header; re-download it")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if expect_count is not None and dims[0] != expect_count:
        raise DataError(f"{path}: holds {dims[0]} items, expected {expect_count}; the file is wrong or incomplete")
    if expect_shape is not None and dims[1:] != expect_shape:
        raise DataError(f"{path}: items have shape {dims[1:]}, expected {expect_shape}")
    need = int(np.prod(dims))
    if len(raw) - header != need:
        raise DataError(
            f"{path}: truncated or padded IDX data ({len(raw) - header} bytes for {need} expected); re-download it"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = folder / name
        if p.is_file():
            return p
    return None


def fashion_mnist_candidates(data_dir: str | None = None) -> list[tuple[str, Path]]:
    """Folders searched, in order: --data-dir, $REPRLAB_DATA, the Debian package's folder."""
    out = []
    if data_dir:
        out.append(("--data-dir", Path(data_dir)))
    env = os.environ.get("REPRLAB_DATA")
    if env:
        out.append(("$REPRLAB_DATA", Path(env)))
        out.append(("$REPRLAB_DATA", Path(env) / "fashion-mnist"))
    out.append(("system", Path(FASHION_MNIST_SYSTEM_DIR)))
    return out


def locate_fashion_mnist(data_dir: str | None = None) -> Path | None:
    for _, folder in fashion_mnist_candidates(data_dir):
        if all(_find_file(folder, s) for s in FASHION_MNIST_FILES.values()):
            return folder
        if data_dir and folder == Path(data_dir):
            # the user named this folder: a partial one is an error, not a reason to look elsewhere
            if not folder.is_dir():
                raise DataError(f"--data-dir {folder} does not exist; {HOW_TO_GET_FASHION_MNIST}")
            missing = [s for s in FASHION_MNIST_FILES.values() if not _find_file(folder, s)]
            raise DataError(f"--data-dir {folder} lacks {', '.join(missing)}; {HOW_TO_GET_FASHION_MNIST}")
    return None


_CACHE: dict[tuple[str, str], tuple[Tensor, Tensor]] = {}


def load_fashion_mnist(split: str, data_dir: str | None = None) -> tuple[Tensor, Tensor]:
    """(images float32 (N,1,28,28) in [0,1], labels int64) for split 'train' or 'test'."""
    folder = locate_fashion_mnist(data_dir)
    if folder is None:
        raise DataError(f"Fashion-MNIST not found; {HOW_TO_GET_FASHION_MNIST}")
    key = (str(folder), split)
    if key not in _CACHE:
        count = FASHION_MNIST_COUNTS[split]
        imgs = read_idx(_find_file(folder, FASHION_MNIST_FILES[f"{split}_images"]), 3, count, (28, 28))
        labels = read_idx(_find_file(folder, FASHION_MNIST_FILES[f"{split}_labels"]), 1, count)
        if labels.max() > 9:
            raise DataError(f"{folder}: labels outside 0..9; the label file is corrupt")
        x = torch.from_numpy(imgs.copy()).unsqueeze(1).float().div_(255.0)
        y = torch.from_numpy(labels.astype(np.int64))
        _CACHE[key] = (x, y)
    return _CACHE[key]


def load_digits_split(split: str, size: int = 8) -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled 8x8 digits in [0,1], a fixed stratified 80/20 split; ``size`` upsamples (bilinear)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.images.astype(np.float32) / 16.0
    idx_tr, idx_te = train_test_split(np.arange(len(x)), test_size=0.2, random_state=0, stratify=d.target)
    idx = idx_tr if split == "train" else idx_te
    xt = torch.from_numpy(x[idx]).unsqueeze(1)
    if size != 8:
        xt = torch.nn.functional.interpolate(xt, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)
    return xt.contiguous(), torch.from_numpy(d.target[idx].astype(np.int64))


@dataclass
class ImageData:
    """A dataset split three ways, as tensors. ``val`` is carved from the end of the training split."""

    name: str
    train: tuple[Tensor, Tensor]
    val: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor]
    classes: tuple[str, ...]
    source: str
    info: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train[0].shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def split_train_val(x: Tensor, y: Tensor, val_size: int, limit: int = 0):
    if val_size >= len(x):
        raise DataError(f"data.val_size={val_size} leaves no training data ({len(x)} examples)")
    n = len(x) - val_size
    tr = (x[:n], y[:n])
    va = (x[n:], y[n:])
    if limit:
        tr = (tr[0][:limit], tr[1][:limit])
    return tr, va
