"""Unsupervised validators for domain adaptation: score a trained model without reading a target label.

In unsupervised domain adaptation there is no target label to choose an epoch, a learning rate or a
method with, and choosing with one changes which method looks best (Musgrave, Belongie & Lim,
"Benchmarking validation methods for unsupervised domain adaptation", 2022). A validator scores a
model from what does exist: held-out *labelled source* data and *unlabelled target* inputs.

Every score follows scikit-learn's convention, **higher is better**, so any of them can rank models:

================  =====================================================================  =========================
``source-acc``    accuracy on held-out labelled source data                              the usual default
``entropy``       minus the mean entropy of the target predictions (confident is better)  Morerio et al., ICLR 2018
``im``            information maximisation H(mean p) − mean H(p) on the target          Shi & Sha, ICML 2012
``dev``           minus DEV, the importance-weighted source-validation loss              You et al., ICML 2019
================  =====================================================================  =========================

A validator is a function of :class:`ValidationOutputs`, the model's outputs on the source
validation set (with its labels) and on the target inputs. That record has no field for a target
label, so no validator can read one. :func:`model_outputs` fills it from a model with
``encode(x) -> features`` and ``head(features) -> logits`` (the domain adaptation models), or from
any ``model(x) -> logits`` (then DEV, which needs features, is not available); :func:`score_validators`
does both steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch
from scipy.special import log_softmax, softmax
from torch import Tensor


@dataclass(frozen=True)
class ValidationOutputs:
    """What a validator may read: outputs on labelled source validation data and on unlabelled target inputs.

    ``logits_s`` (n_s, K) and ``y_s`` (n_s,) class indices for the source validation set; ``logits_t``
    (n_t, K) for the target; ``features_s`` / ``features_t`` (n, D) the penultimate features, for DEV.
    """

    logits_s: np.ndarray
    y_s: np.ndarray
    logits_t: np.ndarray
    features_s: np.ndarray | None = None
    features_t: np.ndarray | None = None


@torch.no_grad()
def _forward(model, x: Tensor, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
    logits, feats = [], []
    split = hasattr(model, "encode") and hasattr(model, "head")
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size]
        if split:
            f = model.encode(xb)  # (B, D)
            feats.append(f.double().cpu().numpy())
            logits.append(model.head(f).double().cpu().numpy())
        else:
            logits.append(model(xb).double().cpu().numpy())
    if not logits:
        raise ValueError("a validator needs at least one example in each of the source and target sets")
    return np.concatenate(logits), (np.concatenate(feats) if split else None)


def model_outputs(
    model, source_val: tuple[Tensor, Tensor], target: Tensor, batch_size: int = 2048
) -> ValidationOutputs:
    """Run ``model`` (in eval mode, without gradients) on the source validation set and the target inputs."""
    x_s, y_s = source_val
    was = model.training
    model.eval()
    try:
        logits_s, f_s = _forward(model, x_s, batch_size)
        logits_t, f_t = _forward(model, target, batch_size)
    finally:
        model.train(was)
    return ValidationOutputs(logits_s, np.asarray(y_s, dtype=np.int64), logits_t, f_s, f_t)


# ----------------------------------------------------------------------------- the formulas
def prediction_entropy(probs: np.ndarray) -> float:
    """Mean entropy (nats) of the rows of ``probs`` (n, K): 0 for one-hot rows, log K for uniform ones."""
    p = np.asarray(probs, dtype=np.float64)
    return float(-(p * np.log(np.clip(p, 1e-300, None))).sum(1).mean())


def information_maximization(probs: np.ndarray) -> float:
    """H(mean p) − mean H(p): the mutual information between an input and its predicted class.

    High when each prediction is confident (small H(p)) and the classes are used evenly (large
    H(mean p)): log K for confident, balanced predictions; 0 when every row is the same, e.g.
    uniform. Shi & Sha (ICML 2012) and Gomes, Krause & Perona (NeurIPS 2010); as a validator in
    Musgrave et al. (2022), who find it among the most reliable.
    """
    p = np.asarray(probs, dtype=np.float64)
    return prediction_entropy(p.mean(0, keepdims=True)) - prediction_entropy(p)


def density_ratio(
    features_s: np.ndarray, features_t: np.ndarray, folds: int = 5, seed: int = 0, C: float = 1.0
) -> np.ndarray:
    """Importance weights w(x) ≈ p_target(x) / p_source(x) at each source row (n_s,).

    A logistic-regression domain classifier on standardized features gives P(target | x); then
    w = (n_s / n_t) · P(target | x) / P(source | x). Each source row's weight comes from a
    classifier fitted without that row (``folds``-fold cross-fitting), so a row's own loss does not
    shape its weight. When the classifier cannot tell the domains apart, every w is about 1.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    f_s = np.asarray(features_s, dtype=np.float64).reshape(len(features_s), -1)
    f_t = np.asarray(features_t, dtype=np.float64).reshape(len(features_t), -1)
    n_s, n_t = len(f_s), len(f_t)
    k = min(folds, n_s, n_t)
    if k < 2:
        raise ValueError(f"DEV needs at least 2 source and 2 target examples, got {n_s} and {n_t}")
    x = np.concatenate([f_s, f_t])
    d = np.r_[np.zeros(n_s), np.ones(n_t)]  # 1 = target
    p_t = np.empty(n_s)
    for train, held in StratifiedKFold(k, shuffle=True, random_state=seed).split(x, d):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000)).fit(x[train], d[train])
        held_s = held[held < n_s]
        p_t[held_s] = clf.predict_proba(x[held_s])[:, 1]
    p_t = np.clip(p_t, 1e-6, 1 - 1e-6)
    return (n_s / n_t) * p_t / (1 - p_t)


def deep_embedded_validation_risk(losses: np.ndarray, weights: np.ndarray) -> float:
    """DEV (You et al., "Towards accurate model selection in deep unsupervised domain adaptation", ICML 2019).

    The importance-weighted source-validation loss mean(w·l), an unbiased estimate of the target
    risk, with the control variate w (whose mean is 1 in expectation) to cut its variance:
    DEV = mean(w·l) + η·mean(w) − η with η = −Cov(w·l, w) / Var(w). Lower is better. With equal
    weights it is the plain mean loss.
    """
    l_ = np.asarray(losses, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    wl = w * l_
    var = w.var(ddof=1) if len(w) > 1 else 0.0
    eta = -np.cov(wl, w, ddof=1)[0, 1] / var if var > 0 else 0.0
    return float(wl.mean() + eta * w.mean() - eta)


# ----------------------------------------------------------------------------- validators (higher is better)
def source_accuracy(out: ValidationOutputs) -> float:
    """Accuracy on the held-out labelled source set."""
    return float((out.logits_s.argmax(1) == out.y_s).mean())


def entropy_score(out: ValidationOutputs) -> float:
    """Minus the mean entropy of the target predictions (Morerio, Cavazza & Murino, ICLR 2018)."""
    return -prediction_entropy(softmax(out.logits_t, axis=1))


def im_score(out: ValidationOutputs) -> float:
    """:func:`information_maximization` of the target predictions."""
    return information_maximization(softmax(out.logits_t, axis=1))


def dev_score(out: ValidationOutputs, folds: int = 5, seed: int = 0) -> float:
    """Minus :func:`deep_embedded_validation_risk` of the source-validation cross-entropy, weighted by
    :func:`density_ratio` of the features."""
    if out.features_s is None or out.features_t is None:
        raise ValueError("DEV needs the model's features: the model must have encode(x) and head(features)")
    losses = -log_softmax(out.logits_s, axis=1)[np.arange(len(out.y_s)), out.y_s]
    return -deep_embedded_validation_risk(losses, density_ratio(out.features_s, out.features_t, folds, seed))


VALIDATORS: dict[str, Callable[[ValidationOutputs], float]] = {
    "source-acc": source_accuracy,
    "entropy": entropy_score,
    "im": im_score,
    "dev": dev_score,
}


def score_validators(
    model, source_val: tuple[Tensor, Tensor], target: Tensor, names: Iterable[str] = tuple(VALIDATORS)
) -> dict[str, float]:
    """Each named validator's score (higher is better) of ``model``; the model runs once on each set."""
    names = list(names)
    unknown = [n for n in names if n not in VALIDATORS]
    if unknown:
        raise ValueError(f"unknown validator {unknown[0]!r}; choose from: {', '.join(VALIDATORS)}")
    out = model_outputs(model, source_val, target)
    return {n: VALIDATORS[n](out) for n in names}


__all__ = [
    "ValidationOutputs",
    "model_outputs",
    "prediction_entropy",
    "information_maximization",
    "density_ratio",
    "deep_embedded_validation_risk",
    "source_accuracy",
    "entropy_score",
    "im_score",
    "dev_score",
    "VALIDATORS",
    "score_validators",
]
