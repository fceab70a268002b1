"""Greedy layer-wise pre-training (Hinton et al. 2006; Bengio et al. 2007) and label-budget fine-tuning.

Layer l is trained alone, through the engine, to model h^(l-1): the codes of the layers
below it, computed once with those layers frozen. A stack saved to a folder holds
``stack.json`` (what was asked and how far it got) and one engine run directory per layer
(``layer1/``, ``layer2/``, ...), so an interrupted pre-training resumes at its layer, and
inside it at its last checkpoint. :func:`classifier_from_stack` then builds the deep
classifier that fine-tuning starts from.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from ..config import TrainerConfig, to_dict
from ..data.batches import TensorBatches
from ..errors import CheckpointError, ConfigError
from ..io import atomic_write_text
from ..registry import create_model
from ..train import checkpoint as ck
from ..train.engine import Trainer, seed_everything
from ..train.rundir import OpenRun

LAYER_TYPES = ("ae", "dae", "rbm")
STACK_FILE = "stack.json"


def parse_layers(text: str) -> tuple[int, ...]:
    """'500,500,2000' -> (500, 500, 2000); an empty, non-numeric or non-positive list is a ConfigError."""
    parts = [p.strip() for p in str(text).split(",")]
    if not text or not str(text).strip() or any(p == "" for p in parts):
        raise ConfigError(f"--layers must be comma-separated layer sizes like 500,500,2000, got {text!r}")
    sizes = []
    for p in parts:
        try:
            sizes.append(int(p))
        except ValueError:
            raise ConfigError(f"--layers: {p!r} is not a whole number; give sizes like 500,500,2000") from None
    if any(s < 1 for s in sizes):
        raise ConfigError(f"--layers sizes must be >= 1, got {text!r}")
    return tuple(sizes)


@dataclass(frozen=True)
class StackSpec:
    """What to pre-train: layer sizes, the per-layer learner and its options."""

    layers: tuple[int, ...]
    layer_type: str = "dae"
    corruption: float = 0.25  # DAE masking fraction
    k: int = 1  # RBM Gibbs steps
    persistent: bool = False  # RBM: PCD instead of CD-k

    def __post_init__(self) -> None:
        if self.layer_type not in LAYER_TYPES:
            raise ConfigError(f"--layer-type {self.layer_type!r} is not valid; choose one of: {', '.join(LAYER_TYPES)}")
        if not self.layers or any(s < 1 for s in self.layers):
            raise ConfigError(f"layers must be positive sizes, got {self.layers}")

    def layer_model(self, index: int, input_dim: int, unit_interval: bool = True) -> tuple[str, dict[str, Any]]:
        """Registry name and config of layer ``index`` (0-based) with ``input_dim`` inputs.

        ``unit_interval``: whether the layer's inputs lie in [0, 1] (pixels; every upper layer sees sigmoid
        codes). When they do not (standardized table columns), an RBM gets Gaussian visible units and an AE/DAE
        layer a linear reconstruction with a squared-error loss, as their sigmoid/Bernoulli defaults need [0, 1].
        """
        h = self.layers[index]
        if self.layer_type == "rbm":
            cfg = {"input_shape": (input_dim,), "hidden": h, "k": self.k, "persistent": self.persistent}
            return "rbm", cfg if unit_interval else {**cfg, "visible": "gaussian"}
        cfg = {
            "input_shape": (input_dim,),
            "hidden": h,
            "corruption": self.corruption if self.layer_type == "dae" else 0.0,
        }
        return "dense_ae_layer", cfg if unit_interval else {**cfg, "loss": "mse", "output": "identity"}


def in_unit_interval(x: Tensor) -> bool:
    """Whether every value of ``x`` lies in [0, 1] (pixels do; standardized table columns do not)."""
    if len(x) == 0:
        return True
    lo, hi = (float(v) for v in torch.aminmax(x.detach()))
    return lo >= 0.0 and hi <= 1.0


@torch.no_grad()
def encode_all(layer: nn.Module, x: Tensor, chunk: int = 4096) -> Tensor:
    """``layer.encode`` over ``x`` in chunks, in eval mode, without gradients."""
    was = layer.training
    layer.eval()
    out = torch.cat([layer.encode(x[i : i + chunk]) for i in range(0, len(x), chunk)]) if len(x) else x.new_zeros(0)
    layer.train(was)
    return out


@torch.no_grad()
def layer_scores(layer: nn.Module, h: Tensor, chunk: int = 4096) -> dict[str, float]:
    """Size-weighted means of ``eval_step`` (reconstruction error of the layer's input) over ``h``."""
    layer.eval()
    sums: dict[str, float] = {}
    for i in range(0, len(h), chunk):
        out = layer.eval_step({"x": h[i : i + chunk]})
        n = len(h[i : i + chunk])
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + float(v) * n
    return {k: v / max(len(h), 1) for k, v in sums.items()}


@dataclass
class Stack:
    """A pre-trained stack: the frozen layers, and per-layer scores."""

    spec: StackSpec
    layers: list[nn.Module]
    input_shape: tuple[int, ...]
    scores: list[dict[str, Any]] = field(default_factory=list)

    def encode(self, x: Tensor, depth: int | None = None) -> Tensor:
        h = x.flatten(1)
        for layer in self.layers[: depth if depth is not None else len(self.layers)]:
            h = encode_all(layer, h)
        return h


def read_stack_json(out: str | Path) -> dict[str, Any]:
    """The ``stack.json`` of a stack folder, checked to be one (a CheckpointError naming the fix if not)."""
    p = Path(out) / STACK_FILE
    if not p.is_file():
        raise CheckpointError(
            f"{out} is not a pre-trained stack: {STACK_FILE} is missing (make one with 'reprlab pretrain')"
        )
    try:
        meta = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(f"{p} is not valid JSON; the stack is corrupt") from None
    if not isinstance(meta, dict) or meta.get("kind") != "reprlab-stack":
        raise CheckpointError(f"{p} is not a reprlab stack description")
    return meta


def pretrain_stack(
    x: Tensor,
    spec: StackSpec,
    trainer: TrainerConfig,
    out: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    x_eval: Tensor | None = None,
    extra_meta: dict[str, Any] | None = None,
    on_layer_done: Callable[[int, list[nn.Module]], None] | None = None,
) -> Stack:
    """Train ``spec.layers`` greedily on the unlabelled inputs ``x``: images (N, C, H, W) in [0, 1], or rows
    (N, D) of any real values, e.g. a standardized table (then the first layer has Gaussian/linear units, see
    :meth:`StackSpec.layer_model`).

    Layer l trains on the codes of layers < l, which stay frozen (they are not given to the
    optimizer, and their codes are computed once). With ``out``, each layer is its own run
    directory and ``resume`` continues an interrupted stack at its layer. ``x_eval`` (e.g. the
    test images) gives the per-layer reconstruction scores; ``on_layer_done(l, layers)`` is
    called after each layer (tests use it).
    """
    out = Path(out) if out is not None else None
    meta: dict[str, Any] = {
        "kind": "reprlab-stack",
        "status": "pretraining",
        **to_dict(spec),
        "trainer": to_dict(trainer),
        "input_shape": list(x.shape[1:]),
        "scores": [],
        **(extra_meta or {}),
    }
    run = None
    if out is not None:
        if resume:
            old = read_stack_json(out)
            if old.get("status") == "finished":
                raise CheckpointError(f"{out} is already a finished stack; fine-tune it with 'reprlab finetune {out}'")
            meta["scores"] = old.get("scores", [])
        run = OpenRun(out, resume=resume, overwrite=overwrite)  # locked while the stack trains
    try:
        return _pretrain_layers(x, spec, trainer, out, resume, x_eval, meta, on_layer_done, run)
    finally:
        if run is not None:
            run.close()


def _pretrain_layers(x, spec, trainer, out, resume, x_eval, meta, on_layer_done, run) -> Stack:
    if out is not None:
        atomic_write_text(out / STACK_FILE, json.dumps(meta, indent=2) + "\n")
        run.commit()  # a stack this one replaces can go

    h = x.flatten(1)
    h_eval = x_eval.flatten(1) if x_eval is not None else None
    layers: list[nn.Module] = []
    scores: list[dict[str, Any]] = []
    for l in range(len(spec.layers)):
        # the data decides the first layer's units; the layers above read sigmoid codes in (0, 1)
        in_unit = l > 0 or in_unit_interval(h)
        name, cfg = spec.layer_model(l, h.shape[1], in_unit)
        layer_dir = out / f"layer{l + 1}" if out is not None else None
        done = layer_dir is not None and (layer_dir / "done.json").is_file()
        if done:
            layer = ck.load_run(layer_dir)  # finished earlier: reuse it as it is
            score = json.loads((layer_dir / "done.json").read_text())
        else:
            seed_everything(trainer.seed * 1000 + l)
            layer = create_model(name, **cfg)
            cont = layer_dir is not None and resume and (layer_dir / ck.STATE).is_file()
            run_config = {"model": name, "model_config": to_dict(layer.config), "trainer": to_dict(trainer)}
            with Trainer(
                replace(trainer, seed=trainer.seed * 1000 + l),
                layer_dir,
                run_config,
                resume=cont,
                overwrite=True,
                description=f"layer {l + 1}/{len(spec.layers)} ({spec.layer_type} {spec.layers[l]})",
            ) as t:
                t.fit(layer, TensorBatches({"x": h}, trainer.batch_size, seed=trainer.seed * 1000 + l))
            layer.eval()
            score = {"layer": l + 1, "type": spec.layer_type, "size": spec.layers[l]}
            score.update({f"train/{k}": v for k, v in layer_scores(layer, h).items()})
            if h_eval is not None:
                score.update({f"eval/{k}": v for k, v in layer_scores(layer, h_eval).items()})
            if layer_dir is not None:
                atomic_write_text(layer_dir / "done.json", json.dumps(score, indent=2) + "\n")
        for p in layer.parameters():
            p.requires_grad_(False)  # frozen from here on
        layers.append(layer)
        scores.append(score)
        if on_layer_done is not None:
            on_layer_done(l, layers)
        h = encode_all(layer, h)
        if h_eval is not None:
            h_eval = encode_all(layer, h_eval)
        if out is not None:
            meta["scores"] = scores
            atomic_write_text(out / STACK_FILE, json.dumps(meta, indent=2) + "\n")
    if out is not None:
        meta["status"] = "finished"
        atomic_write_text(out / STACK_FILE, json.dumps(meta, indent=2) + "\n")
    return Stack(spec, layers, tuple(x.shape[1:]), scores)


def load_stack(out: str | Path) -> tuple[Stack, dict[str, Any]]:
    """A finished stack saved by :func:`pretrain_stack`, and its ``stack.json``."""
    out = Path(out)
    if not out.is_dir():
        raise CheckpointError(f"stack directory {out} does not exist")
    meta = read_stack_json(out)
    if meta.get("status") != "finished":
        raise CheckpointError(
            f"{out} is not a finished stack (pre-training stopped early); "
            f"continue it with 'reprlab pretrain --resume {out}'"
        )
    spec = StackSpec(
        tuple(meta["layers"]),
        meta["layer_type"],
        meta.get("corruption", 0.25),
        meta.get("k", 1),
        meta.get("persistent", False),
    )
    layers = []
    for l in range(len(spec.layers)):
        d = out / f"layer{l + 1}"
        if not (d / "done.json").is_file():
            raise CheckpointError(f"{d} is missing or unfinished; the stack is incomplete")
        layers.append(ck.load_run(d))
    return Stack(spec, layers, tuple(meta["input_shape"]), meta.get("scores", [])), meta


def classifier_from_stack(stack: Stack, num_classes: int, depth: int | None = None):
    """The deep classifier initialized exactly from the first ``depth`` layers, with a new head."""
    from ..models.pretraining import StackedClassifier

    return StackedClassifier.from_stack(stack.layers[: depth or len(stack.layers)], stack.input_shape, num_classes)


def label_subset(y: Tensor, n: int, num_classes: int, seed: int) -> Tensor:
    """Indices of ``n`` labelled examples, stratified by class, drawn with ``seed``."""
    if n > len(y):
        raise ConfigError(f"--labels {n} is larger than the {len(y)} labelled training examples; use at most {len(y)}")
    if n < num_classes:
        raise ConfigError(
            f"--labels {n} is smaller than the number of classes ({num_classes}); use at least {num_classes}"
        )
    if n == len(y):
        return torch.arange(len(y))
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(np.arange(len(y)), train_size=n, random_state=seed, stratify=y.numpy())
    return torch.from_numpy(np.sort(idx))


def finetune_epochs(n_labels: int, batch_size: int, steps: int) -> int:
    """Epochs that give at least ``steps`` optimizer steps on ``n_labels`` examples."""
    return max(1, math.ceil(steps / max(1, math.ceil(n_labels / batch_size))))


def _own_parts(d: Any) -> dict[str, tuple[Tensor, Tensor]]:
    """The train/val/test parts of an opened reader (FolderData, ArrayData, TableData) as tensors; labels are
    -1 for unlabelled data."""
    parts = {}
    for part in ("train", "val", "test"):
        rows = d.split.part(part)
        batch = d.batches(part, max(len(rows), 1), shuffle=False).rows(rows)
        x = batch["x"]
        parts[part] = (x, batch["y"] if "y" in batch else torch.full((len(x),), -1, dtype=torch.long))
    return parts


def load_stack_data(data: Any, stats: dict | None = None, progress: bool = True) -> Any:
    """The data ``pretrain`` and ``finetune`` read, as an :class:`~reprlab.data.images.ImageData` of tensors:
    a built-in image dataset by name, or your own (``data.name`` a folder, .npz/.npy or .csv/.tsv, split and
    read with ``data.reader_options()``). A table is standardised with ``stats`` when given (a stack's, so
    fine-tuning sees its rows as the stack's first layer did), else with its training rows' statistics.
    Own data records its reader's ``record()`` in ``info["data_source"]``; ``data.limit`` keeps the first N
    training rows."""
    from ..data import load_images
    from ..data.images import ImageData
    from ..data.spec import parse_data_spec

    spec = parse_data_spec(data.name, "images", data.reader_options())
    if spec.kind == "builtin":
        return load_images(data.name, data.data_dir, data.val_size, data.limit)
    from ..data.spec import open_data

    over: dict[str, Any] = {}
    if spec.kind == "folder":
        over["progress"] = progress
    if spec.kind == "table" and stats:
        over["stats"] = dict(stats)
    d = open_data(spec, **over)
    parts = _own_parts(d)
    if data.limit:
        parts["train"] = tuple(t[: data.limit] for t in parts["train"])
    return ImageData(
        spec.text,
        parts["train"],
        parts["val"],
        parts["test"],
        tuple(d.classes),
        spec.describe(),
        {"data_source": d.record(), "reader": d},
    )


def check_same_data(d: Any, saved: dict | None, where: str | Path) -> None:
    """DataError (one line) when ``d`` (from :func:`load_stack_data`) is not the data a stack recorded in
    ``saved`` (its ``data_source``): its content fingerprint changed."""
    from ..errors import DataError

    now = data_record(d)
    old = (saved or {}).get("fingerprint")
    if old and (now or {}).get("fingerprint") != old:
        raise DataError(
            f"{d.name} changed since {where} was started on it (fingerprint {(now or {}).get('fingerprint')} != "
            f"recorded {old}); restore that data, or start a new stack"
        )


def data_record(d: Any) -> dict[str, Any] | None:
    """What a stack or a fine-tuning run records of its own data (path, fingerprint, split, statistics)."""
    return getattr(d, "info", {}).get("data_source")


@dataclass
class FinetuneSetup:
    """What ``reprlab finetune`` trains on: the stack's dataset and the labelled examples drawn from it."""

    stack_dir: Path
    data: Any  # ImageData
    idx: Tensor  # the labelled training examples
    labels: int
    depth: int | None
    random_init: bool

    def describe(self) -> str:
        how = "random init" if self.random_init else "from the stack"
        what = "images" if len(self.data.input_shape) == 3 else "rows"
        return (
            f"data: {self.data.name}: fine-tuning on {self.labels} labelled {what} ({how}), "
            f"testing on {len(self.data.test[0])}"
        )


def prepare_finetune(
    stack: Stack,
    stack_dir: str | Path,
    data: Any,
    labels: int | None,
    depth: int | None,
    random_init: bool,
    seed: int,
    stats: dict | None = None,
) -> FinetuneSetup:
    """Load ``data`` (a DataConfig; its inputs must have the stack's shape, see :func:`load_stack_data`;
    ``stats``: the stack's table statistics) and draw ``labels`` labelled training examples (None: all),
    stratified, with ``seed``."""
    d = load_stack_data(data, stats)
    reader = d.info.get("reader")
    if reader is not None:
        reader.require_labels(2)  # one line naming the data and what to pass, before any training
    x, y = d.train
    if tuple(x.shape[1:]) != tuple(stack.input_shape):
        raise ConfigError(
            f"{d.name} inputs have shape {tuple(x.shape[1:])}, the stack was trained on {tuple(stack.input_shape)}"
        )
    n = len(y) if labels is None else labels
    idx = label_subset(y, n, d.num_classes, seed)
    return FinetuneSetup(Path(stack_dir), d, idx, n, depth, random_init)


def finetune_model(stack: Stack, setup: FinetuneSetup, seed: int):
    """The classifier to fine-tune: initialized from the stack's first ``depth`` layers, or (``random_init``)
    the same architecture from random weights, seeded alike."""
    seed_everything(seed)
    model = classifier_from_stack(stack, setup.data.num_classes, setup.depth)
    if setup.random_init:
        seed_everything(seed)
        model = create_model("stacked_classifier", **to_dict(model.config))
    return model


def run_finetune(
    setup: FinetuneSetup,
    model: nn.Module,
    trainer: TrainerConfig,
    data: Any,
    out: Path,
    resume: bool = False,
    overwrite: bool = False,
) -> tuple[bool, dict | None]:
    """Fine-tune ``model`` on ``setup``'s labelled examples into run directory ``out`` (``data``: the
    DataConfig it records), then test it. Returns (already finished, final metrics): a run resumed after it
    finished is left as it is (True, None); a DDP process other than global rank 0 gets (False, None)."""
    from .training import finish_run

    d, t0 = setup.data, time.perf_counter()
    run_config = {
        "model": "stacked_classifier",
        "model_config": to_dict(model.config),
        "trainer": to_dict(trainer),
        "data": to_dict(data),
        "finetune": {
            "stack": str(setup.stack_dir),
            "labels": setup.labels,
            "depth": setup.depth,
            "random_init": setup.random_init,
        },
    }
    if data_record(d) is not None:
        run_config["data_source"] = data_record(d)
    x, y = d.train
    val = TensorBatches({"x": d.val[0], "y": d.val[1]}, 1024, shuffle=False) if len(d.val[0]) else None
    train = TensorBatches({"x": x[setup.idx], "y": y[setup.idx]}, trainer.batch_size, seed=trainer.seed)
    test = TensorBatches({"x": d.test[0], "y": d.test[1]}, 1024, shuffle=False)
    with Trainer(trainer, out, run_config, resume=resume, overwrite=overwrite, description="finetune") as t:
        metrics = t.fit(model, train, val)
        if t.already_finished:
            return True, None
        extra = {"labels": setup.labels, "random_init": setup.random_init}
        return False, finish_run(t, model, test, metrics, t0, **extra)
