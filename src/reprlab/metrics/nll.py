"""Test log-likelihood of latent-variable models by importance sampling (IWAE; Burda et al., 2016).

    log p(x) ≥ L_k = E[ log (1/k) Σ_s p(x, z_s) / q(z_s|x) ],   z_s ~ q(z|x),

with L_1 the ELBO and L_k rising toward log p(x) as k grows. The estimate uses log-sum-exp in
chunks of samples, so memory stays bounded and k = 5000 runs on a CPU. Results are in nats.

A model provides ``log_weights(x, k) -> (k, B)`` (log p(x, z_s) - log q(z_s|x)) and, optionally,
``prepare(x, generator)`` (checks and, e.g., binarizes the data with a fixed seed).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..progress import stage


def iwae_log_likelihood(model, x: Tensor, k: int, max_rows: int = 16384) -> Tensor:
    """L_k for each row of ``x`` (already prepared): (B,), in nats.

    The k samples are drawn in chunks of at most ``max_rows // B`` and combined with a running
    log-sum-exp, so memory is bounded by about ``max_rows`` decoded images.
    """
    if k < 1:
        from ..errors import ConfigError

        raise ConfigError(f"the IWAE bound needs k >= 1 samples, got {k}")
    chunk = max(1, max_rows // max(1, x.shape[0]))
    total = None
    for start in range(0, k, chunk):
        lw = model.log_weights(x, min(chunk, k - start))  # (n, B)
        part = torch.logsumexp(lw, dim=0)
        total = part if total is None else torch.logaddexp(total, part)
    return total - math.log(k)


def iwae_nll(
    model, x: Tensor, k: int = 5000, batch_size: int | None = None, seed: int = 0, max_rows: int = 16384
) -> float:
    """Mean negative IWAE bound -L_k over the examples in ``x`` (nats); k = 1 gives the negative ELBO.

    The data go through ``model.prepare`` with a generator seeded by ``seed`` (fixed binarization),
    and the importance samples come from a forked RNG seeded by ``seed``, so the number is repeatable.
    """
    was = model.training
    model.eval()
    total = 0.0
    # many examples per batch at small k; few at large k (each holds k decoded images)
    batch_size = batch_size or max(1, min(len(x), max_rows // min(k, max_rows)))
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if hasattr(model, "prepare"):
            x = model.prepare(x, torch.Generator(device=x.device).manual_seed(seed))
        with stage(f"IWAE NLL (k={k})", total=len(x), unit="examples") as bar:
            for i in range(0, len(x), batch_size):
                total += float(iwae_log_likelihood(model, x[i : i + batch_size], k, max_rows).sum())
                bar.advance(len(x[i : i + batch_size]))
    model.train(was)
    return -total / len(x)


__all__ = ["iwae_log_likelihood", "iwae_nll"]
