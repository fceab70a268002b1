"""Domain adaptation: one classifier, several ways to make it work on an unlabelled target domain.

Every model is a feature extractor (a small CNN for images, an MLP for vectors) followed by a
linear head. Training batches come from the ``domains`` task: a labelled source part
(``x_s``, ``y_s``) and a target part (``x_t``; its labels ``y_t`` are read only by the oracle).

=====================  ==========================================================================
``da_source_only``     cross-entropy on the source; the floor
``da_mmd``             + multi-kernel MMD² between source and target features (DAN)
``da_coral``           + CORAL: the distance between feature covariances (Deep CORAL)
``da_dann``            + a domain discriminator behind gradient reversal, λ_p = 2/(1+e^(−γp)) − 1 (DANN)
``da_pseudo_label``    + cross-entropy on confident target predictions, refreshed every epoch
``da_target_oracle``   cross-entropy on the *target* labels; the ceiling, reported only as such
=====================  ==========================================================================

Validation and test batches are ``{"x", "y"}``; ``eval_step`` gives their loss and accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import check
from ..errors import ConfigError
from ..metrics.domain import CorrelationAlignmentLoss, DomainAdversarialLoss, MaximumMeanDiscrepancyLoss, dann_lambda
from ..registry import register_model
from .base import ReprModel, mlp

METHODS = ("source-only", "mmd", "coral", "dann", "pseudo-label", "target-oracle")
STANDARDIZE = ("channel", "image", "none")


def model_name(method: str) -> str:
    """The registry name of an adaptation method: 'pseudo-label' -> 'da_pseudo_label'."""
    if method not in METHODS:
        raise ConfigError(f"unknown adaptation method {method!r}; choose one of: {', '.join(METHODS)}")
    return "da_" + method.replace("-", "_")


@dataclass(frozen=True)
class AdaptationConfig:
    # (C, H, W) images or (D,) features of both domains; set from the data
    input_shape: tuple[int, ...] = (3, 28, 28)
    # classes the model predicts; set from the data
    num_classes: int = 10
    # size of the features the adaptation loss aligns
    feature_dim: int = 128
    channels: tuple[int, ...] = (32, 48)  # CNN backbone, for (C, H, W) inputs
    hidden: tuple[int, ...] = (32, 32)  # MLP backbone, for vector inputs
    weight: float = 1.0  # trade-off of the adaptation loss against the source cross-entropy
    # per-example input standardization of images, the same for every method and both domains:
    # "channel" (each channel of each image to mean 0, std 1), "image" (all channels together), "none".
    # Vector inputs (two moons) are used as given.
    standardize: str = "channel"

    def __post_init__(self) -> None:
        check(len(self.input_shape) in (1, 3), f"model.input_shape must be (D,) or (C, H, W), got {self.input_shape}")
        check(self.num_classes >= 2, f"model.num_classes must be >= 2, got {self.num_classes}")
        check(self.feature_dim >= 1, f"model.feature_dim must be >= 1, got {self.feature_dim}")
        check(
            all(c >= 1 for c in self.channels) and all(h >= 1 for h in self.hidden),
            "model.channels and model.hidden must be positive",
        )
        check(self.weight >= 0, f"model.weight must be >= 0, got {self.weight}")
        check(
            self.standardize in STANDARDIZE,
            f"model.standardize must be one of {', '.join(STANDARDIZE)}, got {self.standardize!r}",
        )


class InputStandardization(nn.Module):
    """Each image to mean 0 and std 1, per channel (``"channel"``) or over all its pixels (``"image"``).

    A per-example preprocessing step with no parameters: it removes a photo's overall brightness and
    contrast, which a Fashion-M blend adds and a Fashion-MNIST image lacks. ``eps`` keeps flat images finite.
    """

    def __init__(self, mode: str = "channel", eps: float = 1e-2):
        super().__init__()
        if mode not in ("channel", "image"):
            raise ConfigError(f"InputStandardization mode must be 'channel' or 'image', got {mode!r}")
        self.mode, self.eps = mode, eps

    def forward(self, x: Tensor) -> Tensor:
        dims = (2, 3) if self.mode == "channel" else (1, 2, 3)
        mean = x.mean(dims, keepdim=True)
        std = x.std(dims, keepdim=True, unbiased=False)
        return (x - mean) / (std + self.eps)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


def backbone(cfg: AdaptationConfig) -> nn.Sequential:
    """Features (B, feature_dim) of inputs (B, *input_shape): [standardization,] conv-ReLU-pool blocks, or an MLP."""
    if len(cfg.input_shape) == 1:
        return nn.Sequential(mlp([cfg.input_shape[0], *cfg.hidden, cfg.feature_dim]), nn.ReLU())
    c, h, w = cfg.input_shape
    layers: list[nn.Module] = [] if cfg.standardize == "none" else [InputStandardization(cfg.standardize)]
    for ch in cfg.channels:
        layers += [nn.Conv2d(c, ch, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
        c, h, w = ch, h // 2, w // 2
    check(h >= 1 and w >= 1, f"model.input_shape {cfg.input_shape} is too small for {len(cfg.channels)} pooling blocks")
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * h * w, cfg.feature_dim), nn.ReLU())


class DomainAdaptationModel(ReprModel):
    """Source-supervised classifier; subclasses add an adaptation term in ``adaptation_loss``."""

    uses_target = True  # whether adaptation_loss reads the target features

    def __init__(self, config: AdaptationConfig):
        super().__init__(config)
        self.features = backbone(config)
        self.head = nn.Linear(config.feature_dim, config.num_classes)

    def encode(self, x: Tensor) -> Tensor:
        return self.features(x)  # (B, feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (B, num_classes) logits

    @torch.no_grad()
    def predict_proba(self, x: Tensor, batch_size: int = 2048) -> Tensor:
        was = self.training
        self.eval()
        out = (
            torch.cat([F.softmax(self(x[i : i + batch_size]), 1) for i in range(0, len(x), batch_size)])
            if len(x)
            else x.new_zeros(0, self.config.num_classes)
        )
        self.train(was)
        return out

    def _check_batch(self, batch: dict[str, Tensor]) -> None:
        for k in ("x_s", "y_s", "x_t"):
            if k not in batch:
                raise ConfigError(
                    f"{self.registry_name} trains on domain pairs (the 'domains' task); the batch has no {k!r}"
                )
        shape = tuple(batch["x_s"].shape[1:])
        if shape != tuple(self.config.input_shape) or tuple(batch["x_t"].shape[1:]) != shape:
            raise ConfigError(
                f"{self.registry_name}: inputs of shape {shape} / {tuple(batch['x_t'].shape[1:])}, model built for "
                f"{tuple(self.config.input_shape)}"
            )

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        self._check_batch(batch)
        # two passes of B rather than one of 2B: on CPU the smaller conv batch is ~30% faster (cache);
        # source-only never looks at the target, so it skips that pass
        f_s = self.features(batch["x_s"])  # (B, feature_dim)
        f_t = self.features(batch["x_t"]) if self.uses_target else None
        logits_s = self.head(f_s)
        ce = F.cross_entropy(logits_s, batch["y_s"])
        out = {"ce": ce.detach(), "acc_s": (logits_s.argmax(1) == batch["y_s"]).float().mean()}
        adapt = self.adaptation_loss(f_s, f_t, batch, out)
        if adapt is None:
            out["loss"] = ce
        else:
            out["adapt"] = adapt.detach()
            out["loss"] = ce + self.config.weight * adapt
        return out

    def adaptation_loss(
        self, f_s: Tensor, f_t: Tensor, batch: dict[str, Tensor], out: dict[str, Tensor]
    ) -> Tensor | None:
        return None

    def eval_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Cross-entropy and accuracy on ``{"x", "y"}`` (or on the target part of a training batch)."""
        x, y = (batch["x"], batch["y"]) if "x" in batch else (batch["x_t"], batch["y_t"])
        logits = self(x)
        return {"loss": F.cross_entropy(logits, y), "acc": (logits.argmax(1) == y).float().mean()}

    def example_batch(self, n: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        shape, k = tuple(self.config.input_shape), self.config.num_classes
        return {
            "x_s": torch.rand(n, *shape, generator=generator),
            "y_s": torch.randint(0, k, (n,), generator=generator),
            "x_t": torch.rand(n, *shape, generator=generator) * 0.5 + 0.5,
            "y_t": torch.randint(0, k, (n,), generator=generator),
            "i_t": torch.arange(n),
        }


@register_model("da_source_only", config=AdaptationConfig, task="domains")
class SourceOnly(DomainAdaptationModel):
    """Domain adaptation floor: trained on labelled source data only."""

    uses_target = False


@register_model("da_target_oracle", config=AdaptationConfig, task="domains")
class TargetOracle(DomainAdaptationModel):
    """Domain adaptation ceiling: trained on the target labels (reported only as the ceiling)."""

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        if "y_t" not in batch:
            raise ConfigError("da_target_oracle needs target labels y_t in the batch")
        logits = self(batch["x_t"])
        ce = F.cross_entropy(logits, batch["y_t"])
        return {"loss": ce, "ce": ce.detach(), "acc_t": (logits.argmax(1) == batch["y_t"]).float().mean()}


@dataclass(frozen=True)
class MMDConfig(AdaptationConfig):
    # Gaussian kernel bandwidths, as multiples of the features' mean squared distance
    kernel_multipliers: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(
            len(self.kernel_multipliers) >= 1 and all(m > 0 for m in self.kernel_multipliers),
            "model.kernel_multipliers must be positive",
        )


@register_model("da_mmd", config=MMDConfig, task="domains")
class MMDAdaptation(DomainAdaptationModel):
    """DAN-style adaptation: source cross-entropy + multi-kernel Gaussian MMD² between domain features."""

    def __init__(self, config: MMDConfig):
        super().__init__(config)
        self.criterion = MaximumMeanDiscrepancyLoss(config.kernel_multipliers)

    def adaptation_loss(self, f_s, f_t, batch, out):
        return self.criterion(f_s, f_t)


@dataclass(frozen=True)
class CoralConfig(AdaptationConfig):
    weight: float = 10.0


@register_model("da_coral", config=CoralConfig, task="domains")
class CoralAdaptation(DomainAdaptationModel):
    """Deep CORAL: source cross-entropy + the distance between source and target feature covariances."""

    def __init__(self, config: CoralConfig):
        super().__init__(config)
        self.criterion = CorrelationAlignmentLoss()

    def adaptation_loss(self, f_s, f_t, batch, out):
        return self.criterion(f_s, f_t)


@dataclass(frozen=True)
class DANNConfig(AdaptationConfig):
    gamma: float = 10.0  # steepness of the λ schedule
    # hidden layer sizes of the domain discriminator
    disc_hidden: tuple[int, ...] = (100,)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.gamma > 0, f"model.gamma must be > 0, got {self.gamma}")


@register_model("da_dann", config=DANNConfig, task="domains")
class DANN(DomainAdaptationModel):
    """DANN: a domain discriminator trained through gradient reversal, λ rising from 0 to 1."""

    def __init__(self, config: DANNConfig):
        super().__init__(config)
        disc = mlp([config.feature_dim, *config.disc_hidden, 1])
        self.criterion = DomainAdversarialLoss(disc, coeff=0.0)

    def on_train_step_start(self, step: int, total_steps: int) -> None:
        self.criterion.grl.coeff = dann_lambda(step / max(total_steps, 1), self.config.gamma)

    def adaptation_loss(self, f_s, f_t, batch, out):
        loss = self.criterion(f_s, f_t)
        out["disc_acc"] = self.criterion.last_accuracy
        out["lambda"] = torch.tensor(self.criterion.grl.coeff)
        return loss


@dataclass(frozen=True)
class PseudoLabelConfig(AdaptationConfig):
    threshold: float = 0.9  # a target prediction becomes a label when its probability reaches this
    num_target: int = 30000  # size of the target training set (filled from the data)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(0 < self.threshold < 1, f"model.threshold must be in (0, 1), got {self.threshold}")
        check(self.num_target >= 1, f"model.num_target must be >= 1, got {self.num_target}")


@register_model("da_pseudo_label", config=PseudoLabelConfig, task="domains")
class PseudoLabel(DomainAdaptationModel):
    """Self-training: cross-entropy on target examples whose last-epoch prediction was confident.

    The model keeps one (label, confidence) pair per target training example. During an epoch
    it trains on the table from the previous epoch and records its current predictions; the
    table is replaced at the end of each epoch, so the first epoch trains on the source alone.
    """

    def __init__(self, config: PseudoLabelConfig):
        super().__init__(config)
        n = config.num_target
        self.register_buffer("pl_label", torch.zeros(n, dtype=torch.long))
        self.register_buffer("pl_conf", torch.zeros(n))
        self.register_buffer("next_label", torch.zeros(n, dtype=torch.long))
        self.register_buffer("next_conf", torch.zeros(n))

    def adaptation_loss(self, f_s, f_t, batch, out):
        if "i_t" not in batch:
            raise ConfigError("da_pseudo_label needs target indices i_t in the batch (the 'domains' task gives them)")
        i = batch["i_t"]
        if len(i) and int(i.max()) >= self.config.num_target:
            raise ConfigError(
                f"da_pseudo_label was built for {self.config.num_target} target examples, got index {int(i.max())}; "
                "set model.num_target"
            )
        logits_t = self.head(f_t)
        conf, pred = F.softmax(logits_t.detach(), 1).max(1)
        self.next_conf[i], self.next_label[i] = conf, pred
        use = self.pl_conf[i] >= self.config.threshold
        labels = self.pl_label[i]
        per = F.cross_entropy(logits_t, labels, reduction="none")
        out["pl_used"] = use.float().mean()
        if "y_t" in batch:  # diagnostic only: pl_correct / pl_used is the pseudo-labels' accuracy
            out["pl_correct"] = ((labels == batch["y_t"]) & use).float().mean()
        return (per * use).sum() / max(len(i), 1)

    def on_epoch_end(self, epoch: int) -> dict[str, float]:
        self.pl_label.copy_(self.next_label)
        self.pl_conf.copy_(self.next_conf)
        return {"pseudo/coverage": float((self.pl_conf >= self.config.threshold).float().mean())}


__all__ = ["METHODS", "STANDARDIZE", "InputStandardization", "model_name", "DomainAdaptationModel", "AdaptationConfig"]
