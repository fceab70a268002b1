"""Training recipes: a seeded fit in memory, a registered model trained into a run directory, final metrics."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterable

import torch

from ..config import TrainerConfig, to_dict
from ..data.batches import BatchSource
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


def train_model(
    name: str, tree: dict, out: Path | None, resume: bool = False, overwrite: bool = False, quiet: bool = False
):
    """Build data and model from a resolved config tree and train it. Returns (model, trainer, task_data, metrics).

    The run folder is checked first (before any data is read), and created only once the model is built.
    The caller owns the returned trainer's run folder: ``trainer.close()`` releases it.
    """
    from ..config import DataConfig, build
    from ..registry import build_config_for_data, build_model, get_spec
    from ..tasks import get_task
    from ..train.callbacks import SampleGrid
    from ..train.engine import launch_rank_zero
    from ..train.rundir import check_new_run

    spec = get_spec(name)
    trainer_cfg = build(TrainerConfig, tree["trainer"], "trainer")
    data_cfg = build(DataConfig, tree["data"], "data")
    if out is not None and not resume:
        check_new_run(out, overwrite)
    task = get_task(spec.task)(data_cfg, trainer_cfg)
    model_cfg = build_config_for_data(name, tree["model"], task.model_defaults, data_cfg.name)
    run_config = {
        "model": name,
        "model_config": to_dict(model_cfg),
        "trainer": to_dict(trainer_cfg),
        "data": to_dict(data_cfg),
    }
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
    "final_metrics",
    "write_final_metrics",
    "finish_run",
    "FINAL_METRICS",
]
