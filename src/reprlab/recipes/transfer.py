"""Transfer recipes: a classifier from a pre-trained backbone, probe and classical heads, and a transfer run.

``reprlab transfer`` is :func:`prepare_transfer` then :func:`run_transfer`; the transfer study uses
:func:`target_model`, :func:`classical_head` and :func:`accuracy` directly.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..config import TrainerConfig, to_dict
from ..errors import CheckpointError, ConfigError, DataError

HEADS = ("linear", "svm", "logreg")


def target_model(
    source,
    num_classes: int,
    mode: str,
    unfreeze: int = 1,
    backbone_lr_mult: float = 0.1,
    standardize_on: Tensor | None = None,
    probe_on: tuple[Tensor, Tensor] | None = None,
    **config: Any,
):
    """A classifier for ``num_classes`` classes in ``mode``, with ``source``'s backbone weights (None: random init).

    ``source`` is a trained :class:`~reprlab.models.classifier.Classifier`; ``config`` sets other fields
    (backbone, width, input_shape) when there is no source. ``standardize_on``: target training images
    whose pre-trained features set the head's input standardization (not in mode scratch).
    ``probe_on``: labelled target images (x, y); the new head starts as a logistic regression fit on their
    (standardized) pre-trained features instead of at random - "linear probe, then fine-tune" (LP-FT), so
    the first steps of fine-tuning do not push a random head's errors into the backbone. Not in mode scratch.
    """
    from ..registry import build_config, create_model

    values = dict(config)
    if source is not None:
        values = {**dataclasses.asdict(source.config), **values}
    values.update(num_classes=num_classes, mode=mode, unfreeze=unfreeze, backbone_lr_mult=backbone_lr_mult)
    build_config("classifier", values)  # checks ranges (unfreeze against the blocks) before building
    model = create_model("classifier", **values)
    if source is not None and mode != "scratch":
        model.backbone.load_state_dict(source.backbone.state_dict())
        if standardize_on is not None:
            model.standardize_features(standardize_on)
        if probe_on is not None:
            probe_head(model, *probe_on)
    return model


def probe_head(model, x: Tensor, y: Tensor) -> None:
    """Set ``model``'s head to a multinomial logistic regression (C=1), fit on what the head sees of images
    ``x`` with labels ``y``."""
    from sklearn.linear_model import LogisticRegression

    f = ((model.features(x) - model.feature_mean) / model.feature_std).numpy()
    lr = LogisticRegression(max_iter=1000).fit(f, y.numpy())
    coef, bias = torch.as_tensor(lr.coef_, dtype=torch.float32), torch.as_tensor(lr.intercept_, dtype=torch.float32)
    if coef.shape[0] == 1:  # two classes: scikit-learn keeps one row (the logit of class 1)
        coef, bias = torch.cat([-coef / 2, coef / 2]), torch.cat([-bias / 2, bias / 2])
    if coef.shape != model.head.weight.shape:
        raise DataError(
            f"the labelled images hold {coef.shape[0]} of the {model.head.weight.shape[0]} classes; "
            "a probe head needs every class"
        )
    with torch.no_grad():
        model.head.weight.copy_(coef)
        model.head.bias.copy_(bias)


def classical_head(kind: str, f_tr: np.ndarray, y_tr: np.ndarray, seed: int = 0):
    """A scikit-learn SVM (RBF, C=10) or logistic regression, fit on standardized features (a fitted pipeline)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    clf = (
        SVC(C=10.0, gamma="scale", random_state=seed)
        if kind == "svm"
        else LogisticRegression(max_iter=1000, random_state=seed)
    )
    return make_pipeline(StandardScaler(), clf).fit(f_tr, y_tr)


def classical_head_accuracy(
    kind: str, f_tr: np.ndarray, y_tr: np.ndarray, f_te: np.ndarray, y_te: np.ndarray, seed: int = 0
) -> float:
    """Test accuracy of a scikit-learn SVM (RBF) or logistic regression fit on standardized features."""
    return float(classical_head(kind, f_tr, y_tr, seed).score(f_te, y_te))


def accuracy(model, x: Tensor, y: Tensor) -> float:
    """The share of images ``x`` whose predicted class is ``y``."""
    return float((model.predict(x) == y).float().mean())


def load_source(
    source: str | None,
    weights: str | None,
    backbone: str | None,
    width: int | None,
    strict: bool,
    mode: str,
    input_shape: tuple[int, ...],
    min_match: float = 0.9,
):
    """(source classifier or None, model config values when there is no source, a line saying what was loaded).

    ``source``: a run of ``reprlab train classifier``; ``weights``: a torchvision-format state dict, or
    ``"imagenet"`` (torchvision's ResNet-18 from the torch hub cache). Neither: a random backbone, which
    only mode scratch accepts. ``backbone``/``width``/``input_shape`` describe the backbone when there is no run.
    """
    from ..models.pretrained import imagenet_resnet18_state_dict, load_backbone_weights, read_state_dict
    from ..registry import create_model
    from ..train.checkpoint import load_run, read_run_config

    if source and weights:
        raise ConfigError("give --source RUN or --weights PATH, not both")
    if source:
        saved = read_run_config(source)
        if saved["model"] != "classifier":
            raise CheckpointError(
                f"{source} holds a {saved['model']} run; --source needs a run of 'reprlab train classifier'"
            )
        if backbone or width:
            raise ConfigError("--backbone/--width come from the --source run; drop them")
        backbone_name = (saved.get("model_config") or {}).get("backbone")  # read_run_config checked the sections
        return load_run(source), {}, f"backbone: {backbone_name} from {source}"
    values = {"backbone": backbone or ("resnet18" if weights else "small_cnn"), "input_shape": input_shape}
    if width:
        values["width"] = width
    if not weights:
        if mode != "scratch":
            raise ConfigError(
                f"mode {mode} needs a pre-trained backbone: pass --source RUN or --weights PATH (or use --mode scratch)"
            )
        return None, values, f"backbone: {values['backbone']}, random init"
    src = create_model("classifier", **values)
    if weights == "imagenet":
        if values["backbone"] != "resnet18":
            raise ConfigError("--weights imagenet is torchvision's ResNet-18; use --backbone resnet18")
        state, where = imagenet_resnet18_state_dict(), "torchvision ImageNet ResNet-18"
    else:
        state, where = read_state_dict(weights), weights
    rep = load_backbone_weights(src, state, strict=strict, where=where, min_match=min_match)
    return src, {}, f"weights from {where}: {rep.summary()}"


@dataclasses.dataclass
class TransferSetup:
    """A transfer run ready to train: the target data (fitted to the backbone's input) and the model."""

    model: Any
    loaded: str  # what the backbone is: one line
    target: str  # the target dataset's name
    num_classes: int
    x_tr: Tensor
    y_tr: Tensor
    x_va: Tensor | None
    y_va: Tensor
    x_te: Tensor
    y_te: Tensor
    data_dir: str | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)  # how it was asked for: config.json "transfer"

    def describe(self) -> str:
        return (
            f"target: {self.target}, {len(self.x_tr)} labelled training images, {len(self.x_te)} test images, "
            f"{self.num_classes} classes"
        )


def prepare_transfer(
    target: str,
    data_dir: str | None,
    mode: str,
    seed: int,
    source: str | None = None,
    weights: str | None = None,
    backbone: str | None = None,
    width: int | None = None,
    strict: bool = True,
    min_match: float = 0.9,
    unfreeze: int = 1,
    backbone_lr_mult: float = 0.1,
    labels_per_class: int | None = None,
    resize: bool = False,
    probe: bool = False,
) -> TransferSetup:
    """Load the ``target`` images and the backbone (see :func:`load_source`), fit the images to the backbone's
    input (``resize``), keep ``labels_per_class`` labelled images per class (drawn with ``seed``), and build the
    classifier for ``mode`` (its head starts as a linear probe with ``probe``)."""
    from ..data import load_images
    from ..data.transfer import fit_input, label_budget
    from ..train.engine import seed_everything

    d = load_images(target, data_dir)
    src, values, loaded = load_source(
        source, weights, backbone, width, strict, mode, tuple(d.input_shape), min_match=min_match
    )
    want = tuple(src.config.input_shape) if src is not None else tuple(values["input_shape"])
    x_tr, y_tr = fit_input(d.train[0], want, resize, d.name), d.train[1]
    x_va = fit_input(d.val[0], want, resize, d.name) if len(d.val[0]) else None
    x_te = fit_input(d.test[0], want, resize, d.name)
    if labels_per_class:
        x_tr, y_tr = label_budget(x_tr, y_tr, labels_per_class, seed, d.num_classes, d.classes)
    seed_everything(seed)
    model = target_model(
        src,
        d.num_classes,
        mode,
        unfreeze,
        backbone_lr_mult,
        standardize_on=x_tr,
        probe_on=(x_tr, y_tr) if probe else None,
        **values,
    )
    info = {
        "source": source,
        "weights": weights,
        "mode": mode,
        "labels_per_class": labels_per_class,
        "resize": resize,
        "loaded": loaded,
    }
    return TransferSetup(
        model, loaded, d.name, d.num_classes, x_tr, y_tr, x_va, d.val[1], x_te, d.test[1], data_dir, info
    )


def run_transfer(
    setup: TransferSetup,
    trainer: TrainerConfig,
    out: Path,
    overwrite: bool = False,
    head: str = "linear",
    features: str = "pooled",
) -> dict | None:
    """Train ``setup``'s model into run directory ``out`` and return its final metrics (also in
    final_metrics.json; None in a DDP process other than global rank 0).

    ``head`` svm or logreg fits that scikit-learn classifier on the frozen ``features`` instead: a run of
    its own, whose config.json names the model the features came from."""
    from ..data.batches import TensorBatches
    from ..io import atomic_write_text
    from ..train.engine import Trainer
    from ..train.rundir import OpenRun
    from .training import finish_run, write_final_metrics

    model, t0 = setup.model, time.perf_counter()
    if head != "linear":
        f_tr = model.features(setup.x_tr, kind=features).numpy()
        f_te = model.features(setup.x_te, kind=features).numpy()
        acc = classical_head_accuracy(head, f_tr, setup.y_tr.numpy(), f_te, setup.y_te.numpy(), trainer.seed)
        run = OpenRun(out, overwrite=overwrite)
        try:  # a run of its own: config.json names the model whose frozen features the head was fit on
            config = {"model": "classifier", "model_config": to_dict(model.config), "transfer": {"head": head}}
            atomic_write_text(out / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
            result = write_final_metrics(
                out,
                {},
                {"acc": acc},
                time.perf_counter() - t0,
                head=head,
                features=features,
                train_size=len(setup.x_tr),
            )
            run.commit()
        finally:
            run.close()
        return result

    run_config = {
        "model": "classifier",
        "model_config": to_dict(model.config),
        "trainer": to_dict(trainer),
        "data": {"name": setup.target, "data_dir": setup.data_dir, "val_size": len(setup.y_va) or 0},
        "transfer": setup.info,
    }
    train = TensorBatches({"x": setup.x_tr, "y": setup.y_tr}, trainer.batch_size, shuffle=True, seed=trainer.seed)
    val = TensorBatches({"x": setup.x_va, "y": setup.y_va}, 1024, shuffle=False) if setup.x_va is not None else None
    test = TensorBatches({"x": setup.x_te, "y": setup.y_te}, 1024, shuffle=False)
    mode = model.config.mode
    with Trainer(trainer, out, run_config, overwrite=overwrite, description=f"transfer {mode}") as t:
        metrics = t.fit(model, train, val)
        return finish_run(t, model, test, metrics, t0)


__all__ = [
    "HEADS",
    "target_model",
    "probe_head",
    "classical_head",
    "classical_head_accuracy",
    "accuracy",
    "load_source",
    "TransferSetup",
    "prepare_transfer",
    "run_transfer",
]
