"""The IWAE bound (metrics/nll.py) on a model whose log p(x) is known exactly.

The model is linear-Gaussian with a 1-D latent: z ~ N(0, 1), x | z ~ N(a z + b, s²), so
p(x) = N(b, a² + s²) and the posterior is Gaussian. The proposal q(z|x) is the posterior shifted and
widened, so the ELBO sits a known KL below log p(x) and L_k has room to climb.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from reprlab.metrics.nll import iwae_log_likelihood, iwae_nll

A, B, S = 1.5, 0.3, 0.5
SHIFT, Q_VAR = 0.3, 0.2  # q(z|x) = N(posterior mean + SHIFT, Q_VAR)


def log_normal(x, mean, var):
    return -0.5 * (math.log(2 * math.pi) + torch.log(torch.as_tensor(var, dtype=torch.float64)) + (x - mean) ** 2 / var)


def exact_log_px(x):
    return log_normal(x, B, A * A + S * S)


def posterior(x):
    var = S * S / (A * A + S * S)
    return A * (x - B) / (A * A + S * S), var


def exact_elbo(x):
    """log p(x) - KL(q(z|x) || p(z|x)), both Gaussians."""
    _, pvar = posterior(x)
    kl = 0.5 * (math.log(pvar / Q_VAR) + (Q_VAR + SHIFT**2) / pvar - 1)
    return exact_log_px(x) - kl


class LinearGaussian(nn.Module):
    """What nll.py calls: ``log_weights(x, k) -> (k, B)``; the noise comes from torch's global RNG,
    or from a fixed table ``noise`` (K, B) read in order, so two chunkings see the same samples."""

    def __init__(self, noise=None):
        super().__init__()
        self.noise, self.used = noise, 0

    def log_weights(self, x, k):
        if self.noise is None:
            eps = torch.randn(k, len(x), dtype=torch.float64)
        else:
            eps = self.noise[self.used : self.used + k]
            self.used += k
        pmean, _ = posterior(x)
        qmean = pmean + SHIFT
        z = qmean + math.sqrt(Q_VAR) * eps  # (k, B)
        return log_normal(z, 0.0, 1.0) + log_normal(x, A * z + B, S * S) - log_normal(z, qmean, Q_VAR)


def test_exact_log_px_by_quadrature():
    # the closed form the other tests trust, against numerical integration of p(z) p(x|z)
    x = torch.tensor([-2.0, 0.3, 1.7], dtype=torch.float64)
    z = torch.linspace(-12, 12, 200001, dtype=torch.float64)[:, None]
    joint = torch.exp(log_normal(z, 0.0, 1.0) + log_normal(x, A * z + B, S * S))  # (Z, 3)
    quad = torch.log(torch.trapezoid(joint, z[:, 0], dim=0))
    assert torch.allclose(quad, exact_log_px(x), atol=1e-9)


def data(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    return B + math.sqrt(A * A + S * S) * torch.randn(n, generator=g, dtype=torch.float64)


def test_l1_is_the_elbo_in_expectation():
    x = data(50)
    reps = 4000
    torch.manual_seed(0)
    l1 = iwae_log_likelihood(LinearGaussian(), x.repeat(reps), 1).view(reps, -1)  # (reps, 50)
    diff = (l1 - exact_elbo(x)).flatten()
    se = float(diff.std()) / math.sqrt(diff.numel())
    assert abs(float(diff.mean())) < 4 * se, (float(diff.mean()), se)
    # the ELBO is well below log p(x) here (KL 0.60 nats), so this test can tell the two apart
    kl = 0.5 * (math.log(0.1 / Q_VAR) + (Q_VAR + SHIFT**2) / 0.1 - 1)  # posterior variance S²/(A²+S²) = 0.1
    assert float((exact_log_px(x) - exact_elbo(x)).mean()) == pytest.approx(kl, abs=1e-12) and kl > 0.6
    assert float((l1.mean(0) - exact_log_px(x)).mean()) < -0.5


def test_lk_climbs_to_the_exact_log_likelihood():
    x = data(500)
    exact = float(exact_log_px(x).mean())
    # all 500 rows in one batch, so k >= 100 runs in chunks (max_rows 16384 over 500 rows: 32 samples a chunk;
    # iwae_nll's own batch size would keep k <= 16384 in one chunk)
    gaps = {k: exact + iwae_nll(LinearGaussian(), x, k, batch_size=500, seed=1) for k in (1, 10, 100, 1000, 3000)}
    # measured gaps log p(x) - L_k (nats), seeds 1-5: k=1 0.49-0.74 (the KL is 0.60), k=10 0.029-0.046,
    # k=100 -0.0004-0.0056, k=1000 -0.0003-0.0018, k=3000 -0.0007-0.0012
    assert gaps[1] > 0.3 and gaps[1] > gaps[10] > gaps[100], gaps  # rises with k
    assert all(g > -0.003 for g in gaps.values()), gaps  # a lower bound, up to Monte Carlo error
    assert abs(gaps[1000]) < 0.003 and abs(gaps[3000]) < 0.003, gaps  # and close at large k


def test_many_chunks_equal_one_chunk_on_the_same_samples():
    x = data(7, seed=3)
    k = 50
    noise = torch.randn(k, 7, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    one = iwae_log_likelihood(LinearGaussian(noise), x, k, max_rows=10**6)
    many = iwae_log_likelihood(LinearGaussian(noise), x, k, max_rows=7 * 3)  # chunks of 3, the last one of 2
    lw = LinearGaussian(noise).log_weights(x, k)
    direct = torch.logsumexp(lw, 0) - math.log(k)
    assert torch.allclose(one, direct, rtol=0, atol=1e-12)
    assert torch.allclose(many, direct, rtol=0, atol=1e-12)
    assert not np.allclose(direct.numpy(), lw.max(0).values.numpy() - math.log(k))  # the samples do differ
