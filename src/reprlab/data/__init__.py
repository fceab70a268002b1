"""Datasets by name. ``reprlab datasets`` lists them; :func:`load_images` loads an image dataset.

Each family may register more datasets with :func:`register_dataset` (e.g. ``fashion-m``,
``cmudict``). A loader returns an :class:`~reprlab.data.images.ImageData` (image datasets) or
whatever its task needs; ``describe`` returns one line for ``reprlab datasets``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import ConfigError, DataError
from .batches import Batch, BatchSource, TensorBatches
from .images import (
    FASHION_MNIST_CLASSES,
    HOW_TO_GET_FASHION_MNIST,
    ImageData,
    load_digits_split,
    load_fashion_mnist,
    locate_fashion_mnist,
    split_train_val,
)
from .spec import FORMS, DataSpec, open_data, open_own_data, parse_data_spec


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    kind: str  # "images", "g2p", ...
    load: Callable[..., Any]
    describe: Callable[[str | None], dict]


_DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(name: str, kind: str, describe: Callable[[str | None], dict]) -> Callable:
    def deco(fn: Callable) -> Callable:
        _DATASETS[name] = DatasetEntry(name, kind, fn, describe)
        return fn

    return deco


DATASET_PLUGINS = "reprlab.datasets"  # entry-point group of outside packages' datasets
_PLUGINS_LOADED = False


def _load_plugins() -> None:
    """Import the dataset modules beside the families (they register on import), then outside packages'
    datasets (entry points of group ``reprlab.datasets``; a broken one is a ConfigError naming it)."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    import importlib
    import pkgutil

    from .. import data as pkg
    from ..plugins import load_plugins

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in ("batches", "images"):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")
    _PLUGINS_LOADED = True  # before the plugins: one that imports reprlab.data must not recurse
    try:
        load_plugins(DATASET_PLUGINS)
    except ConfigError:
        _PLUGINS_LOADED = False
        raise


def dataset_names() -> list[str]:
    _load_plugins()
    return sorted(_DATASETS)


def get_dataset(name: str) -> DatasetEntry:
    _load_plugins()
    if name not in _DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; available: {', '.join(sorted(_DATASETS))}")
    return _DATASETS[name]


def load_images(name: str, data_dir: str | None = None, val_size: int = 5000, limit: int = 0) -> ImageData:
    """Load an image dataset by name, with ``val_size`` examples held out of the training split."""
    entry = get_dataset(name)
    if entry.kind != "images":
        raise ConfigError(f"dataset {name!r} holds {entry.kind}, not images")
    return entry.load(data_dir=data_dir, val_size=val_size, limit=limit)


def _describe_fashion(data_dir: str | None) -> dict:
    try:
        folder = locate_fashion_mnist(data_dir)
    except DataError as e:
        return {"found": False, "where": None, "sizes": None, "how": str(e)}
    if folder is None:
        return {"found": False, "where": None, "sizes": None, "how": HOW_TO_GET_FASHION_MNIST}
    return {"found": True, "where": str(folder), "sizes": "60000 train / 10000 test, 1x28x28, 10 classes", "how": None}


@register_dataset("fashion-mnist", "images", _describe_fashion)
def _load_fashion(data_dir: str | None = None, val_size: int = 5000, limit: int = 0) -> ImageData:
    x, y = load_fashion_mnist("train", data_dir)
    tr, va = split_train_val(x, y, val_size, limit)
    te = load_fashion_mnist("test", data_dir)
    return ImageData("fashion-mnist", tr, va, te, FASHION_MNIST_CLASSES, str(locate_fashion_mnist(data_dir)))


def _describe_digits(_: str | None) -> dict:
    return {
        "found": True,
        "where": "scikit-learn (bundled)",
        "sizes": "1437 train / 360 test, 1x8x8, 10 classes",
        "how": None,
    }


@register_dataset("digits", "images", _describe_digits)
def _load_digits(data_dir: str | None = None, val_size: int = 5000, limit: int = 0) -> ImageData:
    x, y = load_digits_split("train")
    # digits is small: cap the held-out part at 15% of it
    tr, va = split_train_val(x, y, min(val_size, len(x) * 15 // 100), limit)
    te = load_digits_split("test")
    return ImageData("digits", tr, va, te, tuple(str(i) for i in range(10)), "scikit-learn")


__all__ = [
    "Batch",
    "BatchSource",
    "TensorBatches",
    "ImageData",
    "DatasetEntry",
    "register_dataset",
    "dataset_names",
    "get_dataset",
    "load_images",
    "DataSpec",
    "FORMS",
    "parse_data_spec",
    "open_data",
    "open_own_data",
]
