"""Regularized autoencoders: sparse (KL penalty on mean sigmoid activations) and denoising.

Both are MLP autoencoders (see ``autoencoders.py``) with one extra term or one extra step:

* ``sae_mlp``: sigmoid codes h in (0, 1); loss = reconstruction + λ Σ_j KL(ρ ‖ ρ̂_j), where
  ρ̂_j is unit j's mean activation over the batch; optionally + λ₁ · mean_i Σ_j |h_ij|.
* ``dae_mlp``: the input is corrupted (Gaussian noise, masking, salt-and-pepper) before
  encoding and the model is trained to reconstruct the clean input.

Like ``ae_mlp`` they take any ``input_shape``: images (C, H, W) or table rows (D,). Standardized tables
need ``loss=mse`` with ``output=identity``; there masking sets a value to 0, its column's mean, and
Gaussian noise of std ``noise`` is in units of the column's std (salt-and-pepper's 0/1 suits [0, 1] data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from ..config import check
from ..registry import register_model
from .autoencoders import MLPAutoencoder

Corruption = Literal["gaussian", "masking", "salt_pepper"]


def kl_sparsity(rho_hat: Tensor, rho: float, eps: float = 1e-6) -> Tensor:
    """Σ_j KL(ρ ‖ ρ̂_j) between Bernoulli(ρ) and Bernoulli(ρ̂_j); ``rho_hat`` is (code_dim,)."""
    r = rho_hat.clamp(eps, 1 - eps)
    return (rho * torch.log(rho / r) + (1 - rho) * torch.log((1 - rho) / (1 - r))).sum()


def corrupt(x: Tensor, kind: str, level: float, generator: torch.Generator | None = None) -> Tensor:
    """A corrupted copy of ``x`` (values in [0, 1]).

    ``gaussian``: x + level · N(0, 1) (level is the noise std); ``masking``: each value set to 0
    with probability ``level``; ``salt_pepper``: each value replaced with probability ``level``
    by 0 or 1 (equally likely).
    """
    if not 0.0 <= level <= 1.0:
        from ..errors import ConfigError

        raise ConfigError(f"noise level must be in [0, 1], got {level}")
    if level == 0:
        return x.clone()
    if kind == "gaussian":
        return x + level * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    if kind == "masking":
        return x * (u >= level)
    if kind == "salt_pepper":
        salt = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) < 0.5
        return torch.where(u < level, salt.to(x.dtype), x)
    from ..errors import ConfigError

    raise ConfigError(f"unknown corruption {kind!r}; choose gaussian, masking or salt_pepper")


@dataclass(frozen=True)
class SparseAutoencoderConfig:
    # (C, H, W) images or (D,) features; set from the data
    input_shape: tuple[int, ...] = (1, 28, 28)
    # size of the code (the bottleneck)
    code_dim: int = 64
    # encoder layer sizes; the decoder mirrors them
    hidden: tuple[int, ...] = (512,)
    rho: float = 0.05  # target mean activation of each code unit
    sparsity_weight: float = 0.01  # λ on Σ_j KL(ρ ‖ ρ̂_j); the reconstruction is a per-pixel mean
    l1_weight: float = 0.0  # optional L1 activity penalty on the codes
    # reconstruction loss: mse, or bce for data in [0, 1]
    loss: Literal["mse", "bce"] = "mse"
    # sigmoid for data in [0, 1]; identity for unbounded data (with loss=mse)
    output: Literal["sigmoid", "identity"] = "sigmoid"

    def __post_init__(self) -> None:
        check(0 < self.rho < 1, f"model.rho must be in (0, 1), got {self.rho}")
        check(self.sparsity_weight >= 0, f"model.sparsity_weight must be >= 0, got {self.sparsity_weight}")
        check(self.l1_weight >= 0, f"model.l1_weight must be >= 0, got {self.l1_weight}")
        check(self.code_dim >= 1, f"model.code_dim must be >= 1, got {self.code_dim}")
        check(all(h >= 1 for h in self.hidden), f"model.hidden sizes must be >= 1, got {self.hidden}")
        check(not (self.loss == "bce" and self.output == "identity"), "model.loss=bce needs model.output=sigmoid")


@register_model("sae_mlp", config=SparseAutoencoderConfig)
class SparseAutoencoder(MLPAutoencoder):
    """Sparse MLP autoencoder: sigmoid codes with a KL(ρ ‖ ρ̂) sparsity penalty (and optional L1)."""

    def __init__(self, config: SparseAutoencoderConfig):
        super().__init__(config)
        self.encoder.append(nn.Sigmoid())  # codes in (0, 1), read as firing probabilities

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = batch["x"]
        h = self.encode(x)  # (B, code_dim)
        out = self.reconstruction_loss(self.decode_logits(h), x)
        rho_hat = h.mean(0)  # (code_dim,)
        sparsity = kl_sparsity(rho_hat, self.config.rho)
        total = out["loss"] + self.config.sparsity_weight * sparsity
        if self.config.l1_weight:
            l1 = h.abs().sum(1).mean()
            total = total + self.config.l1_weight * l1
            out["l1"] = l1.detach()
        out.update(
            loss=total,
            recon=out["loss"].detach(),
            sparsity_kl=sparsity.detach(),
            mean_activation=rho_hat.mean().detach(),
        )
        return out


@dataclass(frozen=True)
class DenoisingAutoencoderConfig:
    # (C, H, W) images or (D,) features; set from the data
    input_shape: tuple[int, ...] = (1, 28, 28)
    # size of the code (the bottleneck)
    code_dim: int = 64
    # encoder layer sizes; the decoder mirrors them
    hidden: tuple[int, ...] = (512,)
    # input noise: gaussian, masking or salt-and-pepper
    corruption: Corruption = "gaussian"
    noise: float = 0.3  # Gaussian std, or the probability a value is masked / salted
    # reconstruction loss: mse, or bce for data in [0, 1]
    loss: Literal["mse", "bce"] = "mse"
    # sigmoid for data in [0, 1]; identity for unbounded data (with loss=mse)
    output: Literal["sigmoid", "identity"] = "sigmoid"

    def __post_init__(self) -> None:
        check(0 <= self.noise <= 1, f"model.noise must be in [0, 1], got {self.noise}")
        check(self.code_dim >= 1, f"model.code_dim must be >= 1, got {self.code_dim}")
        check(all(h >= 1 for h in self.hidden), f"model.hidden sizes must be >= 1, got {self.hidden}")
        check(not (self.loss == "bce" and self.output == "identity"), "model.loss=bce needs model.output=sigmoid")


@register_model("dae_mlp", config=DenoisingAutoencoderConfig)
class DenoisingAutoencoder(MLPAutoencoder):
    """Denoising MLP autoencoder: encodes a corrupted input, reconstructs the clean one."""

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = batch["x"]
        # corrupt only while training: evaluation reports the clean reconstruction error
        x_in = corrupt(x, self.config.corruption, self.config.noise) if self.training else x
        return self.reconstruction_loss(self.decode_logits(self.encode(x_in)), x)


__all__ = ["kl_sparsity", "corrupt", "SparseAutoencoder", "DenoisingAutoencoder"]
