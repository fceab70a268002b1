"""The MLflow and W&B loggers behind ``trainer.loggers=mlflow,wandb`` (see :mod:`reprlab.train.loggers`).

Fabric has loggers for CSV and TensorBoard only, so these two implement its ``Logger`` interface
(``log_metrics(dict, step)``, ``log_hyperparams``, ``finalize``) on each tracker's own client API. Both
start their tracker run at first use, on global rank 0 only.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import string
import time
import warnings
from pathlib import Path
from typing import Any

from lightning.fabric.loggers.logger import Logger
from lightning.fabric.utilities.rank_zero import rank_zero_only

from ..errors import ConfigError
from .loggers import _first_line, _import, _save_id, _saved_ids, flatten


class _Tracker(Logger):
    """A logger backed by an outside tracker: the tracker run starts at first use, on global rank 0 only, and
    a process that exits without :meth:`finalize` (a run that failed) marks it failed."""

    tracker = ""
    is_tracker = True  # log_run_config gives it the run's config

    def __init__(self, run_dir: str | Path, resume: bool = False):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.resume = resume
        self._started = False

    @property
    def name(self) -> str:
        return self.tracker

    @property
    def version(self) -> str | None:
        return None

    def _ensure(self) -> None:
        if not self._started:
            self._start()
            self._started = True
            atexit.register(self._abandon)

    def _start(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _end(self, ok: bool) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._started:
            atexit.unregister(self._abandon)
            self._started = False
            self._end(status == "success")

    def _abandon(self) -> None:
        if self._started:
            self._started = False
            try:
                self._end(False)
            except Exception:  # the process is exiting; the run folder already says what happened
                pass


class MlflowLogger(_Tracker):
    """Metrics and the config of a run into MLflow (see the module doc for where)."""

    tracker = "mlflow"

    def __init__(self, run_dir: str | Path, resume: bool = False):
        super().__init__(run_dir, resume)
        self._client = None
        self.run_id: str | None = None

    @property
    def version(self) -> str | None:
        return self.run_id

    @property
    def local(self) -> bool:
        """True when the store is the run folder's own (no MLFLOW_TRACKING_URI)."""
        return not os.environ.get("MLFLOW_TRACKING_URI")

    @property
    def tracking_uri(self) -> str:
        if not self.local:
            return os.environ["MLFLOW_TRACKING_URI"]
        return "sqlite:///" + str((self.run_dir / "mlruns" / "mlflow.db").resolve())

    def _start(self) -> None:
        _import("mlflow")
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        # MLflow, alembic and SQLAlchemy announce the store's creation on stderr, which the CLI keeps for
        # progress and one-line errors
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        uri, store = self.tracking_uri, ("run folder" if self.local else self.tracking_uri)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if self.local:
                    (self.run_dir / "mlruns").mkdir(parents=True, exist_ok=True)
                client = MlflowClient(tracking_uri=uri)
                saved = _saved_ids(self.run_dir).get("mlflow") if self.resume else None
                if saved and saved.get("store") == store:
                    try:
                        client.get_run(saved["run_id"])
                        self.run_id = saved["run_id"]
                        client.update_run(self.run_id, status="RUNNING")
                    except MlflowException:  # deleted in the tracker: a new run follows
                        self.run_id = None
                if self.run_id is None:
                    name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "reprlab"
                    exp = client.get_experiment_by_name(name)
                    if exp is not None:
                        exp_id = exp.experiment_id
                    else:
                        where = (self.run_dir / "mlruns" / "artifacts").resolve().as_uri() if self.local else None
                        exp_id = client.create_experiment(name, artifact_location=where)
                    tags = {"reprlab.run_dir": str(self.run_dir.resolve())}
                    self.run_id = client.create_run(exp_id, run_name=self.run_dir.name, tags=tags).info.run_id
                    _save_id(self.run_dir, "mlflow", {"store": store, "experiment_id": exp_id, "run_id": self.run_id})
        except ConfigError:
            raise
        except Exception as e:  # MLflow raises many kinds for a store it cannot use
            raise ConfigError(
                f"MLflow could not start a run at {uri} ({_first_line(e)}); check MLFLOW_TRACKING_URI"
            ) from None
        self._client = client

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        self._ensure()
        ms = int(time.time() * 1000)
        batch = [Metric(k, float(v), ms, int(step or 0)) for k, v in metrics.items() if _is_number(v)]
        for i in range(0, len(batch), 1000):  # MLflow's limit per call
            self._client.log_batch(self.run_id, metrics=batch[i : i + 1000])

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        from mlflow.entities import Param

        try:
            from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH as limit
        except ImportError:  # older MLflow
            limit = 500
        self._ensure()
        # a param cannot change in MLflow: a resumed run adds the keys it did not have
        have = set(self._client.get_run(self.run_id).data.params)
        flat = {k: ("None" if v is None else str(v))[:limit] for k, v in flatten(dict(params)).items() if k not in have}
        items = [Param(k, v) for k, v in flat.items()]
        for i in range(0, len(items), 100):  # MLflow's limit per call
            self._client.log_batch(self.run_id, params=items[i : i + 100])

    def _end(self, ok: bool) -> None:
        self._client.set_terminated(self.run_id, "FINISHED" if ok else "FAILED")


class WandbLogger(_Tracker):
    """Metrics and the config of a run into Weights & Biases (see the module doc for where)."""

    tracker = "wandb"

    def __init__(self, run_dir: str | Path, resume: bool = False):
        super().__init__(run_dir, resume)
        self.run = None

    @property
    def version(self) -> str | None:
        return None if self.run is None else self.run.id

    def _start(self) -> None:
        wandb = _import("wandb")
        saved = _saved_ids(self.run_dir).get("wandb") if self.resume else None
        run_id = saved["id"] if saved and saved.get("id") else _new_id()
        project = os.environ.get("WANDB_PROJECT") or "reprlab"
        kw: dict[str, Any] = dict(
            project=project,
            name=self.run_dir.name,
            id=run_id,
            resume="allow",
            reinit="create_new",
            # wandb would otherwise capture the console and print its banner on the CLI's stderr
            settings=wandb.Settings(silent=True, console="off"),
        )
        if not os.environ.get("WANDB_DIR"):
            kw["dir"] = str(self.run_dir)  # wandb writes DIR/wandb/
        try:
            self.run = wandb.init(**kw)
        except Exception as e:  # wandb raises its own kinds (no API key, no network) and OS errors
            raise ConfigError(
                f"W&B could not start a run ({_first_line(e)}); run 'wandb login', or set WANDB_MODE=offline "
                "to log into the run folder only"
            ) from None
        if not saved:
            _save_id(self.run_dir, "wandb", {"id": run_id, "project": project})

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self._ensure()
        values = {k: float(v) for k, v in metrics.items() if _is_number(v)}
        if step is None:
            self.run.log(values)
        else:
            self.run.log(values, step=int(step))

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        self._ensure()
        self.run.config.update(dict(params), allow_val_change=True)

    def _end(self, ok: bool) -> None:
        self.run.finish(exit_code=0 if ok else 1)


def _new_id() -> str:
    """A W&B run id (8 lower-case letters and digits) from the OS's randomness: the seeded generators would
    give two runs of the same seed the same id."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def _is_number(v: Any) -> bool:
    """A plain number or a one-element tensor (what the engine logs)."""
    if isinstance(v, (int, float)):
        return True
    return hasattr(v, "numel") and v.numel() == 1


__all__ = ["MlflowLogger", "WandbLogger"]
