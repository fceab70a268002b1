"""Source and target datasets of the transfer study, label budgets, and fitting a target to a backbone's input.

* ``fashion-mnist-0-4`` / ``fashion-mnist-5-9``: Fashion-MNIST's first / last five classes, labels 0..4
  (transfer across classes);
* ``digits-28``: scikit-learn's digits upsampled (bilinear) to 28x28, so a Fashion-MNIST backbone takes
  it (transfer across tasks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError
from . import _describe_digits, _describe_fashion, register_dataset
from .images import (
    FASHION_MNIST_CLASSES,
    ImageData,
    load_digits_split,
    load_fashion_mnist,
    locate_fashion_mnist,
    split_train_val,
)


def _class_subset(x: Tensor, y: Tensor, classes: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    keep = torch.isin(y, torch.tensor(classes))
    remap = torch.full((int(y.max()) + 1,), -1, dtype=torch.long)
    remap[list(classes)] = torch.arange(len(classes))
    return x[keep], remap[y[keep]]


def _fashion_subset(classes: tuple[int, ...], name: str):
    def load(data_dir: str | None = None, val_size: int = 5000, limit: int = 0) -> ImageData:
        x, y = _class_subset(*load_fashion_mnist("train", data_dir), classes)
        tr, va = split_train_val(x, y, min(val_size, len(x) // 2), limit)
        te = _class_subset(*load_fashion_mnist("test", data_dir), classes)
        return ImageData(
            name, tr, va, te, tuple(FASHION_MNIST_CLASSES[c] for c in classes), str(locate_fashion_mnist(data_dir))
        )

    return load


def _describe_half(data_dir: str | None) -> dict:
    d = _describe_fashion(data_dir)
    if d["found"]:
        d["sizes"] = "30000 train / 5000 test, 1x28x28, 5 classes"
    return d


register_dataset("fashion-mnist-0-4", "images", _describe_half)(_fashion_subset((0, 1, 2, 3, 4), "fashion-mnist-0-4"))
register_dataset("fashion-mnist-5-9", "images", _describe_half)(_fashion_subset((5, 6, 7, 8, 9), "fashion-mnist-5-9"))


def _describe_digits28(data_dir: str | None) -> dict:
    d = _describe_digits(data_dir)
    d["sizes"] = "1437 train / 360 test, 1x28x28 (upsampled from 8x8), 10 classes"
    return d


@register_dataset("digits-28", "images", _describe_digits28)
def _load_digits28(data_dir: str | None = None, val_size: int = 5000, limit: int = 0) -> ImageData:
    x, y = load_digits_split("train", size=28)
    tr, va = split_train_val(x, y, min(val_size, len(x) * 15 // 100), limit)
    return ImageData(
        "digits-28",
        tr,
        va,
        load_digits_split("test", size=28),
        tuple(str(i) for i in range(10)),
        "scikit-learn, upsampled to 28x28",
    )


def label_budget(
    x: Tensor, y: Tensor, per_class: int, seed: int = 0, num_classes: int | None = None, names=None
) -> tuple[Tensor, Tensor]:
    """``per_class`` examples of every class, drawn at random (by ``seed``) from (x, y)."""
    k = num_classes or int(y.max()) + 1
    counts = torch.bincount(y, minlength=k)
    if int(counts.min()) < per_class:
        c = int(counts.argmin())
        name = f"{c} ({names[c]})" if names and str(names[c]) != str(c) else str(c)
        raise DataError(
            f"--labels-per-class {per_class} is more than the data has: class {name} has {int(counts[c])} "
            f"training examples; choose at most {int(counts.min())}"
        )
    g = torch.Generator().manual_seed(seed)
    idx = torch.cat(
        [torch.nonzero(y == c).flatten()[torch.randperm(int(counts[c]), generator=g)[:per_class]] for c in range(k)]
    )
    idx = idx[torch.randperm(len(idx), generator=g)]
    return x[idx], y[idx]


def fit_input(x: Tensor, want: tuple[int, ...], resize: bool, what: str) -> Tensor:
    """Images x (N, C, H, W) shaped as ``want`` (C', H', W'); with ``resize``, convert channels and resample."""
    have = tuple(x.shape[1:])
    want = tuple(want)
    if have == want:
        return x
    if not resize:
        fixes = []
        if have[0] != want[0]:
            fixes.append("repeat the grey channel" if have[0] == 1 else "average the colour channels")
        if have[1:] != want[1:]:
            fixes.append(f"resample to {want[1]}x{want[2]} (bilinear)")
        hint = (
            "--target digits-28 (digits upsampled to 28x28), or " if what == "digits" and want[1:] == (28, 28) else ""
        )
        raise DataError(
            f"{what} images are {'x'.join(map(str, have))} but the backbone takes {'x'.join(map(str, want))}; "
            f"use {hint}--resize to {' and '.join(fixes)}"
        )
    if have[0] != want[0]:
        if have[0] == 1:
            x = x.expand(-1, want[0], -1, -1)
        elif want[0] == 1:
            x = x.mean(1, keepdim=True)
        else:
            raise DataError(
                f"{what} images have {have[0]} channels and the backbone takes {want[0]}; no resize converts that"
            )
    if have[1:] != want[1:]:
        x = F.interpolate(x, size=want[1:], mode="bilinear", align_corners=False).clamp_(0, 1)
    return x.contiguous()
