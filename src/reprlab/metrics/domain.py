"""Domain adaptation criteria, each a small loss module ``(f_s, f_t) -> Tensor``, and the proxy A-distance.

* :class:`MaximumMeanDiscrepancyLoss`: multi-kernel Gaussian MMD² (Long et al., DAN, ICML 2015).
* :class:`CorrelationAlignmentLoss`: Deep CORAL (Sun & Saenko, ECCV-W 2016).
* :class:`DomainAdversarialLoss`: a domain discriminator behind gradient reversal (Ganin et al., JMLR 2016).
* :func:`proxy_a_distance`: 2(1 − 2ε) of a linear domain classifier (Ben-David et al., 2007).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _pairwise_sq_dists(a: Tensor, b: Tensor) -> Tensor:
    # (n, m) squared Euclidean distances, clamped at 0 against rounding
    return (a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1) - 2 * a @ b.T).clamp_min(0)


class MaximumMeanDiscrepancyLoss(nn.Module):
    """Multi-kernel Gaussian MMD² between two samples of features.

    The kernel is the mean of Gaussians ``exp(-d² / (2 σ_k²))`` with ``σ_k² = m_k · σ²``, where
    σ² is ``bandwidth`` if given, else the mean pairwise squared distance of the pooled sample
    (detached, as in DAN's multi-kernel family). ``unbiased=True`` drops the diagonal terms
    (the U-statistic, which is 0 in expectation for equal distributions and may be negative);
    the default V-statistic is >= 0 and exactly 0 for identical samples.
    """

    def __init__(
        self,
        multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
        bandwidth: float | None = None,
        unbiased: bool = False,
    ):
        super().__init__()
        self.multipliers = tuple(float(m) for m in multipliers)
        self.bandwidth = bandwidth
        self.unbiased = unbiased

    def kernel(self, a: Tensor, b: Tensor, sigma2: Tensor | float) -> Tensor:
        d2 = _pairwise_sq_dists(a, b)
        return sum(torch.exp(-d2 / (2 * m * sigma2)) for m in self.multipliers) / len(self.multipliers)

    def forward(self, f_s: Tensor, f_t: Tensor) -> Tensor:
        f_s, f_t = f_s.flatten(1), f_t.flatten(1)
        if self.bandwidth is not None:
            sigma2: Tensor | float = float(self.bandwidth)
        else:
            z = torch.cat([f_s, f_t]).detach()
            n = len(z)
            sigma2 = _pairwise_sq_dists(z, z).sum() / max(n * n - n, 1)
            sigma2 = sigma2.clamp_min(1e-8)
        k_ss, k_tt, k_st = self.kernel(f_s, f_s, sigma2), self.kernel(f_t, f_t, sigma2), self.kernel(f_s, f_t, sigma2)
        n, m = len(f_s), len(f_t)
        if self.unbiased:
            if n < 2 or m < 2:
                raise ValueError("the unbiased MMD needs at least 2 samples on each side")
            xx = (k_ss.sum() - k_ss.diagonal().sum()) / (n * (n - 1))
            yy = (k_tt.sum() - k_tt.diagonal().sum()) / (m * (m - 1))
        else:
            xx, yy = k_ss.mean(), k_tt.mean()
        return xx + yy - 2 * k_st.mean()


class CorrelationAlignmentLoss(nn.Module):
    """Deep CORAL: ``||C_s − C_t||_F² / (4 d²)`` with C the (n−1)-normalized feature covariances."""

    def forward(self, f_s: Tensor, f_t: Tensor) -> Tensor:
        f_s, f_t = f_s.flatten(1), f_t.flatten(1)
        d = f_s.shape[1]
        return (covariance(f_s) - covariance(f_t)).pow(2).sum() / (4 * d * d)


def covariance(f: Tensor) -> Tensor:
    """(d, d) sample covariance of rows ``f`` (n, d), normalized by n − 1."""
    c = f - f.mean(0, keepdim=True)
    return c.T @ c / max(len(f) - 1, 1)


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, coeff: float) -> Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return -ctx.coeff * grad, None


def grad_reverse(x: Tensor, coeff: float = 1.0) -> Tensor:
    """Identity on the way forward; multiplies the gradient by ``-coeff`` on the way back."""
    return _GradientReversal.apply(x, float(coeff))


class GradientReversalLayer(nn.Module):
    """:func:`grad_reverse` as a module; set ``coeff`` (λ) from a schedule."""

    def __init__(self, coeff: float = 1.0):
        super().__init__()
        self.coeff = coeff

    def forward(self, x: Tensor) -> Tensor:
        return grad_reverse(x, self.coeff)


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """The DANN schedule λ_p = 2 / (1 + exp(−γ p)) − 1 for training progress p in [0, 1]."""
    return 2.0 / (1.0 + math.exp(-gamma * float(progress))) - 1.0


class DomainAdversarialLoss(nn.Module):
    """Binary cross-entropy of a domain discriminator fed through gradient reversal.

    The discriminator learns to tell source (label 1) from target (label 0); the reversed
    gradient pushes the features the other way, scaled by ``grl.coeff`` (λ). ``forward``
    returns the loss; ``last_accuracy`` keeps the discriminator's accuracy on that batch.
    """

    def __init__(self, discriminator: nn.Module, coeff: float = 1.0):
        super().__init__()
        self.discriminator = discriminator
        self.grl = GradientReversalLayer(coeff)
        self.last_accuracy = torch.tensor(0.0)

    def forward(self, f_s: Tensor, f_t: Tensor) -> Tensor:
        f = self.grl(torch.cat([f_s, f_t]))
        logits = self.discriminator(f).squeeze(-1)  # (n_s + n_t,)
        target = torch.cat([torch.ones(len(f_s), device=f.device), torch.zeros(len(f_t), device=f.device)])
        self.last_accuracy = ((logits.detach() > 0).float() == target).float().mean()
        return F.binary_cross_entropy_with_logits(logits, target)


def proxy_a_distance(f_s: np.ndarray, f_t: np.ndarray, seed: int = 0) -> float:
    """2(1 − 2ε), ε the held-out error of a linear SVM telling source from target features.

    0 means the domains are indistinguishable; 2 means perfectly separable. Each domain is
    subsampled to the smaller size so chance is 50%; half is used for training, half for testing.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(seed)
    n = min(len(f_s), len(f_t))
    a = np.asarray(f_s)[rng.permutation(len(f_s))[:n]]
    b = np.asarray(f_t)[rng.permutation(len(f_t))[:n]]
    x = np.concatenate([a, b]).reshape(2 * n, -1)
    y = np.r_[np.ones(n), np.zeros(n)]
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.5, random_state=seed, stratify=y)
    clf = make_pipeline(StandardScaler(), LinearSVC(C=1.0, max_iter=5000, random_state=seed)).fit(x_tr, y_tr)
    err = 1.0 - float(clf.score(x_te, y_te))
    return 2.0 * (1.0 - 2.0 * min(err, 0.5))


__all__ = [
    "MaximumMeanDiscrepancyLoss",
    "CorrelationAlignmentLoss",
    "DomainAdversarialLoss",
    "GradientReversalLayer",
    "grad_reverse",
    "dann_lambda",
    "covariance",
    "proxy_a_distance",
]
