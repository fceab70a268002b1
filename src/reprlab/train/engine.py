"""One training loop for every model, on ``lightning.fabric.Fabric``. It knows nothing about any model.

The engine owns the step. A model gives its loss (``loss(batch)``) and declares its parameter groups
(``optimizer_groups()``: one list of groups per optimizer, with lr multipliers and weight-decay
overrides); the engine builds every optimizer from ``TrainerConfig``, applies the one lr schedule
(warm-up, then constant or cosine) to all of them, and owns gradient clipping and accumulation. A model
whose step really differs (a GAN alternating D and G) implements ``train_step(batch, steps)`` and gets
one :class:`OptimizerStep` per optimizer, so clipping and the schedule still come from here.

Callers extend the loop with :class:`Callback` objects (fit start, step end, epoch end, a stop
condition), never by patching a model. The engine also gives every model: seeding (bitwise reproducible
on CPU), rich progress bars, CSV/TensorBoard/MLflow/W&B logs, evaluation every epoch, early stopping on a
validation metric, an atomically written and locked run directory, exact resume, a NaN/Inf guard on
the loss and on every checkpoint's weights, bf16 autocast, and DDP over ``devices`` processes.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import Tensor

from ..config import TrainerConfig, parse_early_stop, to_dict
from ..data.batches import BatchSource
from ..errors import CheckpointError, ConfigError, DivergedError
from ..progress import stage
from . import checkpoint as ck
from .loggers import check_available as check_loggers
from .rundir import OpenRun, check_new_run

# Fabric's all_gather goes through a torch API that now warns on every call; the call is correct
warnings.filterwarnings("ignore", message=r"torch\.distributed\.nn\.functional\.all_gather is deprecated")

STATE_FORMAT = 2
# settings that fix what a saved position means: a resumed run must keep them
_FIXED_ON_RESUME = ("batch_size", "seed", "devices", "num_nodes", "optimizer", "accumulate")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch. Models are built after this, so their init is reproducible."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(groups: Iterable, cfg: TrainerConfig) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.optimizer`` over param groups declared by a model.

    Each group is a dict with ``params`` and optionally ``lr_mult`` (times ``cfg.lr``), ``lr`` (an
    absolute base lr, e.g. a GAN's own D and G rates), ``weight_decay`` (overrides ``cfg.weight_decay``,
    e.g. 0 for norms), ``betas`` (Adam/AdamW only) and ``name``; a bare parameter iterable is one group.
    Each group keeps its ``base_lr``: the schedule scales it. The fused kernels are used when every
    parameter is float32/bf16 on CPU or CUDA: on 2 CPU cores they make the Adam step about 6x cheaper
    than the foreach one (benchmarks/bench_autoencoder.py).
    """
    groups = list(groups)
    if groups and not isinstance(groups[0], dict):
        groups = [{"params": groups}]
    built = []
    for g in groups:
        g = dict(g)
        params = [p for p in g.pop("params") if p.requires_grad]
        if not params:
            continue
        lr = g.pop("lr", None)
        lr = cfg.lr * g.pop("lr_mult", 1.0) if lr is None else lr
        entry: dict[str, Any] = {"params": params, "lr": lr, "base_lr": lr, "name": g.pop("name", f"group{len(built)}")}
        if "weight_decay" in g:
            entry["weight_decay"] = g.pop("weight_decay")
        betas = g.pop("betas", None)
        if betas is not None and cfg.optimizer in ("adam", "adamw"):
            entry["betas"] = tuple(betas)
        if g:
            raise ValueError(f"unknown parameter-group keys {sorted(g)}")
        built.append(entry)
    if not built:
        raise ConfigError("the model has no trainable parameters (is everything frozen?)")
    flat = [q for g in built for q in g["params"]]
    fused = all(q.device.type in ("cpu", "cuda") and q.dtype in (torch.float32, torch.bfloat16) for q in flat)
    wd = cfg.weight_decay
    if cfg.optimizer == "adam":
        return torch.optim.Adam(built, lr=cfg.lr, weight_decay=wd, fused=fused)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(built, lr=cfg.lr, weight_decay=wd, fused=fused)
    return torch.optim.SGD(built, lr=cfg.lr, momentum=cfg.momentum, weight_decay=wd, fused=fused)


def lr_scale(step: int, total_steps: int, cfg: TrainerConfig) -> float:
    """Multiplier of every param group's base lr at optimizer step ``step`` (0-based) of ``total_steps``:
    linear warm-up over ``cfg.warmup_steps``, then constant or a cosine decay that reaches 0 after the last step."""
    warm = cfg.warmup_steps
    scale = min(1.0, (step + 1) / warm) if warm else 1.0
    if cfg.lr_schedule == "cosine" and total_steps > warm:
        scale *= 0.5 * (1 + math.cos(math.pi * max(step - warm, 0) / (total_steps - warm)))
    return scale


def batch_size_of(batch: dict[str, Tensor]) -> int:
    return len(next(iter(batch.values())))


def optimizer_groups(model: torch.nn.Module) -> list[list]:
    """The model's declared groups, one list per optimizer (default: one optimizer over all parameters)."""
    fn = getattr(model, "optimizer_groups", None)
    return fn() if fn is not None else [[{"params": list(model.parameters())}]]


def launch_rank_zero() -> bool:
    """True in the process that acts for the whole run before Fabric starts: the process the user started
    (it becomes rank 0 under ``--devices N``), or global rank 0 under torchrun / ``fabric run``."""
    for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK"):
        if os.environ.get(var, "0") != "0":
            return False
    return True


class Callback:
    """Hooks the engine calls while it trains; override the ones you need.

    ``trainer`` is the running :class:`Trainer` (``trainer.step``, ``trainer.run_dir``, ``trainer.rank``);
    ``model`` is the bare model (not the Fabric wrapper).
    """

    def on_fit_start(self, trainer: Trainer, model: torch.nn.Module) -> None:
        """After set-up and resume, right before the first step."""

    def on_step_end(self, trainer: Trainer, model: torch.nn.Module, step: int, out: dict, batches: list) -> None:
        """After optimizer step ``step`` (1-based), with that step's outputs (floats) and its batches
        (one, or ``trainer.accumulate`` of them)."""

    def on_epoch_end(self, trainer: Trainer, model: torch.nn.Module, epoch: int, metrics: dict) -> dict | None:
        """After epoch ``epoch`` (0-based) and its validation; a returned dict is added to the epoch's metrics."""

    def should_stop(self, trainer: Trainer, model: torch.nn.Module, step: int) -> bool:
        """Checked after every step: True ends training there (the state is saved; ``--resume`` continues)."""
        return False


class EveryEpoch(Callback):
    """A function ``fn(epoch, model) -> dict | None`` called after each epoch."""

    def __init__(self, fn: Callable[[int, torch.nn.Module], dict | None]):
        self.fn = fn

    def on_epoch_end(self, trainer, model, epoch, metrics):
        return self.fn(epoch, model)


class OptimizerStep:
    """One optimizer as a model's own ``train_step`` sees it: ``zero_grad()``, ``backward(loss)``,
    ``step()`` (which clips the gradients of this optimizer's parameters first when ``grad_clip`` is set)."""

    def __init__(self, trainer: Trainer, optimizer: torch.optim.Optimizer):
        self.trainer, self.optimizer = trainer, optimizer

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def backward(self, loss: Tensor) -> None:
        self.trainer._backward(loss, own_step=True)

    def step(self) -> None:
        self.trainer._clip(self.optimizer)
        self.optimizer.step()


class _EarlyStopping:
    """Stops after ``patience`` epochs without a better ``metric``; keeps the best weights (state is resumable)."""

    def __init__(self, spec: str):
        self.metric, self.patience, self.mode = parse_early_stop(spec)
        self.best: float | None = None
        self.best_epoch = 0
        self.bad = 0

    def update(self, epoch: int, metrics: dict) -> bool:
        """Record epoch ``epoch``'s metrics; True when this epoch is the best so far."""
        if self.metric not in metrics:
            have = ", ".join(sorted(k for k in metrics if k.startswith("val/"))) or "none"
            raise ConfigError(
                f"trainer.early_stop watches {self.metric}, which this model does not log; val metrics: {have}"
            )
        v = float(metrics[self.metric])
        better = self.best is None or (v < self.best if self.mode == "min" else v > self.best)
        if better:
            self.best, self.best_epoch, self.bad = v, epoch + 1, 0
        else:
            self.bad += 1
        return better

    @property
    def stop(self) -> bool:
        return self.bad >= self.patience

    def state(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad": self.bad}

    def load(self, s: dict) -> None:
        self.best, self.best_epoch, self.bad = s["best"], s["best_epoch"], s["bad"]


class Trainer:
    """Train a model on batch sources, writing a run directory (or none, when ``run_dir`` is None).

    With a run directory, the constructor checks it and opens it (locked; ``overwrite`` moves an old run
    aside) in the process that acts for the run; call :meth:`close` (or use ``with``) when done writing.
    """

    def __init__(
        self,
        config: TrainerConfig,
        run_dir: str | Path | None = None,
        run_config: dict[str, Any] | None = None,
        resume: bool = False,
        overwrite: bool = False,
        log_every: int = 50,
        description: str = "train",
    ):
        self.cfg = config
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.run_config = run_config or {}
        self.resume = resume
        self.log_every = log_every
        self.description = description
        self.history: list[dict[str, Any]] = []
        self.fabric = None
        self.rank, self.world, self.step = 0, 1, 0
        self.optimizers: list[torch.optim.Optimizer] = []
        self.already_finished = False
        self._run: OpenRun | None = None
        self._saved: dict[str, Any] | None = None
        if self.run_dir is not None:
            check_loggers(config)  # a missing tracker package is refused before the run folder is touched
        if self.run_dir is not None and launch_rank_zero():
            if resume:
                self._run = OpenRun(self.run_dir, resume=True)
                self._saved = ck.load_state(self.run_dir / ck.STATE)
                self._check_resume_settings(self._saved)
            else:
                check_new_run(self.run_dir, overwrite)
                self._run = OpenRun(self.run_dir, overwrite=overwrite)

    def close(self) -> None:
        """Release the run directory (its lock); a replaced run that never got a checkpoint is put back."""
        if self._run is not None:
            self._run.close()
            self._run = None

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------- set-up
    def _make_fabric(self):
        import logging

        from lightning.fabric import Fabric

        # Fabric announces each DDP process; the CLI keeps stderr for progress and one-line errors
        import lightning_utilities.core.rank_zero as rank_zero

        for log in (logging.getLogger("lightning.fabric"), logging.getLogger("lightning.pytorch"), rank_zero.log):
            log.setLevel(logging.WARNING)
        from .loggers import log_run_config, make_loggers

        # csv, tensorboard, mlflow, wandb (trainer.loggers): the run folder stays the source of truth
        loggers = make_loggers(self.cfg, self.run_dir, self.resume) if self.run_dir is not None else []
        multi = self.cfg.devices * self.cfg.num_nodes > 1
        fabric = Fabric(
            accelerator=self.cfg.accelerator,
            devices=self.cfg.devices,
            num_nodes=self.cfg.num_nodes,
            strategy="ddp" if multi else "auto",
            precision="bf16-mixed" if self.cfg.precision == "bf16" else "32-true",
            loggers=loggers,
        )
        fabric.launch()
        if loggers and fabric.is_global_zero:  # trackers get the run's config as hyperparameters
            log_run_config(loggers, {**self.run_config, "trainer": to_dict(self.cfg), "seed": self.cfg.seed})
        return fabric

    def _write_config(self) -> None:
        cfg: dict[str, Any] = {}
        if self.resume and (self.run_dir / ck.CONFIG).is_file():
            cfg = json.loads((self.run_dir / ck.CONFIG).read_text())  # keep what the caller does not restate
        cfg.update(self.run_config)
        cfg["trainer"] = to_dict(self.cfg)
        cfg["seed"] = self.cfg.seed
        cfg["versions"] = ck.versions()
        ck.atomic_write_text(self.run_dir / ck.CONFIG, json.dumps(cfg, indent=2, sort_keys=True) + "\n")

    def _check_resume_settings(self, state: dict[str, Any]) -> None:
        """Refuse settings that would change what the saved position means; note the others that changed."""
        old = state.get("trainer")
        if not isinstance(old, dict):
            return
        new = to_dict(self.cfg)
        for k in _FIXED_ON_RESUME:
            if k in old and old[k] != new[k]:
                raise ConfigError(
                    f"trainer.{k} cannot change on --resume (the run was saved with {old[k]!r}, got {new[k]!r}); "
                    "start a new run instead"
                )
        changed = [f"trainer.{k}={new[k]!r} (was {old[k]!r})" for k in sorted(new) if k in old and old[k] != new[k]]
        changed = [c for c in changed if not c.startswith(("trainer.progress", "trainer.threads"))]
        if changed:
            print(f"note: resuming with {', '.join(changed)}")  # stdout: stderr is for errors and progress

    # ----------------------------------------------------------------- state
    def _rng_state(self) -> dict[str, Any]:
        torch_state = torch.get_rng_state()
        if self.world > 1:
            torch_state = self.fabric.all_gather(torch_state).cpu()  # (world, n): one row per rank
        else:
            torch_state = torch_state.unsqueeze(0)
        np_state = np.random.get_state()
        return {
            "torch": torch_state,
            "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "numpy_pos": int(np_state[2]),
            "python": random.getstate()[1],
        }

    def _set_rng_state(self, rng: dict[str, Any]) -> None:
        rows = rng["torch"]
        if rows.shape[0] != self.world:
            raise CheckpointError(
                f"the run was saved with {rows.shape[0]} processes; resume it with --devices {rows.shape[0]}"
            )
        torch.set_rng_state(rows[self.rank].to(torch.uint8).clone())
        np.random.set_state(("MT19937", rng["numpy_keys"].numpy().astype(np.uint32), rng["numpy_pos"], 0, 0.0))
        random.setstate((3, tuple(rng["python"]), None))

    def _gather_rows(self, values: list[float]) -> Tensor:
        """(world, len(values)) float64: one row per process (collective under DDP)."""
        t = torch.tensor(values, dtype=torch.float64)
        if self.world > 1:
            return self.fabric.all_gather(t).cpu().reshape(self.world, -1)
        return t.unsqueeze(0)

    def _check_finite_weights(self, model) -> None:
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise DivergedError(self._diverged_msg(self.step, f"weight {name} is NaN/Inf"))

    def _save(self, model, optimizers, epoch: int, batch_in_epoch: int, running: dict | None, stopped: bool) -> None:
        """Write the one consistent snapshot resume reads (trainer_state.pt), then the files for users.

        ``running``: the epoch's running sums at a mid-epoch checkpoint; ``stopped``: training ended
        early (early stopping or a callback), so ``--resume`` treats the run as finished."""
        raw = self._raw(model)
        self._check_finite_weights(raw)  # every rank checks the same weights, so all stop together
        rng = self._rng_state()  # collective under DDP: every rank takes part
        keys = sorted(running["sums"]) if running else []
        rows = self._gather_rows([running["sums"][k] for k in keys] + [running["count"]] if running else [0.0])
        if not self.fabric.is_global_zero or self.run_dir is None:
            return
        state = {
            "format": STATE_FORMAT,
            "model": ck.state_dict_for_save(raw),
            "optimizers": [o.state_dict() for o in optimizers],
            "step": self.step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "world_size": self.world,
            "rng": rng,
            "registry_name": getattr(raw, "registry_name", ""),
            "trainer": to_dict(self.cfg),
            "history": json.dumps(self.history),
            "running": {"keys": keys, "rows": rows, "seconds": running["seconds"]} if running else None,
            "early_stop": self._early.state() if self._early else None,
            "stopped": stopped,
        }
        current, prev = self.run_dir / ck.STATE, self.run_dir / ck.PREV_STATE
        if current.is_file():  # keep the generation before, for a roll-back if these weights diverge next
            link = prev.with_name(f".{prev.name}.link-{os.getpid()}")
            link.unlink(missing_ok=True)
            os.link(current, link)
            os.replace(link, prev)
        ck.save_state(current, state)
        self._saved_step = self.step
        ck.save_weights(self.run_dir / ck.WEIGHTS, raw, {"step": str(self.step), "model": state["registry_name"]})
        # derived from the state just written: a kill between the two writes loses nothing (resume rewrites it)
        ck.atomic_write_text(self.run_dir / ck.METRICS, "".join(json.dumps(h) + "\n" for h in self.history))
        if self._run is not None:
            self._run.commit()  # the first checkpoint exists: a run this one replaces can go

    @staticmethod
    def _raw(model):
        return getattr(model, "module", model) if hasattr(model, "_forward_module") else model

    # ----------------------------------------------------------------- steps
    def _backward(self, loss: Tensor, own_step: bool = False) -> None:
        if not torch.isfinite(loss.detach()).all():
            raise _LossDiverged(self.step + 1)
        self.fabric.backward(loss)
        if own_step and self.world > 1:
            # DDP's reducer expects one backward per forward; models with their own steps run several,
            # so their gradients are averaged here instead
            for p in self._raw(self._fmodel).parameters():
                if p.grad is not None:
                    torch.distributed.all_reduce(p.grad)
                    p.grad /= self.world

    def _clip(self, optimizer: torch.optim.Optimizer) -> None:
        if self.cfg.grad_clip:
            params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            if params:
                torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)

    def _set_lr(self, optimizers, horizon: int) -> float:
        scale = lr_scale(self.step, horizon, self.cfg)
        for g in (g for o in optimizers for g in o.param_groups):
            g["lr"] = g["base_lr"] * scale
        return optimizers[0].param_groups[0]["lr"]

    def _train_step(self, fmodel, raw, optimizers, group: list[dict]) -> dict[str, Tensor]:
        """One optimizer step on ``group``: one batch, or ``accumulate`` batches whose gradients add up."""
        if hasattr(raw, "train_step"):
            ctx = self.fabric.no_backward_sync(fmodel, enabled=True) if self.world > 1 else _null()
            with ctx, self.fabric.autocast():
                return fmodel.train_step(group[0], [OptimizerStep(self, o) for o in optimizers])
        (opt,) = optimizers
        opt.zero_grad(set_to_none=True)
        n_total = sum(batch_size_of(b) for b in group)
        outs: dict[str, Tensor] = {}
        for i, batch in enumerate(group):
            last = i == len(group) - 1
            ctx = self.fabric.no_backward_sync(fmodel, enabled=True) if self.world > 1 and not last else _null()
            with ctx:
                with self.fabric.autocast():  # bf16: Fabric autocasts forward(), not the loss method we call
                    out = fmodel.loss(batch)
                w = batch_size_of(batch) / n_total  # a size-weighted mean over the group: one big batch's loss
                self._backward(out["loss"] * w if len(group) > 1 else out["loss"])
            for k, v in out.items():
                v = v.detach().float().mean() * w
                outs[k] = outs[k] + v if k in outs else v
        self._clip(opt)
        opt.step()
        return outs

    def _check_model(self, raw) -> list[torch.optim.Optimizer]:
        """Build the optimizers; refuse trainer settings this model cannot honour."""
        name = getattr(raw, "registry_name", "") or type(raw).__name__
        if hasattr(raw, "train_step") and self.cfg.accumulate > 1:
            raise ConfigError(
                f"{name} does not support trainer.accumulate (its own step alternates optimizers); leave it at 1"
            )
        groups = optimizer_groups(raw)
        if len(groups) > 1 and not hasattr(raw, "train_step"):
            raise ValueError(f"{name} declares {len(groups)} optimizers but has no train_step to use them")
        return [make_optimizer(g, self.cfg) for g in groups]

    # ----------------------------------------------------------------- loop
    def fit(
        self,
        model: torch.nn.Module,
        train: BatchSource,
        val: BatchSource | None = None,
        callbacks: Iterable[Callback | Callable] = (),
    ) -> dict[str, Any]:
        """Train ``model``; return the last epoch's metrics (plus ``train_seconds``).

        ``callbacks``: :class:`Callback` objects, or functions ``fn(epoch, model) -> dict | None`` run
        after each epoch. A run that is already finished (``--resume`` of a completed run) is not
        touched: ``already_finished`` becomes True and its last metrics are returned.
        """
        cfg = self.cfg
        callbacks = [c if isinstance(c, Callback) else EveryEpoch(c) for c in callbacks]
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self._early = _EarlyStopping(cfg.early_stop) if cfg.early_stop else None
        if self._early and val is None:
            raise ConfigError(f"trainer.early_stop={cfg.early_stop} needs validation data; this run has none")
        world = cfg.devices * cfg.num_nodes
        bpe = train.num_batches(world)
        if bpe == 0:
            raise ConfigError("the training data gives no batches; lower trainer.batch_size or use more data")
        steps_per_epoch = -(-bpe // cfg.accumulate)
        horizon = cfg.epochs * steps_per_epoch  # the schedule's length: all epochs, so max_steps + resume is exact
        total = min(horizon, cfg.max_steps) if cfg.max_steps else horizon
        state = self._saved
        if self.resume and state is None and self.run_dir is not None:
            state = ck.load_state(self.run_dir / ck.STATE)  # a DDP worker process
        if state is not None and (state["step"] >= total or state.get("stopped")):
            self.already_finished = True
            self.history = _history_of(state)
            return dict(self.history[-1]) if self.history else {}

        self.fabric = fabric = self._make_fabric()
        self.rank, self.world = fabric.global_rank, fabric.world_size
        optimizers = self._check_model(model)
        wrapped = fabric.setup(model, *optimizers)
        fmodel, optimizers = wrapped[0], list(wrapped[1:])
        self._fmodel, self.optimizers = fmodel, optimizers
        raw = self._raw(fmodel)
        for name in ("loss", "train_step", "eval_step"):
            if hasattr(raw, name):
                fmodel.mark_forward_method(name)

        start_epoch, start_batch, running = 0, 0, None
        if state is not None:
            name = getattr(raw, "registry_name", "")
            if state.get("registry_name") and name and state["registry_name"] != name:
                raise CheckpointError(
                    f"{self.run_dir} holds a {state['registry_name']} run; it cannot be resumed as {name}"
                )
            ck.apply_weights(raw, state["model"], str(self.run_dir / ck.STATE))
            if len(state["optimizers"]) != len(optimizers):
                raise CheckpointError(
                    f"{self.run_dir}: the saved run has {len(state['optimizers'])} optimizers, "
                    f"the model has {len(optimizers)}"
                )
            for o, s in zip(optimizers, state["optimizers"]):
                fresh = [{k: v for k, v in g.items() if k != "params"} for g in o.param_groups]
                o.load_state_dict(s)
                for g, f in zip(o.param_groups, fresh):  # today's settings (lr, decay, ...) replace the saved ones
                    g.update(f)
            self.step, start_epoch, start_batch = state["step"], state["epoch"], state["batch_in_epoch"]
            self._set_rng_state(state["rng"])
            self.history = _history_of(state)
            if state.get("running") and start_batch:
                r = state["running"]
                row = r["rows"][self.rank].tolist()
                running = {"sums": dict(zip(r["keys"], row[:-1])), "count": row[-1], "seconds": r["seconds"]}
            if self._early and state.get("early_stop"):
                self._early.load(state["early_stop"])
        else:
            torch.manual_seed(cfg.seed * 1000 + self.rank)
        if self.run_dir is not None and fabric.is_global_zero:
            self._write_config()
        if state is None:
            self._save(fmodel, optimizers, 0, 0, None, False)  # step 0: a last good checkpoint always exists

        for cb in callbacks:
            cb.on_fit_start(self, raw)
        last: dict[str, Any] = dict(self.history[-1]) if self.history else {}
        t_start = time.perf_counter()
        # only rank 0 shows progress; --no-progress (or a log file) gets one line when training ends
        progress = stage(self.description, total, "steps", bars=cfg.progress) if fabric.is_global_zero else _null()
        try:
            stop = False
            with progress as bar:
                if bar is not None:
                    bar.advance(min(self.step, total))
                for epoch in range(start_epoch, cfg.epochs):
                    if self.step >= total or stop:
                        break
                    fmodel.train()
                    resumed = running if epoch == start_epoch else None
                    sums: dict[str, float] = dict(resumed["sums"]) if resumed else {}
                    count = resumed["count"] if resumed else 0
                    t_epoch = time.perf_counter() - (resumed["seconds"] if resumed else 0.0)
                    first = start_batch if epoch == start_epoch else 0
                    b = first
                    batches = enumerate(train.epoch(epoch, self.rank, self.world, start=first), start=first)
                    for group in _groups(batches, cfg.accumulate):
                        b = group[-1][0]
                        group = [{k: fabric.to_device(v) for k, v in batch.items()} for _, batch in group]
                        lr = self._set_lr(optimizers, horizon)
                        if hasattr(raw, "on_train_step_start"):  # the model's own schedules span all epochs
                            raw.on_train_step_start(self.step, horizon)
                        out = self._train_step(fmodel, raw, optimizers, group)
                        self.step += 1
                        n = sum(batch_size_of(x) for x in group)
                        count += n
                        values = {}
                        for k, v in out.items():
                            v = float(v.detach().float().mean()) if isinstance(v, Tensor) else float(v)
                            if not math.isfinite(v) and k == "loss":
                                raise _LossDiverged(self.step)
                            sums[k] = sums.get(k, 0.0) + v * n
                            values[k] = v
                        if self.log_every and self.step % self.log_every == 0:
                            logged = {f"train_step/{k}": sums[k] / count for k in sums}
                            fabric.log_dict({**logged, "train_step/lr": lr}, step=self.step)
                        if bar is not None:
                            loss = sums.get("loss", 0) / max(count, 1)
                            bar.describe(f"{self.description} epoch {epoch + 1}/{cfg.epochs} loss {loss:.4g}")
                            bar.advance()
                        for cb in callbacks:
                            cb.on_step_end(self, raw, self.step, values, group)
                        stop = any(cb.should_stop(self, raw, self.step) for cb in callbacks)
                        if self.step >= total or stop:
                            break
                        if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                            seconds = time.perf_counter() - t_epoch
                            self._save(
                                fmodel,
                                optimizers,
                                epoch,
                                b + 1,
                                {"sums": sums, "count": count, "seconds": seconds},
                                False,
                            )
                    finished_epoch = b + 1 >= bpe
                    metrics: dict[str, Any] = {"epoch": epoch + 1, "step": self.step}
                    train_means = self._reduce(dict(sums), count)
                    metrics.update({f"train/{k}": v for k, v in train_means.items()})
                    metrics["lr"] = optimizers[0].param_groups[0]["lr"]
                    metrics["epoch_seconds"] = time.perf_counter() - t_epoch
                    if val is not None:
                        metrics.update({f"val/{k}": v for k, v in self.evaluate(fmodel, val).items()})
                    if hasattr(raw, "on_epoch_end"):
                        metrics.update(raw.on_epoch_end(epoch) or {})
                    for cb in callbacks:
                        metrics.update(cb.on_epoch_end(self, raw, epoch, metrics) or {})
                    if self._early is not None:
                        if self._early.update(epoch, metrics) and self.run_dir is not None and fabric.is_global_zero:
                            self._check_finite_weights(raw)
                            ck.save_weights(
                                self.run_dir / ck.BEST, raw, {"step": str(self.step), "epoch": str(epoch + 1)}
                            )
                        metrics["early_stop/best_epoch"] = self._early.best_epoch
                        stop = stop or self._early.stop
                    self.history.append(metrics)
                    fabric.log_dict({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=self.step)
                    last = metrics
                    stopped = stop and self.step < total
                    if finished_epoch:
                        self._save(fmodel, optimizers, epoch + 1, 0, None, stopped)
                    else:
                        running_now = {"sums": sums, "count": count, "seconds": metrics["epoch_seconds"]}
                        self._save(fmodel, optimizers, epoch, b + 1, running_now, stopped)
                    if self._early is not None and self._early.stop:
                        break
        except _LossDiverged as e:
            raise DivergedError(self._diverged_msg(e.step, "loss is NaN/Inf", self._roll_back(e.step))) from None
        last["train_seconds"] = time.perf_counter() - t_start
        for logger in fabric.loggers:
            logger.finalize("success")
        return last

    def _roll_back(self, bad_step: int) -> int | None:
        """A NaN/Inf loss at ``bad_step`` was computed with the weights of step ``bad_step - 1``: if the newest
        checkpoint holds those weights, put back the one before it. Returns the step of the checkpoint kept."""
        if self.run_dir is None or not self.fabric.is_global_zero:
            return None
        if getattr(self, "_saved_step", None) != bad_step - 1:
            return self._saved_step
        prev = self.run_dir / ck.PREV_STATE
        if not prev.is_file():
            return None
        state = ck.load_state(prev)
        ck.save_tensors(
            self.run_dir / ck.WEIGHTS, state["model"], {"step": str(state["step"]), "model": state["registry_name"]}
        )
        ck.atomic_write_text(self.run_dir / ck.METRICS, "".join(json.dumps(h) + "\n" for h in _history_of(state)))
        os.replace(prev, self.run_dir / ck.STATE)
        self._saved_step = state["step"]
        return state["step"]

    def evaluate(self, model, data: BatchSource) -> dict[str, float]:
        """Size-weighted means of ``eval_step`` (or ``loss``) over ``data``, across all processes."""
        raw = self._raw(model)
        step_fn = model.eval_step if hasattr(raw, "eval_step") else model.loss
        batches = ({k: self.fabric.to_device(v) for k, v in b.items()} for b in data.epoch(0, self.rank, self.world))
        # evaluation draws from the global RNG (VAE codes, GAN noise) on its own fork: training's stream, and so
        # a resumed run, does not depend on when evaluations happened
        with _rng_fork(), self.fabric.autocast():
            return self._reduce(*_weighted_sums(model, step_fn, batches))

    def _reduce(self, sums: dict[str, float], count: int) -> dict[str, float]:
        if self.world > 1:
            keys = sorted(sums)
            t = torch.tensor([sums[k] for k in keys] + [float(count)], dtype=torch.float64)
            t = self.fabric.all_reduce(t, reduce_op="sum")
            sums, count = dict(zip(keys, t[:-1].tolist())), t[-1].item()
        return {k: v / max(count, 1) for k, v in sums.items()}

    def _diverged_msg(self, step: int, what: str, kept: int | None = -1) -> str:
        if kept == -1:
            kept = getattr(self, "_saved_step", None)
        if self.run_dir is None:
            where = ""
        elif kept is None:
            where = f"; no checkpoint in {self.run_dir} gives a finite loss"
        else:
            where = f"; the last good checkpoint (step {kept}) is kept in {self.run_dir}"
        return (
            f"training diverged: {what} at step {step}{where}. Lower trainer.lr (also on --resume) "
            "or set trainer.grad_clip"
        )


class _LossDiverged(Exception):
    """Inside the loop: the loss of step ``step`` is NaN/Inf (fit turns it into a DivergedError)."""

    def __init__(self, step: int):
        super().__init__(step)
        self.step = step


def _groups(batches, n: int):
    """Consecutive runs of ``n`` (index, batch) pairs (the last may be shorter)."""
    group = []
    for item in batches:
        group.append(item)
        if len(group) == n:
            yield group
            group = []
    if group:
        yield group


def _history_of(state: dict[str, Any]) -> list[dict[str, Any]]:
    h = state.get("history")
    return json.loads(h) if isinstance(h, str) else []


def _rng_fork():
    """torch's global RNG (CPU, and the current GPU) forked for the duration of a block."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return torch.random.fork_rng(devices=devices)


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def evaluate_model(model: torch.nn.Module, data: BatchSource) -> dict[str, float]:
    """Size-weighted means of ``eval_step`` (or ``loss``) over ``data`` in this process (no Fabric)."""
    sums, count = _weighted_sums(model, getattr(model, "eval_step", None) or model.loss, data.epoch(0))
    return {k: v / max(count, 1) for k, v in sums.items()}


def _weighted_sums(model: torch.nn.Module, step_fn, batches) -> tuple[dict[str, float], int]:
    """Batch-size-weighted sums of ``step_fn``'s outputs, in eval mode without gradients."""
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    with torch.no_grad():
        for batch in batches:
            out = step_fn(batch)
            n = batch_size_of(batch)
            count += n
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach().float().mean()) * n
    model.train(was_training)
    return sums, count
