"""Experiment loggers for the engine: ``trainer.loggers=csv,tensorboard,mlflow,wandb``.

* ``csv``: Fabric's ``CSVLogger`` -> ``RUN/logs/version_N/metrics.csv``;
* ``tensorboard``: Fabric's ``TensorBoardLogger`` -> ``RUN/tb/version_0`` (``trainer.tensorboard=false`` removes it);
* ``mlflow``: :class:`MlflowLogger`, on MLflow's client API (Fabric 2.6 has loggers for CSV and TensorBoard
  only). It tracks where ``MLFLOW_TRACKING_URI`` says; without it, in a SQLite store inside the run folder,
  ``RUN/mlruns/mlflow.db`` (artifacts under ``RUN/mlruns/artifacts``), which is MLflow 3's own kind of local
  store: its plain-file store (``file:RUN/mlruns``) is refused unless ``MLFLOW_ALLOW_FILE_STORE=true``, and is
  used when both are set. Experiment: ``MLFLOW_EXPERIMENT_NAME`` or ``reprlab``; run name: the run folder's.
* ``wandb``: :class:`WandbLogger`, on wandb's own API. Files go to ``WANDB_DIR`` if set, else ``RUN/wandb/``;
  project ``WANDB_PROJECT`` or ``reprlab``; ``WANDB_MODE=offline`` needs no network (``wandb sync`` uploads later).

The run folder stays the source of truth (``config.json``, ``metrics.jsonl``, the weights): a tracker gets a
copy of every metric the engine logs, the same value at the same step, and the run's config as
hyperparameters. ``RUN/trackers.json`` keeps each tracker run's id, so ``--resume`` continues the same
tracker run. The tracker packages are optional extras (``pip install 'reprlab[mlflow]'``, ``'reprlab[wandb]'``).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import LOGGERS, TrainerConfig
from ..errors import ConfigError
from ..io import atomic_write_text

if TYPE_CHECKING:
    from lightning.fabric.loggers.logger import Logger

TRACKERS_FILE = "trackers.json"
TRACKERS = ("mlflow", "wandb")  # the loggers that need a package of their own (an extra of the same name)


def selected(cfg: TrainerConfig) -> list[str]:
    """The loggers a run uses: ``cfg.loggers`` without tensorboard when ``cfg.tensorboard`` is false."""
    return [n for n in cfg.loggers if n in LOGGERS and (n != "tensorboard" or cfg.tensorboard)]


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a package whose import is blocked, or a broken install
        return False


def _missing(name: str) -> ConfigError:
    return ConfigError(
        f"--trainer.loggers={name} needs the {name} package, which is not installed: pip install 'reprlab[{name}]'"
    )


def check_available(cfg: TrainerConfig) -> None:
    """A one-line ConfigError, before any work, when a selected tracker's package is not installed."""
    for name in selected(cfg):
        if name in TRACKERS and not _installed(name):
            raise _missing(name)


def _import(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        raise _missing(name) from None


def make_loggers(cfg: TrainerConfig, run_dir: str | Path, resume: bool = False) -> list[Logger]:
    """Fabric loggers for ``run_dir``, in the order of ``cfg.loggers``."""
    from lightning.fabric.loggers import CSVLogger, TensorBoardLogger

    from .trackers import MlflowLogger, WandbLogger

    out: list[Logger] = []
    for name in selected(cfg):
        if name == "csv":  # a resumed run logs into the next version folder, so earlier CSV logs are kept
            out.append(CSVLogger(str(run_dir), name="logs", version=None if resume else 0))
        elif name == "tensorboard":
            out.append(TensorBoardLogger(str(run_dir), name="tb", version=0))
        elif name == "mlflow":
            out.append(MlflowLogger(run_dir, resume))
        elif name == "wandb":
            out.append(WandbLogger(run_dir, resume))
    return out


def log_run_config(loggers: list[Logger], config: dict[str, Any]) -> None:
    """Give each tracker the run's config as hyperparameters; this also starts the tracker runs, so a tracker
    that cannot start says so before training. CSV and TensorBoard need no copy: config.json is beside them."""
    for logger in loggers:
        if getattr(logger, "is_tracker", False):
            logger.log_hyperparams(config)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:200]


def _saved_ids(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / TRACKERS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_id(run_dir: Path, tracker: str, info: dict[str, Any]) -> None:
    data = _saved_ids(run_dir)
    data[tracker] = info
    atomic_write_text(run_dir / TRACKERS_FILE, json.dumps(data, indent=2, sort_keys=True) + "\n")


__all__ = ["TRACKERS", "TRACKERS_FILE", "selected", "check_available", "make_loggers", "log_run_config", "flatten"]
