"""Variational autoencoders (Kingma & Welling, 2014): an MLP and a convolutional version.

The encoder gives q(z|x) = N(μ, diag σ²) through (μ, log σ²); z = μ + σ ⊙ ε with ε ~ N(0, I);
the prior is N(0, I); the decoder gives p(x|z), Bernoulli (logits) or Gaussian (mean, with a
learned per-pixel log σ). The loss is the negative ELBO per example, in nats:

    -ELBO = -E_q[log p(x|z)] + KL(q(z|x) ‖ p(z)),   KL in closed form,

with the KL scaled by β · warm-up (a linear ramp from 0 over ``kl_warmup`` steps).
``binarize=True`` draws x ~ Bernoulli(pixel intensities) afresh at every training step
(dynamic binarization); evaluation binarizes with a fixed seed so numbers are repeatable.

``input_shape`` is the data's: (C, H, W) images with any channel count, or (D,) table rows (MLP only).
The Bernoulli likelihood needs data in [0, 1]; standardized tables take ``likelihood=gaussian``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import check
from ..errors import ConfigError
from ..registry import register_model
from .base import ReprModel, check_conv_shape, check_unit_interval, conv_down, conv_up, mlp

LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) per row, summed over the last dimension: (B, L) -> (B,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def gaussian_log_prob(z: Tensor, mu: Tensor | float = 0.0, logvar: Tensor | float = 0.0) -> Tensor:
    """log N(z; μ, diag σ²) summed over the last dimension."""
    logvar = torch.as_tensor(logvar, dtype=z.dtype, device=z.device)
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


def binarize(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """x ~ Bernoulli(x): a binary image whose pixel i is 1 with probability x_i."""
    return torch.bernoulli(x, generator=generator)


@dataclass(frozen=True)
class _VAECommon:
    # (C, H, W) images or (D,) features; set from the data
    input_shape: tuple[int, ...] = (1, 28, 28)
    # size of the latent code z
    latent_dim: int = 40
    # bernoulli for data in [0, 1]; gaussian for unbounded data
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    beta: float = 1.0  # weight of the KL term (beta-VAE when != 1)
    kl_warmup: int = 0  # optimizer steps over which the KL weight ramps linearly from 0 to beta
    binarize: bool = False  # dynamic binarization of [0, 1] data (Bernoulli likelihood only)

    def _check_common(self) -> None:
        check(self.latent_dim >= 1, f"model.latent_dim must be >= 1, got {self.latent_dim}")
        check(self.beta >= 0, f"model.beta must be >= 0, got {self.beta}")
        check(self.kl_warmup >= 0, f"model.kl_warmup must be >= 0, got {self.kl_warmup}")
        check(
            not (self.binarize and self.likelihood != "bernoulli"),
            "model.binarize=true needs model.likelihood=bernoulli",
        )


class _VAE(ReprModel):
    """What both VAEs share, given ``encoder_params(x) -> (μ, log σ²)`` and ``decode_logits(z)``."""

    can_sample = True

    def __init__(self, config):
        super().__init__(config)
        d = math.prod(config.input_shape)
        self.kl_weight = config.beta if config.kl_warmup == 0 else 0.0
        if config.likelihood == "gaussian":
            self.log_sigma = nn.Parameter(torch.zeros(d))  # per-pixel decoder std, learned

    # ---------------------------------------------------------------- pieces
    def encode(self, x: Tensor) -> Tensor:
        """The posterior mean μ(x): (B, latent_dim)."""
        return self.encoder_params(x)[0]

    def decoder_mean(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits) if self.config.likelihood == "bernoulli" else logits

    def decode(self, z: Tensor) -> Tensor:
        """The mean of p(x|z): Bernoulli probabilities, or the Gaussian mean. (B, C, H, W)."""
        return self.decoder_mean(self.decode_logits(z))

    def forward(self, x: Tensor) -> Tensor:
        return self.reconstruct(x)

    def reconstruct(self, x: Tensor) -> Tensor:
        """Decode the posterior mean: the usual VAE reconstruction."""
        return self.decode(self.encode(x))

    def log_likelihood(self, logits: Tensor, x: Tensor) -> Tensor:
        """log p(x|z) per example, summed over pixels: (N, ...) -> (N,)."""
        if self.config.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").flatten(1).sum(1)
        log_sigma = self.log_sigma.clamp(-6, 3)
        var_term = ((x - logits).flatten(1) * torch.exp(-log_sigma)).pow(2)
        return -(0.5 * var_term + log_sigma + 0.5 * LOG_2PI).sum(1)

    def prepare(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Check the data for the likelihood, and binarize it if configured."""
        if self.config.likelihood == "bernoulli":
            check_unit_interval(
                x,
                "model.likelihood=bernoulli",
                "for standardized or other real-valued data set --model.likelihood=gaussian",
            )
            if self.config.binarize:
                if generator is None and not self.training:
                    generator = torch.Generator(device=x.device).manual_seed(0)  # repeatable evaluation
                x = binarize(x, generator)
        return x

    # ---------------------------------------------------------------- training
    def on_train_step_start(self, step: int, total_steps: int) -> None:
        c = self.config
        self.kl_weight = c.beta * min(1.0, (step + 1) / c.kl_warmup) if c.kl_warmup else c.beta

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = self.prepare(batch["x"])
        b = x.shape[0]
        mu, logvar = self.encoder_params(x)  # (B, L) each
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.decode_logits(z)  # (B, C, H, W)
        if self.config.likelihood == "bernoulli":
            # summed over pixels, averaged over the batch (cheaper than per-example terms)
            recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / b
        else:
            recon = -self.log_likelihood(logits, x).mean()
        kl = gaussian_kl(mu, logvar).mean()
        neg_elbo = recon + kl
        loss = neg_elbo if self.kl_weight == 1.0 else recon + self.kl_weight * kl
        return {"loss": loss, "neg_elbo": neg_elbo.detach(), "recon": recon.detach(), "kl": kl.detach()}

    # ---------------------------------------------------------------- likelihood
    def log_weights(self, x: Tensor, k: int) -> Tensor:
        """Importance log-weights log p(x, z_s) - log q(z_s|x) for s = 1..k: (k, B).

        ``x`` must already be prepared (binarized where the model binarizes).
        """
        mu, logvar = self.encoder_params(x)  # (B, L)
        eps = torch.randn(k, *mu.shape, dtype=mu.dtype, device=mu.device)
        z = mu + torch.exp(0.5 * logvar) * eps  # (k, B, L)
        log_q = gaussian_log_prob(z, mu, logvar)  # (k, B)
        log_p_z = gaussian_log_prob(z)  # (k, B)
        logits = self.decode_logits(z.reshape(-1, mu.shape[1]))  # (k*B, C, H, W)
        xk = x.unsqueeze(0).expand(k, *x.shape).reshape(-1, *x.shape[1:])
        log_p_x = self.log_likelihood(logits, xk).view(k, -1)  # (k, B)
        return log_p_x + log_p_z - log_q

    @torch.no_grad()
    def anomaly_score(self, x: Tensor, samples: int = 1, generator: torch.Generator | None = None) -> Tensor:
        """Per-example anomaly score in nats, (B, *input_shape) -> (B,): the negative ELBO
        -E_q[log p(x|z)] + KL(q(z|x) ‖ p(z)) estimated with one draw z ~ q(z|x) (``samples=1``), or the IWAE bound
        -log (1/K) Σ_k p(x, z_k) / q(z_k|x) with K = ``samples`` draws, which is tighter. Draws come from
        ``generator`` (default: seeded with 0, so a score is repeatable). Higher means less probable."""
        if samples < 1:
            raise ConfigError(f"samples must be >= 1, got {samples}")
        was = self.training
        self.eval()
        try:
            x = self.prepare(x)
            g = generator if generator is not None else torch.Generator(device=x.device).manual_seed(0)
            mu, logvar = self.encoder_params(x)  # (B, L)
            eps = torch.randn(samples, *mu.shape, generator=g, device=mu.device, dtype=mu.dtype)
            z = mu + torch.exp(0.5 * logvar) * eps  # (K, B, L)
            logits = self.decode_logits(z.reshape(-1, mu.shape[1]))  # (K*B, ...)
            xk = x.unsqueeze(0).expand(samples, *x.shape).reshape(-1, *x.shape[1:])
            log_px = self.log_likelihood(logits, xk).view(samples, -1)  # (K, B)
            if samples == 1:
                return -log_px[0] + gaussian_kl(mu, logvar)
            log_w = log_px + gaussian_log_prob(z) - gaussian_log_prob(z, mu, logvar)  # (K, B)
            return -(torch.logsumexp(log_w, 0) - math.log(samples))
        finally:
            self.train(was)

    def test_metrics(self, test_source, nll_samples: int = 0, **_) -> dict[str, float]:
        """Test negative ELBO and (with ``nll_samples`` = k > 0) the IWAE NLL, both in nats."""
        from ..metrics.nll import iwae_nll

        if nll_samples < 0:
            raise ConfigError(f"nll_samples must be >= 0, got {nll_samples}")
        x = torch.cat([b["x"] for b in test_source.epoch(0)])
        out = {"neg_elbo_iwae1": iwae_nll(self, x, 1)}
        if nll_samples:
            out["nll"] = iwae_nll(self, x, nll_samples)
            out["nll_samples"] = float(nll_samples)
        return out

    # ---------------------------------------------------------------- generation
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` images decoded from z ~ N(0, I): the decoder's mean, (n, *input_shape).

        Bernoulli means are in [0, 1] (for any channel count); Gaussian means are not clamped."""
        p = next(self.parameters())
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(p)
        with torch.no_grad():
            return self.decode(z)

    def interpolate(self, x_a: Tensor, x_b: Tensor, steps: int = 8) -> Tensor:
        """Decode the straight line between the posterior means of ``x_a`` and ``x_b``.

        Images (C, H, W) give (steps, C, H, W); batches (B, C, H, W) give (B, steps, C, H, W).
        """
        if steps < 2:
            raise ConfigError(f"interpolation needs steps >= 2, got {steps}")
        single = x_a.dim() == len(self.config.input_shape)
        if single:
            x_a, x_b = x_a.unsqueeze(0), x_b.unsqueeze(0)
        with torch.no_grad():
            za, zb = self.encode(x_a), self.encode(x_b)  # (B, L)
            t = torch.linspace(0, 1, steps, dtype=za.dtype, device=za.device).view(1, steps, 1)
            z = (1 - t) * za.unsqueeze(1) + t * zb.unsqueeze(1)  # (B, steps, L)
            out = self.decode(z.reshape(-1, za.shape[1])).view(za.shape[0], steps, *self.config.input_shape)
        return out[0] if single else out

    def latent_walk(self, n: int, generator: torch.Generator | None = None, steps: int = 8) -> Tensor:
        """``n`` images: rows of ``steps`` decoded along lines between random prior draws."""
        steps = max(2, min(steps, n))
        rows = -(-n // steps)
        p = next(self.parameters())
        ends = torch.randn(rows, 2, self.config.latent_dim, generator=generator).to(p)
        t = torch.linspace(0, 1, steps).to(p).view(1, steps, 1)
        z = (1 - t) * ends[:, :1] + t * ends[:, 1:]  # (rows, steps, L)
        with torch.no_grad():
            return self.decode(z.reshape(-1, self.config.latent_dim))[:n]


class GatedLinear(nn.Module):
    """A gated dense layer (Dauphin et al., 2017): (W x + b) ⊙ σ(V x + c), both halves from one matmul."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.linear = nn.Linear(n_in, 2 * n_out)

    def forward(self, x: Tensor) -> Tensor:
        h, gate = self.linear(x).chunk(2, dim=-1)
        return h * torch.sigmoid(gate)


def gated_mlp(sizes: list[int]) -> nn.Sequential:
    """Gated dense layers of the given sizes, one after another."""
    return nn.Sequential(*(GatedLinear(a, b) for a, b in zip(sizes[:-1], sizes[1:])))


@dataclass(frozen=True)
class VAEConfig(_VAECommon):
    # encoder layer sizes; the decoder mirrors them
    hidden: tuple[int, ...] = (512, 256)
    gated: bool = False  # gated hidden layers, h = (W x + b) * sigmoid(V x + c), as in the VampPrior set-up

    def __post_init__(self) -> None:
        self._check_common()
        check(
            len(self.hidden) >= 1 and all(h >= 1 for h in self.hidden),
            f"model.hidden sizes must be >= 1, got {self.hidden}",
        )


@register_model("vae_mlp", config=VAEConfig)
class MLPVAE(_VAE):
    """MLP VAE: flatten -> hidden layers -> (μ, log σ²); z -> mirrored layers -> p(x|z).

    Any ``input_shape`` works: images (C, H, W) are flattened to C*H*W values, table rows are (D,).

    ``gated=True`` makes every hidden layer a gated dense layer (no ReLU), the layer type of the
    VampPrior paper's VAEs (Tomczak & Welling, 2018), whose set-up the quality target comes from.
    """

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        d = math.prod(config.input_shape)
        if config.gated:
            self.encoder = gated_mlp([d, *config.hidden])
            self.decoder = nn.Sequential(
                gated_mlp([config.latent_dim, *reversed(config.hidden)]), nn.Linear(config.hidden[0], d)
            )
        else:
            self.encoder = mlp([d, *config.hidden], last_act=nn.ReLU())
            self.decoder = mlp([config.latent_dim, *reversed(config.hidden), d])
        self.to_params = nn.Linear(config.hidden[-1], 2 * config.latent_dim)  # μ and log σ² in one matmul

    def encoder_params(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.to_params(self.encoder(x.flatten(1))).chunk(2, dim=1)  # (B, L) each
        return mu, logvar

    def decode_logits(self, z: Tensor) -> Tensor:
        return self.decoder(z).view(-1, *self.config.input_shape)  # (B, *input_shape)


@dataclass(frozen=True)
class ConvVAEConfig(_VAECommon):
    # channels of the stride-2 conv stages; the decoder mirrors them
    channels: tuple[int, ...] = (32, 64)

    def __post_init__(self) -> None:
        self._check_common()
        check(len(self.channels) >= 1 and all(c >= 1 for c in self.channels), "model.channels must be positive")
        check_conv_shape("vae_conv", self.input_shape, self.channels)


@register_model("vae_conv", config=ConvVAEConfig)
class ConvVAE(_VAE):
    """Convolutional VAE: stride-2 convs -> (μ, log σ²); z -> linear -> transposed convs -> p(x|z).

    With the default ``channels=(32, 64)``, for x (B, C, H, W):
    encoder (B, C, H, W) -> (B, 32, H/2, W/2) -> (B, 64, H/4, W/4) -> flatten -> (B, 2 latent_dim) = (μ, log σ²);
    decoder (B, latent_dim) -> (B, 64, H/4, W/4) -> (B, 32, H/2, W/2) -> (B, C, H, W) logits or means.
    Halving rounds up and the output is cropped, so any H, W >= 4 builds (28, 32, 64, ...), with any C.
    """

    def __init__(self, config: ConvVAEConfig):
        super().__init__(config)
        layers, self.feat_shape = conv_down(config.input_shape, config.channels)  # (C', h, w)
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.to_params = nn.Linear(math.prod(self.feat_shape), 2 * config.latent_dim)
        self.fc = nn.Linear(config.latent_dim, math.prod(self.feat_shape))
        self.decoder = conv_up(config.channels, config.input_shape[0])

    def encoder_params(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.to_params(self.encoder(x)).chunk(2, dim=1)  # (B, L) each
        return mu, logvar

    def decode_logits(self, z: Tensor) -> Tensor:
        h = F.relu(self.fc(z)).view(-1, *self.feat_shape)  # (B, C', h, w)
        _, H, W = self.config.input_shape
        return self.decoder(h)[:, :, :H, :W]  # (B, C, H, W)


__all__ = ["gaussian_kl", "gaussian_log_prob", "binarize", "MLPVAE", "ConvVAE"]
