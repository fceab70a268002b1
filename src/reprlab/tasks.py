"""Tasks turn a data config into batch sources for the engine, and tell the CLI what the model needs.

A model's registry entry names its task ("images" for most). Families with other data
(grapheme-to-phoneme, domain pairs) register their own task with :func:`register_task`.

The ``images`` task reads ``--data`` as :func:`~reprlab.data.spec.parse_data_spec` does: a built-in name
loads that dataset as before; a folder of images, an ``.npz``/``.npy`` file or a ``.csv``/``.tsv`` table is
opened with its reader (:func:`open_own_data`) and batched by index from its split. The data fixes the
model's ``input_shape`` and ``num_classes``; data outside [0, 1] (a standardised table, float arrays) also
sets the model's range settings (:data:`UNBOUNDED_SETTINGS`) where the user gave none.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .config import DataConfig, TrainerConfig
from .data.batches import BatchSource, TensorBatches
from .data.spec import open_own_data
from .errors import ConfigError, DataError
from .config import RANGE_SETTINGS as UNBOUNDED_SETTINGS  # filled for data outside [0, 1] where a model has them

EVAL_BATCH = 1024  # validation and test batches, as the built-in datasets use


@dataclass
class TaskData:
    """What a task gives: batch sources, the model settings the data fixes, a one-line summary, and
    ``extras``, anything more a family's pipeline needs (the ``domains`` task: ``source_test``, ``pair``;
    the ``images`` task: ``source``, the record a run keeps in config.json as ``data_source``, and on your own
    data ``reader``, the opened data, and ``unit_interval``, whether its values lie in [0, 1])."""

    train: BatchSource
    val: BatchSource | None
    test: BatchSource | None
    model_defaults: dict[str, Any] = field(default_factory=dict)  # e.g. input_shape, num_classes
    summary: str = ""
    extras: dict[str, Any] = field(default_factory=dict)


_TASKS: dict[str, Callable[..., TaskData]] = {}


def register_task(name: str):
    """Decorator: ``fn(data: DataConfig, trainer: TrainerConfig[, saved=None]) -> TaskData`` serves task
    ``name``. A task that takes ``saved`` gets the ``data_source`` a run recorded when a run is rebuilt
    (``eval``, ``encode``, ``--resume``), to find the same data and refuse changed data."""

    def deco(fn):
        _TASKS[name] = fn
        return fn

    return deco


def get_task(name: str) -> Callable[..., TaskData]:
    from .data import _load_plugins

    _load_plugins()
    if name not in _TASKS:
        raise ConfigError(f"no data task {name!r}; known: {', '.join(sorted(_TASKS))}")
    return _TASKS[name]


def make_task_data(
    name: str, data: DataConfig, trainer: TrainerConfig, saved: Mapping[str, Any] | None = None
) -> TaskData:
    """Task ``name``'s data; ``saved`` (a run's ``data_source``) is passed to tasks that take it."""
    fn = get_task(name)
    if saved and "saved" in inspect.signature(fn).parameters:
        return fn(data, trainer, saved=saved)
    return fn(data, trainer)


def in_unit_interval(reader: Any) -> bool:
    """True when every value a reader's batches give lies in [0, 1] (uint8 images always do)."""
    if getattr(reader, "stats", None) is not None:  # a standardised table
        return False
    if getattr(reader, "value_range", None) is not None:  # arrays: found by the scan their reader remembers
        lo, hi = reader.value_range
        return lo >= 0 and hi <= 1
    return values_in_unit_interval(reader.x)


def values_in_unit_interval(x: np.ndarray) -> bool:
    """True when batches of array ``x`` hold values in [0, 1] only (uint8 is scaled by 1/255); read in chunks."""
    if x.dtype == np.uint8 or x.dtype == np.bool_:
        return True
    from .data.arraybatches import iter_row_chunks

    for chunk in iter_row_chunks(x):
        if chunk.size and (chunk.min() < 0 or chunk.max() > 1):
            return False
    return True


def describe_reader(reader: Any, limit: int = 0) -> str:
    """One line about opened data: where, the split sizes, the shape and the classes."""
    sp = reader.split
    rec = reader.record()
    n_train = min(len(sp.train), limit) if limit else len(sp.train)
    dims = reader.input_shape
    shape = f"{dims[0]} features" if len(dims) == 1 else "x".join(str(s) for s in dims)
    kind = {"folder": "images", "arrays": "arrays", "table": "table"}.get(rec["kind"], rec["kind"])
    what = f"{reader.num_classes} classes" if reader.labelled else "unlabelled"
    return (
        f"{kind} {rec['path']}: {n_train} train / {len(sp.val)} val / {len(sp.test)} test ({sp.method} split), "
        f"{shape}, {what}, fingerprint {reader.fingerprint}"
    )


def own_task_data(reader: Any, data: DataConfig, trainer: TrainerConfig) -> TaskData:
    """The ``images`` task's data for an opened reader (FolderData, ArrayData or TableData)."""
    if not hasattr(reader, "x"):
        raise DataError(f"--data {data.name} is a lexicon; lexicons train the g2p models (g2p_transformer, g2p_lstm)")
    sp = reader.split
    train = reader.batches("train", trainer.batch_size, shuffle=True, seed=trainer.seed, limit=data.limit)
    val = reader.batches("val", EVAL_BATCH, shuffle=False) if len(sp.val) else None
    test = reader.batches("test", EVAL_BATCH, shuffle=False) if len(sp.test) else None
    defaults: dict[str, Any] = {"input_shape": tuple(reader.input_shape)}
    if reader.labelled:
        defaults["num_classes"] = reader.num_classes
    unit = in_unit_interval(reader)
    if not unit:
        defaults.update(UNBOUNDED_SETTINGS)
    source = reader.record()
    return TaskData(
        train,
        val,
        test,
        defaults,
        describe_reader(reader, data.limit),
        extras={"reader": reader, "source": source, "unit_interval": unit},
    )


def _fingerprint(*arrays: np.ndarray | None) -> str:
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        if a is not None:
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(memoryview(np.ascontiguousarray(a)).cast("B"))
    return h.hexdigest()[:16]


def _labels_of(y: Any, n: int, where: str) -> np.ndarray:
    """Whole-number labels as given (0..K-1 expected), other labels (strings) numbered in sorted order."""
    y = np.asarray(y.detach().cpu() if hasattr(y, "detach") else y)
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{where}: y has shape {y.shape}; give one label per row of x ({n})")
    if y.dtype.kind in "iub" and (len(y) == 0 or y.min() >= 0):
        return y.astype(np.int64)
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)) and (y.min() >= 0):
        return y.astype(np.int64)
    if y.dtype.kind in "US":
        return np.unique(y, return_inverse=True)[1].astype(np.int64).reshape(-1)
    raise DataError(f"{where}: y must hold class labels (whole numbers from 0, or strings), got {y.dtype} values")


def _in_memory(x: Any, y: Any, where: str) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(x, y, channels_last) of arrays or tensors given in Python, checked like an .npz file's."""
    from .data.arrays import _check_x

    x = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)
    _, last = _check_x(x, where)
    if len(x) < 1:
        raise DataError(f"{where}: x has no rows")
    if x.ndim == 3:
        x = x[:, None]
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if bad.any():
            raise DataError(f"{where}: x row {int(np.argmax(bad))} holds NaN or an infinite value")
    return x, (None if y is None else _labels_of(y, len(x), where)), last


def _python_source(data: Any, trainer: TrainerConfig, shuffle: bool, batch_size: int, workers: int, where: str):
    """(batch source, first batch, record, known number of classes or None) of data given in Python."""
    from torch.utils.data import Dataset

    from .data.arraybatches import ArrayBatches
    from .data.dataset_batches import DatasetBatches

    if isinstance(data, Dataset):
        src = DatasetBatches(data, batch_size, shuffle, trainer.seed, workers=workers)
        if len(src) == 0:
            raise DataError(f"{where}: the {type(data).__name__} holds no items")
        first = src.first()
        k = None
        if getattr(data, "classes", None) is not None:
            k = len(data.classes)
        elif getattr(data, "targets", None) is not None and len(data.targets):
            k = int(np.max(np.asarray(data.targets))) + 1
        record = {"kind": "python", "type": f"Dataset {type(data).__name__}", "rows": len(src), "fingerprint": None}
        return src, first, record, k
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise DataError(f"{where}: give x, (x, y) or a torch Dataset, not a sequence of {len(data)} values")
        x, y, last = _in_memory(data[0], data[1], where)
    elif hasattr(data, "shape") and hasattr(data, "dtype"):
        x, y, last = _in_memory(data, None, where)
    else:
        raise DataError(
            f"{where}: cannot train on a {type(data).__name__}; give a numpy array, a tensor, (x, y), "
            "a torch.utils.data.Dataset, or a path (folder, .npz/.npy, .csv/.tsv)"
        )
    arrays = {"x": x} if y is None else {"x": x, "y": y}
    src = ArrayBatches(arrays, batch_size, shuffle, trainer.seed, channels_last=("x",) if last else ())
    first = src.rows(np.arange(min(len(x), 64)))
    record = {
        "kind": "python",
        "type": type(data[0] if isinstance(data, (tuple, list)) else data).__name__,
        "rows": len(x),
        "fingerprint": _fingerprint(x, y),
    }
    return src, first, record, (None if y is None else int(y.max()) + 1)


def python_task_data(data: Any, trainer: TrainerConfig, val: Any = None, workers: int = 0) -> TaskData:
    """The ``images`` task's data for data given in Python (``reprlab.fit``): a numpy array or tensor ``x``,
    ``(x, y)``, or a ``torch.utils.data.Dataset``. Every row trains; ``val`` (the same forms) validates.

    ``extras``: ``source`` (what a run records: the type, the number of rows and, for arrays, a content
    fingerprint), ``unit_interval`` (read from arrays, or from a Dataset's first 64 items) and ``labelled``."""
    train, first, record, k = _python_source(data, trainer, True, trainer.batch_size, workers, "data")
    val_src = None
    if val is not None:
        val_src, vfirst, _, vk = _python_source(val, trainer, False, EVAL_BATCH, workers, "val")
        if tuple(vfirst["x"].shape[1:]) != tuple(first["x"].shape[1:]):
            raise DataError(
                f"val rows have shape {tuple(vfirst['x'].shape[1:])} but data rows {tuple(first['x'].shape[1:])}"
            )
        k = max(k, vk) if k is not None and vk is not None else k
    x0 = first["x"]
    if hasattr(train, "arrays"):  # arrays: every value is read; a Dataset: its first items
        unit = values_in_unit_interval(train.arrays["x"])
    else:
        unit = bool(x0.numel() == 0 or (float(x0.min()) >= 0 and float(x0.max()) <= 1))
    defaults: dict[str, Any] = {"input_shape": tuple(int(s) for s in x0.shape[1:])}
    labelled = "y" in first
    if labelled and k is not None:
        defaults["num_classes"] = k
    if not unit:
        defaults.update(UNBOUNDED_SETTINGS)
    record["shape"] = list(defaults["input_shape"])
    what = f"{k} classes" if labelled and k is not None else ("labelled" if labelled else "unlabelled")
    summary = f"{record['type']}: {record['rows']} train rows{'' if val_src is None else ' + val'}, {what}"
    return TaskData(
        train,
        val_src,
        None,
        defaults,
        summary,
        extras={"source": record, "unit_interval": unit, "labelled": labelled},
    )


@register_task("images")
def image_task(data: DataConfig, trainer: TrainerConfig, saved: Mapping[str, Any] | None = None) -> TaskData:
    """Built-in image datasets by name, or your own images, arrays or table by path (see the module docstring)."""
    saved = saved if saved and saved.get("kind") != "builtin" else None
    reader = open_own_data(data, "images", saved, progress=trainer.progress, kinds=("folder", "arrays", "table"))
    if reader is not None:
        return own_task_data(reader, data, trainer)
    from .data import load_images

    d = load_images(data.name, data.data_dir, data.val_size, data.limit)
    bs = trainer.batch_size
    train = TensorBatches({"x": d.train[0], "y": d.train[1]}, bs, shuffle=True, seed=trainer.seed)
    val = TensorBatches({"x": d.val[0], "y": d.val[1]}, 1024, shuffle=False) if len(d.val[0]) else None
    test = TensorBatches({"x": d.test[0], "y": d.test[1]}, 1024, shuffle=False)
    return TaskData(
        train,
        val,
        test,
        {"input_shape": d.input_shape, "num_classes": d.num_classes},
        f"{d.name}: {len(d.train[0])} train / {len(d.val[0])} val / {len(d.test[0])} test from {d.source}",
        extras={"source": {"kind": "builtin", "name": d.name, "where": d.source}},
    )


__all__ = [
    "TaskData",
    "register_task",
    "get_task",
    "make_task_data",
    "open_own_data",
    "own_task_data",
    "in_unit_interval",
    "describe_reader",
    "python_task_data",
    "UNBOUNDED_SETTINGS",
]
