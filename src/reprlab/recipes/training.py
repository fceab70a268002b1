"""Training recipes: a seeded fit in memory, a registered model trained into a run directory, final metrics."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterable

import torch

from ..config import TrainerConfig, to_dict
from ..data.batches import BatchSource
from ..errors import ConfigError, DataError
from ..io import atomic_write_text
from ..train.engine import Callback, Trainer, seed_everything

FINAL_METRICS = "final_metrics.json"


def seeded_model(name: str, seed: int, **config: Any) -> torch.nn.Module:
    """Registered model ``name`` built right after seeding everything with ``seed``: its init is reproducible."""
    from ..registry import create_model

    seed_everything(seed)
    return create_model(name, **config)


def fit(
    model: torch.nn.Module,
    train: BatchSource,
    config: TrainerConfig,
    val: BatchSource | None = None,
    callbacks: Iterable[Callback | Any] = (),
    description: str = "train",
) -> Trainer:
    """Train ``model`` in memory, without a run directory, as the studies and the estimators do.

    The engine seeds its own random stream from ``config.seed``; build the model after
    :func:`seed_everything` (or with :func:`seeded_model`) for a reproducible init. Returns the finished
    trainer: ``history`` holds one row of metrics per epoch."""
    trainer = Trainer(config, description=description)
    trainer.fit(model, train, val, callbacks=callbacks)
    return trainer


def model_config_for(name: str, values: dict, task: Any, data_name: str = "") -> Any:
    """Model ``name``'s config for ``task``'s data: the user's ``values`` with the data's settings filled in
    (:func:`~reprlab.registry.build_config_for_data`), after the checks that need both.

    ConfigError/DataError (one line) before anything is built or written: a model that trains on labels given
    unlabelled (or one-class) data, settings that need [0, 1] given data outside it."""
    from ..registry import build_config_for_data, check_data_range, needs_labels

    reader = task.extras.get("reader")
    if reader is not None and needs_labels(name) and hasattr(reader, "require_labels"):
        reader.require_labels()
    if task.extras.get("labelled") is False and needs_labels(name):
        raise DataError(
            f"model {name!r} trains on labels, and the data has none; give (x, y), or a Dataset whose items are (x, y)"
        )
    config = build_config_for_data(name, values, task.model_defaults, data_name)
    check_data_range(name, config, task.extras.get("unit_interval", True), data_name)
    return config


def saved_data_source(run: Path) -> dict | None:
    """The ``data_source`` a run recorded in its config.json, or None (older runs, in-memory data)."""
    from ..train.checkpoint import read_run_config

    source = read_run_config(run).get("data_source")
    return source if isinstance(source, dict) else None


def train_model(
    name: str,
    tree: dict,
    out: Path | None,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    task: Any = None,
):
    """Build data and model from a resolved config tree and train it. Returns (model, trainer, task_data, metrics).

    ``task``: the data as a :class:`~reprlab.tasks.TaskData` (the Python API's in-memory data), instead of the
    one ``tree["data"]`` names. The run folder is checked first (before any data is read), and created only
    once the model is built. On ``resume`` the data is rebuilt from the run's record (same split, a table's
    saved statistics) and refused when it changed. The run records where its data came from in config.json
    (``data_source``). The caller owns the returned trainer's run folder: ``trainer.close()`` releases it.
    """
    from ..config import DataConfig, build
    from ..registry import build_model, get_spec
    from ..tasks import make_task_data
    from ..train.callbacks import SampleGrid
    from ..train.engine import launch_rank_zero
    from ..train.rundir import check_new_run

    spec = get_spec(name)
    trainer_cfg = build(TrainerConfig, tree["trainer"], "trainer")
    data_cfg = build(DataConfig, tree["data"], "data")
    if out is not None and not resume:
        check_new_run(out, overwrite)
    if task is None:
        saved = saved_data_source(out) if resume and out is not None else None
        if saved and saved.get("kind") == "python":
            raise DataError(
                f"{out} was trained on data given in Python; resume it with reprlab.fit(..., out={str(out)!r}, "
                "resume=True) and the same data"
            )
        task = make_task_data(spec.task, data_cfg, trainer_cfg, saved)
    model_cfg = model_config_for(name, tree["model"], task, data_cfg.name)
    run_config = {
        "model": name,
        "model_config": to_dict(model_cfg),
        "trainer": to_dict(trainer_cfg),
        "data": to_dict(data_cfg),
    }
    if task.extras.get("source"):
        run_config["data_source"] = task.extras["source"]
    seed_everything(trainer_cfg.seed)
    model = build_model(name, model_cfg)  # before the run folder: a model that cannot be built leaves none
    trainer = Trainer(trainer_cfg, out, run_config, resume=resume, overwrite=overwrite, description=name)
    try:
        if not quiet and task.summary and launch_rank_zero():
            print(f"data: {task.summary}")  # stdout: stderr keeps progress bars and one-line errors
        callbacks = [SampleGrid()] if hasattr(model, "fixed_grid") else []
        metrics = trainer.fit(model, task.train, task.val, callbacks=callbacks)
    except BaseException:
        trainer.close()
        raise
    return model, trainer, task, metrics


def _route_settings(name: str, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``fit``'s keyword settings, each filed under the section that has it: model first, then trainer, data."""
    import dataclasses

    from ..config import DataConfig
    from ..registry import get_spec

    sections = {
        "model": {f.name for f in dataclasses.fields(get_spec(name).config_cls)},
        "trainer": {f.name for f in dataclasses.fields(TrainerConfig)},
        "data": {f.name for f in dataclasses.fields(DataConfig)} - {"name"},
    }
    tree: dict[str, dict[str, Any]] = {"model": {}, "trainer": {}, "data": {}}
    for key, value in settings.items():
        where = next((sec for sec, keys in sections.items() if key in keys), None)
        if where is None:
            raise ConfigError(
                f"fit() got an unknown setting {key!r}; it takes the settings of model {name!r} "
                f"({', '.join(sorted(sections['model']))}), of the trainer ({', '.join(sorted(sections['trainer']))}) "
                f"and of your data ({', '.join(sorted(sections['data']))})"
            )
        tree[where][key] = value
    return tree


def fit_on_data(
    name: str,
    data: Any,
    *,
    epochs: int | None = None,
    out: str | Path | None = None,
    val: Any = None,
    resume: bool = False,
    overwrite: bool = False,
    workers: int = 2,
    quiet: bool = True,
    model: dict | None = None,
    trainer: dict | None = None,
    data_options: dict | None = None,
    **settings: Any,
):
    """Train registered model ``name`` on ``data``; see :func:`reprlab.fit`."""
    from ..config import DataConfig, build, merge
    from ..tasks import python_task_data

    tree = _route_settings(name, settings)
    tree = merge(tree, {"model": dict(model or {}), "trainer": dict(trainer or {}), "data": dict(data_options or {})})
    if epochs is not None:
        tree["trainer"]["epochs"] = epochs
    tree["trainer"].setdefault("progress", not quiet)
    if out is None:
        tree["trainer"].setdefault("loggers", "none")
    out_path = Path(out) if out is not None else None
    if resume and out_path is None:
        raise ConfigError("fit(resume=True) continues a run folder; give out=RUN")
    task = None
    if isinstance(data, (str, Path)):
        if val is not None:
            raise ConfigError("val= goes with in-memory data; a path's own split gives the validation part")
        tree["data"]["name"] = str(data)
    else:
        if isinstance(val, (str, Path)):
            raise ConfigError("val= takes in-memory data (an array, (x, y) or a Dataset), like data=")
        trainer_cfg = build(TrainerConfig, tree["trainer"], "trainer")
        build(DataConfig, tree["data"], "data")  # checks the data settings, though in-memory data takes none
        task = python_task_data(data, trainer_cfg, val, workers)
        tree["data"]["name"] = f"<python: {task.extras['source']['type']}>"
        if resume:
            recorded = saved_data_source(out_path)
            now = task.extras["source"]
            for key in ("type", "rows", "fingerprint"):
                if recorded and recorded.get(key) != now.get(key):
                    raise DataError(
                        f"the data given to fit() is not the data {out_path} was trained on ({key} "
                        f"{now.get(key)!r} != recorded {recorded.get(key)!r}); pass the same data, or a new out="
                    )
    started = time.perf_counter()
    trained, run, task, metrics = train_model(name, tree, out_path, resume, overwrite, quiet=quiet, task=task)
    with run:
        if out_path is not None and not run.already_finished:
            finish_run(run, trained, task.test, metrics, started)
    trained.eval()
    return (trained, out_path) if out_path is not None else trained


def final_metrics(metrics: dict, test: dict, seconds: float, **extra: Any) -> dict:
    """The numbers of a finished run: the last epoch's numeric metrics, the test metrics (``test/...``),
    ``wall_seconds``, then ``extra`` (keys may hold a ``/``: pass them as ``**{"target/test_acc": ...}``)."""
    result = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    result.update({f"test/{k}": v for k, v in test.items()})
    result["wall_seconds"] = seconds
    result.update(extra)
    return result


def write_final_metrics(out: Path, metrics: dict, test: dict, seconds: float, **extra: Any) -> dict:
    """Write RUN/final_metrics.json (see :func:`final_metrics`) atomically; return what was written.

    The one writer of that file, for train, finetune, transfer and adapt."""
    result = final_metrics(metrics, test, seconds, **extra)
    atomic_write_text(Path(out) / FINAL_METRICS, json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def finish_run(
    trainer: Trainer, model: torch.nn.Module, test: BatchSource | None, metrics: dict, started: float, **extra: Any
) -> dict | None:
    """The epilogue of a run trained into ``trainer.run_dir``: evaluate ``model`` on ``test`` (every process
    takes part, the evaluation is collective) and, on global rank 0, write final_metrics.json.

    ``started``: the ``time.perf_counter()`` of the run's start (the wall time counts the test evaluation).
    Returns what was written, or None in the other processes."""
    scores = trainer.evaluate(model, test) if test is not None else {}
    if not trainer.fabric.is_global_zero:
        return None
    return write_final_metrics(trainer.run_dir, metrics, scores, time.perf_counter() - started, **extra)


__all__ = [
    "seed_everything",
    "seeded_model",
    "fit",
    "train_model",
    "model_config_for",
    "fit_on_data",
    "saved_data_source",
    "final_metrics",
    "write_final_metrics",
    "finish_run",
    "FINAL_METRICS",
]
