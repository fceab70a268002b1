"""One training loop for every model, on ``lightning.fabric.Fabric``. It knows nothing about any model.

What it gives every model: seeding (bitwise reproducible on CPU), rich progress bars, CSV and
TensorBoard logs, evaluation every epoch, an atomically written run directory, exact resume,
a NaN/Inf guard, bf16 autocast, and DDP over ``devices`` processes (gloo on CPU).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path
import warnings
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import Tensor

from ..config import TrainerConfig, to_dict
from ..data.batches import BatchSource
from ..errors import CheckpointError, DivergedError
from . import checkpoint as ck

# Fabric's all_gather goes through a torch API that now warns on every call; the call is correct
warnings.filterwarnings("ignore", message=r"torch\.distributed\.nn\.functional\.all_gather is deprecated")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch. Models are built after this, so their init is reproducible."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(params: Iterable, cfg: TrainerConfig, lr: float | None = None) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.optimizer``; models with their own optimizers may call this too.

    ``params`` is an iterable of parameters or of param-group dicts. The fused kernels are used
    when every parameter is a float32/bf16 tensor on CPU or CUDA: on a 2-core CPU they make the
    Adam step about 6x cheaper than the foreach one (see benchmarks/bench_autoencoder.py).
    """
    lr = cfg.lr if lr is None else lr
    params = [dict(g, params=list(g["params"])) if isinstance(g, dict) else g for g in params]
    flat = [q for g in params for q in (g["params"] if isinstance(g, dict) else [g])]
    fused = bool(flat) and all(
        q.device.type in ("cpu", "cuda") and q.dtype in (torch.float32, torch.bfloat16) for q in flat
    )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay, fused=fused)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay, fused=fused)
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, fused=fused)


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


def _main_process() -> bool:
    """True in the process the user started (before Fabric launches DDP workers)."""
    return os.environ.get("LOCAL_RANK") is None and os.environ.get("RANK") is None


class Trainer:
    """Train a model on batch sources, writing a run directory (or none, when ``run_dir`` is None)."""

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
        if self.run_dir is not None and _main_process():
            if resume:
                ck.load_state(self.run_dir / ck.STATE)  # fail early and clearly on a bad state
            else:
                ck.prepare_run_dir(self.run_dir, overwrite)

    # ----------------------------------------------------------------- set-up
    def _make_fabric(self):
        from lightning.fabric import Fabric

        loggers = []
        if self.run_dir is not None:
            from lightning.fabric.loggers import CSVLogger, TensorBoardLogger

            # a resumed run logs into the next version folder, so earlier CSV logs are kept
            loggers.append(CSVLogger(str(self.run_dir), name="logs", version=None if self.resume else 0))
            if self.cfg.tensorboard:
                loggers.append(TensorBoardLogger(str(self.run_dir), name="tb", version=0))
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
        return fabric

    def _write_config(self) -> None:
        cfg = dict(self.run_config)
        cfg.setdefault("trainer", to_dict(self.cfg))
        cfg["seed"] = self.cfg.seed
        cfg["versions"] = ck.versions()
        ck.atomic_write_text(self.run_dir / ck.CONFIG, json.dumps(cfg, indent=2, sort_keys=True) + "\n")

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

    def _save(self, model, optimizers, step: int, epoch: int, batch_in_epoch: int) -> None:
        rng = self._rng_state()  # collective under DDP: every rank takes part
        if not self.fabric.is_global_zero or self.run_dir is None:
            return
        raw = self._raw(model)
        state = {
            "format": 1,
            "model": ck.state_dict_for_save(raw),
            "optimizers": [o.state_dict() for o in optimizers],
            "step": step,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "world_size": self.world,
            "rng": rng,
            "registry_name": getattr(raw, "registry_name", ""),
        }
        # trainer_state.pt is the one consistent snapshot resume reads; the safetensors copy is for users
        ck.save_state(self.run_dir / ck.STATE, state)
        ck.save_weights(self.run_dir / ck.WEIGHTS, raw, {"step": str(step), "model": state["registry_name"]})
        ck.atomic_write_text(self.run_dir / ck.METRICS, "".join(json.dumps(h) + "\n" for h in self.history))

    @staticmethod
    def _raw(model):
        return getattr(model, "module", model) if hasattr(model, "_forward_module") else model

    # ----------------------------------------------------------------- loop
    def fit(
        self,
        model: torch.nn.Module,
        train: BatchSource,
        val: BatchSource | None = None,
        callbacks: Iterable[Callable[[int, torch.nn.Module], dict[str, float] | None]] = (),
    ) -> dict[str, Any]:
        """Train ``model``; return the last epoch's metrics. ``callbacks(epoch, model)`` run after each epoch."""
        cfg = self.cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.fabric = fabric = self._make_fabric()
        self.rank, self.world = fabric.global_rank, fabric.world_size
        if self.run_dir is not None and fabric.is_global_zero and not self.resume:
            self.run_dir.mkdir(parents=True, exist_ok=True)  # under torchrun no process checked it first
            self._write_config()

        own_steps = hasattr(model, "train_step")
        if own_steps:
            optimizers = list(model.configure_optimizers(cfg))
        else:
            optimizers = [make_optimizer(model.parameters(), cfg)]
        wrapped = fabric.setup(model, *optimizers)
        fmodel, optimizers = wrapped[0], list(wrapped[1:])
        raw = self._raw(fmodel)
        for name in ("loss", "train_step", "eval_step"):
            if hasattr(raw, name):
                fmodel.mark_forward_method(name)

        if hasattr(raw, "on_fit_start"):
            raw.on_fit_start(self.run_dir if self.fabric.is_global_zero else None)
        bpe = train.num_batches(self.world)
        if bpe == 0:
            raise CheckpointError("the training data gives no batches; lower trainer.batch_size or use more data")
        total = cfg.epochs * bpe if not cfg.max_steps else min(cfg.epochs * bpe, cfg.max_steps)

        step, start_epoch, start_batch = 0, 0, 0
        if self.resume:
            state = ck.load_state(self.run_dir / ck.STATE)
            name = getattr(raw, "registry_name", "")
            if state.get("registry_name") and name and state["registry_name"] != name:
                raise CheckpointError(
                    f"{self.run_dir} holds a {state['registry_name']} run; it cannot be resumed as {name}"
                )
            ck.apply_weights(raw, state["model"], str(self.run_dir / ck.STATE))
            if len(state["optimizers"]) != len(optimizers):
                raise CheckpointError(
                    f"{self.run_dir}: the saved run has {len(state['optimizers'])} optimizers, the model has {len(optimizers)}"
                )
            for o, s in zip(optimizers, state["optimizers"]):
                o.load_state_dict(s)
            step, start_epoch, start_batch = state["step"], state["epoch"], state["batch_in_epoch"]
            self._set_rng_state(state["rng"])
            self.history = [h for h in self._read_history() if h.get("step", 0) <= step]
        else:
            torch.manual_seed(cfg.seed * 1000 + self.rank)
            self._save(fmodel, optimizers, 0, 0, 0)  # step 0: a last good checkpoint always exists

        def backward(loss: Tensor) -> None:
            if not torch.isfinite(loss.detach()).all():
                raise DivergedError(self._diverged_msg(step + 1))
            fabric.backward(loss)
            if own_steps and self.world > 1:
                # DDP's reducer expects one backward per forward; models with their own steps
                # run several, so their gradients are averaged here instead.
                for p in raw.parameters():
                    if p.grad is not None:
                        torch.distributed.all_reduce(p.grad)
                        p.grad /= self.world

        # the trainer's lr schedule scales every optimizer's groups (G2P models set their own lr in train_step)
        scheduled = cfg.lr_schedule != "constant" or cfg.warmup_steps > 0
        progress = self._progress()
        last: dict[str, Any] = {}
        t_start = time.perf_counter()
        with progress:
            task = progress.add_task(self.description, total=total, completed=min(step, total)) if progress else None
            for epoch in range(start_epoch, cfg.epochs):
                if cfg.max_steps and step >= cfg.max_steps:
                    break
                fmodel.train()
                sums: dict[str, float] = {}
                count = 0
                t_epoch = time.perf_counter()
                first = start_batch if epoch == start_epoch else 0
                b = first
                for b, batch in enumerate(train.epoch(epoch, self.rank, self.world, start=first), start=first):
                    batch = {k: fabric.to_device(v) for k, v in batch.items()}
                    if scheduled:
                        scale = lr_scale(
                            step, cfg.epochs * bpe, cfg
                        )  # horizon: all epochs, so max_steps + resume is exact
                        for group in (g for o in optimizers for g in o.param_groups):
                            group["lr"] = group.setdefault("base_lr", group["lr"]) * scale
                    if hasattr(raw, "on_train_step_start"):
                        raw.on_train_step_start(step, total)
                    if own_steps:
                        ctx = fabric.no_backward_sync(fmodel, enabled=self.world > 1) if self.world > 1 else _null()
                        with ctx:
                            out = fmodel.train_step(batch, optimizers, backward)
                    else:
                        opt = optimizers[0]
                        opt.zero_grad(set_to_none=True)
                        out = fmodel.loss(batch)
                        backward(out["loss"])
                        if cfg.grad_clip:
                            fabric.clip_gradients(fmodel, opt, max_norm=cfg.grad_clip)
                        opt.step()
                    step += 1
                    n = batch_size_of(batch)
                    count += n
                    for k, v in out.items():
                        v = float(v.detach().float().mean()) if isinstance(v, Tensor) else float(v)
                        if not math.isfinite(v) and k == "loss":
                            raise DivergedError(self._diverged_msg(step))
                        sums[k] = sums.get(k, 0.0) + v * n
                    if self.log_every and step % self.log_every == 0:
                        fabric.log_dict({f"train_step/{k}": sums[k] / count for k in sums}, step=step)
                    if progress:
                        progress.update(
                            task,
                            completed=step,
                            description=f"{self.description} epoch {epoch + 1}/{cfg.epochs} loss {sums.get('loss', 0) / max(count, 1):.4g}",
                        )
                    if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                        self._save(fmodel, optimizers, step, epoch, b + 1)
                    if cfg.max_steps and step >= cfg.max_steps:
                        break
                finished_epoch = not (cfg.max_steps and step >= cfg.max_steps and b + 1 < bpe)
                metrics: dict[str, Any] = {"epoch": epoch + 1, "step": step}
                train_means = self._reduce({k: v for k, v in sums.items()}, count)
                metrics.update({f"train/{k}": v for k, v in train_means.items()})
                metrics["epoch_seconds"] = time.perf_counter() - t_epoch
                if val is not None:
                    metrics.update({f"val/{k}": v for k, v in self.evaluate(fmodel, val).items()})
                if hasattr(raw, "on_epoch_end"):
                    metrics.update(raw.on_epoch_end(epoch) or {})
                for cb in callbacks:
                    metrics.update(cb(epoch, raw) or {})
                self.history.append(metrics)
                fabric.log_dict({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=step)
                last = metrics
                if finished_epoch:
                    self._save(fmodel, optimizers, step, epoch + 1, 0)
                else:
                    self._save(fmodel, optimizers, step, epoch, b + 1)
        last["train_seconds"] = time.perf_counter() - t_start
        for logger in fabric.loggers:
            logger.finalize("success")
        return last

    def evaluate(self, model, data: BatchSource) -> dict[str, float]:
        """Size-weighted means of ``eval_step`` (or ``loss``) over ``data``, across all processes."""
        raw = self._raw(model)
        step_fn = model.eval_step if hasattr(raw, "eval_step") else model.loss
        batches = ({k: self.fabric.to_device(v) for k, v in b.items()} for b in data.epoch(0, self.rank, self.world))
        return self._reduce(*_weighted_sums(model, step_fn, batches))

    def _reduce(self, sums: dict[str, float], count: int) -> dict[str, float]:
        if self.world > 1:
            keys = sorted(sums)
            t = torch.tensor([sums[k] for k in keys] + [float(count)], dtype=torch.float64)
            t = self.fabric.all_reduce(t, reduce_op="sum")
            sums, count = dict(zip(keys, t[:-1].tolist())), t[-1].item()
        return {k: v / max(count, 1) for k, v in sums.items()}

    def _diverged_msg(self, step: int) -> str:
        where = f"; the last good checkpoint is kept in {self.run_dir}" if self.run_dir else ""
        return f"training diverged: loss is NaN/Inf at step {step}{where}. Lower trainer.lr or set trainer.grad_clip"

    def _read_history(self) -> list[dict[str, Any]]:
        p = self.run_dir / ck.METRICS
        if not p.is_file():
            return []
        out = []
        for line in p.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return out

    def _progress(self):
        if not self.cfg.progress or not self.fabric.is_global_zero:
            return _NoProgress()
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


class _NoProgress(_null):
    def __bool__(self) -> bool:
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
