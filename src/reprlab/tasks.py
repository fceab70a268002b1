"""Tasks turn a data config into batch sources for the engine, and tell the CLI what the model needs.

A model's registry entry names its task ("images" for most). Families with other data
(grapheme-to-phoneme, domain pairs) register their own task with :func:`register_task`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .config import DataConfig, TrainerConfig
from .data.batches import BatchSource, TensorBatches
from .data.spec import open_own_data  # noqa: F401 - the one way other tasks open --data PATH
from .errors import ConfigError


@dataclass
class TaskData:
    """What a task gives: batch sources, the model settings the data fixes, a one-line summary, and
    ``extras``, anything more a family's pipeline needs (the ``domains`` task: ``source_test``, ``pair``)."""

    train: BatchSource
    val: BatchSource | None
    test: BatchSource | None
    model_defaults: dict[str, Any] = field(default_factory=dict)  # e.g. input_shape, num_classes
    summary: str = ""
    extras: dict[str, Any] = field(default_factory=dict)


_TASKS: dict[str, Callable[[DataConfig, TrainerConfig], TaskData]] = {}


def register_task(name: str):
    def deco(fn):
        _TASKS[name] = fn
        return fn

    return deco


def get_task(name: str) -> Callable[[DataConfig, TrainerConfig], TaskData]:
    from .data import _load_plugins

    _load_plugins()
    if name not in _TASKS:
        raise ConfigError(f"no data task {name!r}; known: {', '.join(sorted(_TASKS))}")
    return _TASKS[name]


@register_task("images")
def image_task(data: DataConfig, trainer: TrainerConfig) -> TaskData:
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
    )
