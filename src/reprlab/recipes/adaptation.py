"""Domain-adaptation recipes: train one method on a (source, target) pair, and run and score ``reprlab adapt``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..config import TrainerConfig
from .training import fit, seeded_model, train_model, write_final_metrics


def train_method(
    method: str,
    source,
    target,
    seed: int,
    epochs: int,
    batch: int,
    lr: float,
    progress: bool = False,
    threads: int = 0,
    optimizer: str = "adam",
    lr_schedule: str = "constant",
    callbacks=(),
    **model,
):
    """Train one method on (source, target) ImageData in memory; returns the model in eval mode.

    The source's labels and the target's images train it: the target's labels go into the batches only for
    the ``target-oracle`` ceiling (every other method gets the target's images alone, so nothing in its
    training can read a target label). ``callbacks``: functions ``fn(epoch, model)`` run after each epoch
    (e.g. to score or keep each epoch's weights); ``model`` sets the model's other config fields."""
    from ..data.domains import PairedBatches
    from ..models.adaptation import model_name

    kw = dict(input_shape=source.input_shape, num_classes=source.num_classes, **model)
    if method == "pseudo-label":
        kw["num_target"] = len(target.train[0])
    m = seeded_model(model_name(method), seed, **kw)
    cfg = TrainerConfig(
        epochs=epochs,
        batch_size=batch,
        lr=lr,
        seed=seed,
        progress=progress,
        tensorboard=False,
        threads=threads,
        optimizer=optimizer,
        lr_schedule=lr_schedule,
    )
    t_train = target.train if method == "target-oracle" else (target.train[0], None)
    fit(
        m,
        PairedBatches(source.train, t_train, batch, seed=seed),
        cfg,
        callbacks=callbacks,
        description=f"{method} seed={seed}",
    )
    return m.eval()


def correct(model, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """One bool per example: whether the model's prediction is right."""
    return (model.predict_proba(x).argmax(1) == y).numpy()


def accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    """The share of examples ``x`` the model classifies as ``y``."""
    return float(correct(model, x, y).mean())


def run_adaptation(method: str, source: str, target: str, tree: dict, out: Path, overwrite: bool = False) -> dict:
    """``reprlab adapt``: train ``method``'s model on the ``source:target`` pair that ``tree["data"]`` names,
    into run directory ``out``, then score it (:func:`score_adaptation`); returns the final metrics."""
    from ..data.domains import is_own
    from ..errors import ConfigError
    from ..models.adaptation import model_name

    if method == "target-oracle" and (is_own(source) or is_own(target)):
        raise ConfigError(
            "target-oracle trains on the target's labels, and the labels of your own target are read only by the "
            f"final test; for that ceiling train a classifier on the target itself (reprlab train classifier --data "
            f"{target})"
        )
    t0 = time.perf_counter()
    model, trainer, task, metrics = train_model(model_name(method), tree, out, overwrite=overwrite)
    with trainer:
        return score_adaptation(model, task, metrics, out, method, source, target, t0)


def score_adaptation(
    model, task, metrics: dict, out: Path, method: str, source: str, target: str, started: float
) -> dict:
    """Target and source test accuracy of an adaptation run (on Fashion-M also by test photo), written to
    RUN/final_metrics.json with the last epoch's metrics; returns what was written. A target without labels
    (your own) has no target accuracy; its labels, when it has them, are read here for the first time.

    ``task``: the ``domains`` task data the run trained on; ``started``: the run's ``time.perf_counter()``."""
    from ..data.domains import accuracy_by_photo, fashion_m_photo_names
    from ..train.engine import evaluate_model

    scores = {}
    if task.test is not None:
        scores["target/test_acc"] = evaluate_model(model, task.test)["acc"]
    if task.extras.get("source_test") is not None:
        scores["source/test_acc"] = evaluate_model(model, task.extras["source_test"])["acc"]
    if task.extras.get("target_val") is not None:  # reported beside the test, never used to choose
        scores["target/val_acc"] = evaluate_model(model, task.extras["target_val"])["acc"]
    seconds = time.perf_counter() - started
    by_photo = {}
    if target == "fashion-m":
        x_te, y_te = task.extras["pair"][1].test
        by_photo = accuracy_by_photo(correct(model, x_te, y_te), fashion_m_photo_names("test", len(x_te)))
    scores.update({f"target/test_acc/{photo}": acc for photo, acc in by_photo.items()})
    return write_final_metrics(out, metrics, {}, seconds, method=method, source=source, target=target, **scores)


__all__ = ["train_method", "correct", "accuracy", "run_adaptation", "score_adaptation"]
