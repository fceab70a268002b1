"""The pieces of greedy layer-wise pre-training: one-layer autoencoders and the deep classifier.

Every layer of a stack, whatever trained it, encodes the same way: h = sigmoid(W v + c).
An AE/DAE layer (``dense_ae_layer``) learns W by reconstructing its input from h (a DAE
from a masked copy of it, Vincent et al. 2008); an RBM layer (``rbm``) learns it by
contrastive divergence. ``stacked_classifier`` is a sigmoid MLP with a softmax head; built
with :meth:`StackedClassifier.from_stack` it reproduces the stack's codes exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import check
from ..errors import ConfigError
from ..registry import register_model
from .base import ReprModel, check_unit_interval
from .rbm import RBM


@dataclass(frozen=True)
class AELayerConfig:
    # (C, H, W) images or (D,) features; set from the data
    input_shape: tuple[int, ...] = (1, 28, 28)
    # code size of this layer
    hidden: int = 256
    corruption: float = 0.0  # fraction of inputs set to 0 before encoding; > 0 makes it a DAE
    loss: Literal["bce", "mse"] = "bce"  # cross-entropy suits inputs in [0, 1] (pixels, sigmoid codes)
    output: Literal["sigmoid", "identity"] = "sigmoid"  # identity (with loss=mse) for standardized tables

    def __post_init__(self) -> None:
        check(self.hidden >= 1, f"model.hidden must be >= 1, got {self.hidden}")
        check(0.0 <= self.corruption < 1.0, f"model.corruption must be in [0, 1), got {self.corruption}")
        check(not (self.loss == "bce" and self.output == "identity"), "model.loss=bce needs model.output=sigmoid")


@register_model("dense_ae_layer", config=AELayerConfig)
class AELayer(ReprModel):
    """One sigmoid autoencoder layer for greedy stacking; masking noise (corruption > 0) makes it a DAE.

    Any ``input_shape`` works ((C, H, W) images or (D,) table rows). The code is always sigmoid; the
    reconstruction is sigmoid (data in [0, 1]) or, with ``output=identity``, linear (standardized data)."""

    def __init__(self, config: AELayerConfig):
        super().__init__(config)
        d = math.prod(config.input_shape)
        self.encoder = nn.Linear(d, config.hidden)
        self.decoder = nn.Linear(config.hidden, d)

    def encode(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.encoder(x.flatten(1)))  # (B, H)

    def decode(self, h: Tensor) -> Tensor:
        """The reconstruction from codes h (B, hidden): (B, *input_shape)."""
        return self._out(self.decoder(h)).view(-1, *self.config.input_shape)

    def _out(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits) if self.config.output == "sigmoid" else logits

    def forward(self, x: Tensor) -> Tensor:
        return self._out(self.decoder(self.encode(x))).view_as(x)  # (B, *input_shape)

    def encoder_weights(self) -> tuple[Tensor, Tensor]:
        return self.encoder.weight, self.encoder.bias  # (H, D), (H,)

    def _scores(self, v: Tensor, logits: Tensor) -> dict[str, Tensor]:
        if self.config.output == "sigmoid":  # a sigmoid cannot reach values outside (0, 1): refuse, never fit badly
            check_unit_interval(
                v,
                f"model.loss={self.config.loss} with model.output=sigmoid",
                "for standardized or other unbounded data set --model.loss=mse --model.output=identity",
            )
        mse = F.mse_loss(self._out(logits), v)
        if self.config.loss == "bce":
            bce = F.binary_cross_entropy_with_logits(logits, v)
            return {"loss": bce, "bce": bce.detach(), "recon": mse.detach()}
        return {"loss": mse, "recon": mse.detach()}

    @torch.no_grad()
    def anomaly_score(self, x: Tensor) -> Tensor:
        """Per-example reconstruction error of the clean input, (B, *input_shape) -> (B,): the training loss
        (BCE, or MSE with ``loss=mse``) averaged over the example's values (``reprlab score``)."""
        v = x.flatten(1)
        if self.config.output == "sigmoid":
            check_unit_interval(
                v, f"model.loss={self.config.loss} with model.output=sigmoid", "score data on the training scale"
            )
        logits = self.decoder(self.encode(v))
        if self.config.loss == "bce":
            return F.binary_cross_entropy_with_logits(logits, v, reduction="none").mean(1)
        return (self._out(logits) - v).pow(2).mean(1)

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        v = batch["x"].flatten(1)  # (B, D)
        noisy = v
        if self.training and self.config.corruption > 0:
            keep = torch.rand_like(v) >= self.config.corruption
            noisy = v * keep
        # the clean input is the target: a DAE learns to undo the corruption
        return self._scores(v, self.decoder(torch.sigmoid(self.encoder(noisy))))

    def eval_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Reconstruction of clean inputs (no corruption), so AE and DAE layers compare."""
        v = batch["x"].flatten(1)
        return self._scores(v, self.decoder(self.encode(v)))


def _rbm_encoder_weights(rbm: RBM) -> tuple[Tensor, Tensor]:
    return rbm.W, rbm.c  # p(h|v) = sigmoid(W v + c), W (H, D) as in nn.Linear


def encoder_weights(layer: nn.Module) -> tuple[Tensor, Tensor]:
    """(weight (H, D), bias (H,)) of a stack layer's encoder h = sigmoid(weight v + bias)."""
    if isinstance(layer, RBM):
        return _rbm_encoder_weights(layer)
    if hasattr(layer, "encoder_weights"):
        return layer.encoder_weights()
    raise ConfigError(f"{type(layer).__name__} is not a stack layer (AE/DAE layer or RBM)")


@dataclass(frozen=True)
class StackedClassifierConfig:
    # (C, H, W) images or (D,) features; set from the data
    input_shape: tuple[int, ...] = (1, 28, 28)
    # classes the model predicts; set from the data
    num_classes: int = 10
    # hidden layer sizes (a stack's layers)
    hidden: tuple[int, ...] = (256, 256, 256)

    def __post_init__(self) -> None:
        check(
            len(self.hidden) >= 1 and all(h >= 1 for h in self.hidden),
            f"model.hidden must be positive sizes, got {self.hidden}",
        )
        check(self.num_classes >= 2, f"model.num_classes must be >= 2, got {self.num_classes}")


@register_model("stacked_classifier", config=StackedClassifierConfig)
class StackedClassifier(ReprModel):
    """Deep sigmoid MLP with a softmax head; from_stack() initializes it from pre-trained layers."""

    def __init__(self, config: StackedClassifierConfig):
        super().__init__(config)
        sizes = [math.prod(config.input_shape), *config.hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.head = nn.Linear(sizes[-1], config.num_classes)

    @classmethod
    def from_stack(
        cls, layers: Sequence[nn.Module], input_shape: tuple[int, ...], num_classes: int
    ) -> "StackedClassifier":
        """A classifier whose hidden layers are copies of the stack's encoders, and a new random head."""
        hidden = tuple(int(encoder_weights(layer)[0].shape[0]) for layer in layers)
        model = cls(StackedClassifierConfig(tuple(input_shape), num_classes, hidden))
        with torch.no_grad():
            for lin, layer in zip(model.layers, layers):
                w, b = encoder_weights(layer)
                if lin.weight.shape != w.shape:
                    raise ConfigError(
                        f"stack layer of shape {tuple(w.shape)} does not fit a classifier layer "
                        f"{tuple(lin.weight.shape)}"
                    )
                lin.weight.copy_(w)
                lin.bias.copy_(b)
        return model

    def features(self, x: Tensor, depth: int | None = None) -> Tensor:
        """The code after ``depth`` hidden layers (all by default)."""
        h = x.flatten(1)
        for lin in self.layers[: depth if depth is not None else len(self.layers)]:
            h = torch.sigmoid(lin(h))
        return h  # (B, H_depth)

    def encode(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (B, num_classes) logits

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        logits = self.forward(batch["x"])
        ce = F.cross_entropy(logits, batch["y"])
        err = (logits.argmax(1) != batch["y"]).float().mean()
        return {"loss": ce, "error": err}
