"""Plain autoencoders: an MLP and a convolutional one, with MSE or BCE reconstruction losses.

The encoder maps x (B, C, H, W) to a code z (B, code_dim); the decoder maps z back to
x_hat in data space. Both losses are averaged per pixel, so their numbers compare across sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import _check
from ..registry import register_model
from .base import ReprModel, check_unit_interval, conv_down, conv_up, mlp


@dataclass(frozen=True)
class AutoencoderConfig:
    input_shape: tuple[int, ...] = (1, 28, 28)
    code_dim: int = 32
    hidden: tuple[int, ...] = (512, 256)
    loss: Literal["mse", "bce"] = "mse"
    output: Literal["sigmoid", "identity"] = "sigmoid"  # identity for unbounded data (MSE only)

    def __post_init__(self) -> None:
        _check(self.code_dim >= 1, f"model.code_dim must be >= 1, got {self.code_dim}")
        _check(all(h >= 1 for h in self.hidden), f"model.hidden sizes must be >= 1, got {self.hidden}")
        _check(not (self.loss == "bce" and self.output == "identity"), "model.loss=bce needs model.output=sigmoid")


class _ReconstructionMixin:
    """What every autoencoder shares, given ``encode(x)`` and ``decode_logits(z)``."""

    config: AutoencoderConfig

    def decode(self, z: Tensor) -> Tensor:
        return self._out(self.decode_logits(z))

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        x = batch["x"]
        return self.reconstruction_loss(self.decode_logits(self.encode(x)), x)

    def _out(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits) if self.config.output == "sigmoid" else logits

    def reconstruction_loss(self, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        x_hat = self._out(logits)
        mse = F.mse_loss(x_hat, target)
        if self.config.loss == "bce":
            check_unit_interval(target, "model.loss=bce")
            bce = F.binary_cross_entropy_with_logits(logits, target)
            return {"loss": bce, "bce": bce.detach(), "mse": mse.detach()}
        return {"loss": mse, "mse": mse.detach()}


@register_model("ae_mlp", config=AutoencoderConfig)
class MLPAutoencoder(_ReconstructionMixin, ReprModel):
    """Fully connected autoencoder: flatten -> hidden layers -> code -> mirrored layers -> image."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__(config)
        d = math.prod(config.input_shape)
        self.encoder = mlp([d, *config.hidden, config.code_dim])
        self.decoder = mlp([config.code_dim, *reversed(config.hidden), d])

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x.flatten(1))  # (B, code_dim)

    def decode_logits(self, z: Tensor) -> Tensor:
        return self.decoder(z).view(-1, *self.config.input_shape)  # (B, C, H, W)


@dataclass(frozen=True)
class ConvAutoencoderConfig:
    input_shape: tuple[int, ...] = (1, 28, 28)
    code_dim: int = 32
    channels: tuple[int, ...] = (32, 64)
    loss: Literal["mse", "bce"] = "mse"
    output: Literal["sigmoid", "identity"] = "sigmoid"

    def __post_init__(self) -> None:
        _check(self.code_dim >= 1, f"model.code_dim must be >= 1, got {self.code_dim}")
        _check(len(self.input_shape) == 3, f"ae_conv needs images (C, H, W), got input_shape {self.input_shape}")
        _check(len(self.channels) >= 1 and all(c >= 1 for c in self.channels), "model.channels must be positive")
        _check(not (self.loss == "bce" and self.output == "identity"), "model.loss=bce needs model.output=sigmoid")


@register_model("ae_conv", config=ConvAutoencoderConfig)
class ConvAutoencoder(_ReconstructionMixin, ReprModel):
    """Convolutional autoencoder: stride-2 convs down, a linear code, transposed convs up."""

    def __init__(self, config: ConvAutoencoderConfig):
        super().__init__(config)
        layers, self.feat_shape = conv_down(config.input_shape, config.channels)
        self.encoder = nn.Sequential(*layers, nn.Flatten(), nn.Linear(math.prod(self.feat_shape), config.code_dim))
        up = conv_up(config.channels, config.input_shape[0])
        self.fc = nn.Linear(config.code_dim, math.prod(self.feat_shape))
        self.decoder = up

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # (B, code_dim)

    def decode_logits(self, z: Tensor) -> Tensor:
        h = F.relu(self.fc(z)).view(-1, *self.feat_shape)  # (B, C', h, w)
        out = self.decoder(h)  # (B, C, >=H, >=W)
        _, H, W = self.config.input_shape
        return out[:, :, :H, :W]
