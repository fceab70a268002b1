"""Distances between two sets of images, computed in the features of a network.

* ``frechet_distance(a, b)``: ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}) between the Gaussians
  fitted to two feature sets (N, D). In the features of reprlab's Fashion-MNIST classifier it is
  reported as "FD-classifier"; it is FID only in Inception-v3 features.
* ``kernel_distance(a, b)``: KID (Binkowski et al. 2018), the unbiased MMD^2 with the cubic polynomial
  kernel k(x, y) = (x.y / D + 1)^3, as mean and std over random subsets.
* ``inception_fid(real, fake, weights_path)``: real Inception FID through torchmetrics (which needs the
  optional ``torch-fidelity`` package) with a local copy of the standard weights file; never downloads.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = [
    "gaussian_stats",
    "frechet_from_stats",
    "frechet_distance",
    "kernel_distance",
    "inception_fid",
    "check_weights_file",
]


def _f64(x) -> Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x).detach().to("cpu", torch.float64)


def gaussian_stats(features) -> tuple[Tensor, Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64."""
    f = _f64(features)
    if f.dim() != 2 or f.shape[0] < 2:
        raise ConfigError(f"Fréchet distance needs features of shape (N >= 2, D), got {tuple(f.shape)}")
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


def _sqrt_psd(s: Tensor) -> Tensor:
    w, v = torch.linalg.eigh(s)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_from_stats(mu1: Tensor, s1: Tensor, mu2: Tensor, s2: Tensor) -> float:
    """Fréchet distance between N(mu1, s1) and N(mu2, s2).

    Tr((S1 S2)^{1/2}) is computed as the sum of square roots of the eigenvalues of the symmetric
    matrix S1^{1/2} S2 S1^{1/2} (same spectrum), which stays real and stable for singular covariances.
    """
    mu1, s1, mu2, s2 = map(_f64, (mu1, s1, mu2, s2))
    r = _sqrt_psd(s1)
    m = r @ s2 @ r
    tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    d = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * tr_sqrt
    return float(d.clamp_min(0))


def frechet_distance(a, b) -> float:
    """Fréchet distance between the Gaussians fitted to feature sets a (N, D) and b (M, D)."""
    return frechet_from_stats(*gaussian_stats(a), *gaussian_stats(b))


def kernel_distance(a, b, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID: mean and std over ``subsets`` random subsets of the unbiased polynomial-kernel MMD^2."""
    x, y = _f64(a), _f64(b)
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ConfigError(
            f"KID needs two feature sets (N, D) with the same D, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ConfigError("KID needs at least 2 samples in each set")
    d = x.shape[1]
    g = torch.Generator().manual_seed(seed)
    vals = []
    for _ in range(subsets):
        xs = x[torch.randperm(len(x), generator=g)[:m]]
        ys = y[torch.randperm(len(y), generator=g)[:m]]
        kxx, kyy, kxy = (xs @ xs.T / d + 1) ** 3, (ys @ ys.T / d + 1) ** 3, (xs @ ys.T / d + 1) ** 3
        off = m * (m - 1)
        mmd = (kxx.sum() - kxx.diagonal().sum()) / off + (kyy.sum() - kyy.diagonal().sum()) / off - 2 * kxy.mean()
        vals.append(float(mmd))
    v = np.asarray(vals)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def check_weights_file(path: str | Path, what: str = "feature-extractor weights") -> Path:
    """``path`` as a Path if it is a non-empty readable file; else a ConfigError that says what is wrong."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{what} file {p} does not exist; point to a local copy of the weights file")
    if not p.is_file():
        raise ConfigError(f"{what} path {p} is not a file; point to the weights file itself")
    try:
        with open(p, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise ConfigError(f"{what} file {p} cannot be read ({e.strerror}); check its permissions") from None
    if not head:
        raise ConfigError(f"{what} file {p} is empty; download the weights file again")
    return p


def check_inception_fid(weights_path: str | Path) -> Path:
    """Everything real Inception FID needs, checked before any expensive work: the optional torch-fidelity
    package, and a weights file that holds only tensors (read with ``weights_only=True``, so a pickle with
    code in it is refused here and never reaches torch-fidelity's own loader)."""
    p = check_weights_file(weights_path, "Inception weights")
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        raise ConfigError(
            "Inception FID needs the optional package torch-fidelity: pip install torch-fidelity"
        ) from None
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses anyway
            warnings.simplefilter("ignore")
            torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a file that is not a plain tensor archive
        raise ConfigError(
            f"Inception weights file {p} is not a weights file torch can read safely ({e.__class__.__name__}); "
            "it must be torch-fidelity's pt_inception-2015-12-05 weights"
        ) from None
    return p


def _to_rgb(x: Tensor) -> Tensor:
    """(B, C, H, W) in [0, 1] -> (B, 3, H, W): grey images are repeated over three channels."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def inception_fid(
    real: Tensor,
    fake: Tensor,
    weights_path: str | Path | None = None,
    extractor: nn.Module | None = None,
    batch_size: int = 200,
) -> float:
    """FID of image sets (N, C, H, W) in [0, 1], with torchmetrics' ``FrechetInceptionDistance``.

    ``weights_path``: a local copy of the standard FID Inception-v3 weights (torch-fidelity's
    ``pt_inception-2015-12-05`` file); needs ``pip install torch-fidelity``. ``extractor`` replaces the
    Inception network by any module mapping (B, 3, H, W) floats in [0, 1] to (B, D) (used by the tests).
    """
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError as e:  # pragma: no cover - torchmetrics is a dependency
        raise ConfigError(f"Inception FID needs torchmetrics ({e})") from None
    if extractor is None:
        if weights_path is None:
            raise ConfigError(
                "Inception FID needs --inception-weights PATH (a local copy of the FID Inception-v3 weights)"
            )
        p = check_inception_fid(weights_path)
        try:
            metric = FrechetInceptionDistance(feature=2048, normalize=True, feature_extractor_weights_path=str(p))
        except Exception as e:  # a wrong or corrupt file fails inside torch.load / load_state_dict
            raise ConfigError(
                f"Inception weights file {p} is not usable ({e.__class__.__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}); "
                "it must be torch-fidelity's pt_inception-2015-12-05 weights"
            ) from None
    else:
        extractor.eval()
        metric = FrechetInceptionDistance(feature=extractor, normalize=True, input_img_size=(3, *real.shape[2:]))
    with torch.no_grad():
        for imgs, is_real in ((real, True), (fake, False)):
            for i in range(0, len(imgs), batch_size):
                metric.update(_to_rgb(imgs[i : i + batch_size].float()), real=is_real)
        return float(metric.compute())
