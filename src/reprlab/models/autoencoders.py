"""Plain autoencoders: an MLP and a convolutional one, with MSE or BCE reconstruction losses.

The encoder maps x (B, *input_shape) to a code z (B, code_dim); the decoder maps z back to
x_hat in data space. Both losses are averaged per value, so their numbers compare across sizes.

``input_shape`` is the data's: (C, H, W) for images (any channel count), (D,) for a table of D
features (the MLP only). ``output=sigmoid`` (the default) keeps x_hat in (0, 1) and, like
``loss=bce``, needs data in [0, 1]; standardized tables take ``loss=mse`` with ``output=identity``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import check
from ..registry import register_model
from .base import ReprModel, check_conv_shape, check_unit_interval, conv_down, conv_up, mlp


@dataclass(frozen=True)
class AutoencoderConfig:
    # (C, H, W) images or (D,) features; set from the data
    input_shape: tuple[int, ...] = (1, 28, 28)
    # size of the code (the bottleneck)
    code_dim: int = 32
    # encoder layer sizes; the decoder mirrors them
    hidden: tuple[int, ...] = (512, 256)
    # reconstruction loss: mse, or bce for data in [0, 1]
    loss: Literal["mse", "bce"] = "mse"
    output: Literal["sigmoid", "identity"] = "sigmoid"  # identity for unbounded data (MSE only)

    def __post_init__(self) -> None:
        check(self.code_dim >= 1, f"model.code_dim must be >= 1, got {self.code_dim}")
        check(all(h >= 1 for h in self.hidden), f"model.hidden sizes must be >= 1, got {self.hidden}")
        check(not (self.loss == "bce" and self.output == "identity"), "model.loss=bce needs model.output=sigmoid")


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

    @torch.no_grad()
    def anomaly_score(self, x: Tensor) -> Tensor:
        """Per-example reconstruction error of the clean input, (B, *input_shape) -> (B,): the training loss
        (MSE, or BCE with ``loss=bce``) averaged over the example's values; higher means less like the
        training data (``reprlab score``)."""
        logits = self.decode_logits(self.encode(x))
        if self.config.output == "sigmoid":
            check_unit_interval(
                x,
                f"model.loss={self.config.loss} with model.output=sigmoid",
                "score data on the scale the model was trained on",
            )
        if self.config.loss == "bce":
            err = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        else:
            err = (self._out(logits) - x).pow(2)
        return err.flatten(1).mean(1)

    def reconstruction_loss(self, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        if self.config.output == "sigmoid":  # a sigmoid cannot reach values outside (0, 1): refuse, never fit badly
            check_unit_interval(
                target,
                f"model.loss={self.config.loss} with model.output=sigmoid",
                "for standardized or other unbounded data set --model.loss=mse --model.output=identity",
            )
        x_hat = self._out(logits)
        mse = F.mse_loss(x_hat, target)
        if self.config.loss == "bce":
            bce = F.binary_cross_entropy_with_logits(logits, target)
            return {"loss": bce, "bce": bce.detach(), "mse": mse.detach()}
        return {"loss": mse, "mse": mse.detach()}


@register_model("ae_mlp", config=AutoencoderConfig)
class MLPAutoencoder(_ReconstructionMixin, ReprModel):
    """Fully connected autoencoder: flatten -> hidden layers -> code -> mirrored layers -> data shape.

    Any ``input_shape`` works: images (C, H, W) are flattened to C*H*W features, tables are (D,)."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__(config)
        d = math.prod(config.input_shape)
        self.encoder = mlp([d, *config.hidden, config.code_dim])
        self.decoder = mlp([config.code_dim, *reversed(config.hidden), d])

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x.flatten(1))  # (B, D) -> (B, code_dim)

    def decode_logits(self, z: Tensor) -> Tensor:
        return self.decoder(z).view(-1, *self.config.input_shape)  # (B, *input_shape)


@dataclass(frozen=True)
class ConvAutoencoderConfig:
    # (C, H, W) images; set from the data
    input_shape: tuple[int, ...] = (1, 28, 28)
    # size of the code (the bottleneck)
    code_dim: int = 32
    # channels of the stride-2 conv stages; the decoder mirrors them
    channels: tuple[int, ...] = (32, 64)
    # reconstruction loss: mse, or bce for data in [0, 1]
    loss: Literal["mse", "bce"] = "mse"
    # sigmoid for data in [0, 1]; identity for unbounded data (with loss=mse)
    output: Literal["sigmoid", "identity"] = "sigmoid"

    def __post_init__(self) -> None:
        check(self.code_dim >= 1, f"model.code_dim must be >= 1, got {self.code_dim}")
        check(len(self.channels) >= 1 and all(c >= 1 for c in self.channels), "model.channels must be positive")
        check_conv_shape("ae_conv", self.input_shape, self.channels)
        check(not (self.loss == "bce" and self.output == "identity"), "model.loss=bce needs model.output=sigmoid")


@register_model("ae_conv", config=ConvAutoencoderConfig)
class ConvAutoencoder(_ReconstructionMixin, ReprModel):
    """Convolutional autoencoder: stride-2 convs down, a linear code, transposed convs up.

    With the default ``channels=(32, 64)``, for x (B, C, H, W):
    encoder (B, C, H, W) -> (B, 32, H/2, W/2) -> (B, 64, H/4, W/4) -> flatten -> (B, code_dim);
    decoder (B, code_dim) -> (B, 64, H/4, W/4) -> (B, 32, H/2, W/2) -> (B, C, H, W) logits.
    Halving rounds up and the output is cropped, so any H, W >= 4 builds (28 -> 14 -> 7; 32 -> 16 -> 8;
    64 -> 32 -> 16). Larger images keep a larger feature map; add a stage (``channels=32,64,128``) to
    shrink it.
    """

    def __init__(self, config: ConvAutoencoderConfig):
        super().__init__(config)
        layers, self.feat_shape = conv_down(config.input_shape, config.channels)  # (C', h, w)
        self.encoder = nn.Sequential(*layers, nn.Flatten(), nn.Linear(math.prod(self.feat_shape), config.code_dim))
        up = conv_up(config.channels, config.input_shape[0])
        self.fc = nn.Linear(config.code_dim, math.prod(self.feat_shape))
        self.decoder = up

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)  # (B, C, H, W) -> (B, code_dim)

    def decode_logits(self, z: Tensor) -> Tensor:
        h = F.relu(self.fc(z)).view(-1, *self.feat_shape)  # (B, C', h, w)
        out = self.decoder(h)  # (B, C, h * 2**stages, w * 2**stages), at least (H, W)
        _, H, W = self.config.input_shape
        return out[:, :, :H, :W]  # (B, C, H, W)
