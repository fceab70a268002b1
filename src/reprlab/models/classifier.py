"""An image classifier = backbone + linear head, with the freeze policies of transfer learning.

Modes (``model.mode``):

* ``scratch``: everything trains at the base learning rate (also how a source model is made);
* ``frozen``: feature extraction. Only the head trains; the backbone's BatchNorm layers stay in
  eval mode, so their running statistics do not move either;
* ``last-k``: the last ``model.unfreeze`` blocks and the head train; earlier blocks are frozen
  as above;
* ``all``: full fine-tuning, the backbone at ``lr * model.backbone_lr_mult``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import check
from ..errors import ConfigError, DataError
from ..registry import register_model
from .backbones import BACKBONE_BLOCKS, BUILTIN, STEMS, check_image_size, make_backbone, timm_name
from .base import ReprModel

MODES = ("scratch", "frozen", "last-k", "all")
FEATURE_KINDS = ("pooled", "spatial")  # frozen features for a classical head: see Classifier.features
# the spatial features' pooling grid, chosen on validation (3x3 over 1, 2 and 4) by experiments/transfer_choices.py
SPATIAL_GRID = 3


@dataclass(frozen=True)
class ClassifierConfig:
    # (C, H, W) images; set from the data
    input_shape: tuple[int, ...] = (1, 28, 28)
    # classes the model predicts; set from the data
    num_classes: int = 10
    backbone: str = "small_cnn"  # small_cnn, resnet18, or timm:NAME (any timm model, pip install 'reprlab[timm]')
    width: int = 32  # small_cnn: channels of the first block (doubled in each next one)
    stem: Literal["auto", "small", "imagenet"] = "auto"  # resnet18: auto = the ImageNet stem from 64 px on
    # scratch: random init; frozen: train the head only; last-k: also the last unfreeze blocks; all: everything
    mode: Literal["scratch", "frozen", "last-k", "all"] = "scratch"
    unfreeze: int = 1  # blocks trained in mode last-k, counted from the last
    backbone_lr_mult: float = 0.1  # backbone lr = lr * this, in modes last-k and all

    def __post_init__(self) -> None:
        check(len(self.input_shape) == 3, f"classifier needs images (C, H, W), got input_shape {self.input_shape}")
        check(self.num_classes >= 2, f"model.num_classes must be >= 2, got {self.num_classes}")
        check(self.width >= 1, f"model.width must be >= 1, got {self.width}")
        check(self.backbone_lr_mult > 0, f"model.backbone_lr_mult must be > 0, got {self.backbone_lr_mult}")
        check(self.stem in STEMS, f"model.stem must be one of {', '.join(STEMS)}, got {self.stem!r}")
        tname = timm_name(self.backbone)
        check(
            self.backbone in BUILTIN or bool(tname and tname.strip()),
            f"model.backbone must be small_cnn, resnet18 or timm:NAME (a timm model), got {self.backbone!r}",
        )
        if tname is None:
            check_image_size(self.backbone, tuple(self.input_shape), self.stem)
        n = BACKBONE_BLOCKS.get(self.backbone)
        if self.mode == "last-k":
            check(self.unfreeze >= 1, f"model.unfreeze must be >= 1, got {self.unfreeze}")
            check(
                n is None or self.unfreeze <= n,
                f"model.unfreeze={self.unfreeze} but the {self.backbone} backbone has {n} blocks; "
                f"choose 1..{n} (or mode all)",
            )


@register_model("classifier", config=ClassifierConfig)
class Classifier(ReprModel):
    """Image classifier: a backbone (small CNN, ResNet-18 or a timm model) and a linear head, with a freeze policy."""

    def __init__(self, config: ClassifierConfig):
        super().__init__(config)
        self.backbone = make_backbone(config.backbone, tuple(config.input_shape), config.width, config.stem)
        n = len(self.backbone.blocks())
        if config.mode == "last-k" and config.unfreeze > n:
            raise ConfigError(
                f"model.unfreeze={config.unfreeze} but the {config.backbone} backbone has {n} blocks; "
                f"choose 1..{n} (or mode all)"
            )
        self.head = nn.Linear(self.backbone.num_features, config.num_classes)
        # the head sees standardized features; identity until standardize_features() measures a target
        self.register_buffer("feature_mean", torch.zeros(self.backbone.num_features))
        self.register_buffer("feature_std", torch.ones(self.backbone.num_features))
        self.apply_freeze()

    # ------------------------------------------------------------------ transfer API
    @property
    def num_features(self) -> int:
        return self.backbone.num_features

    def _check_input(self, x: Tensor) -> None:
        if tuple(x.shape[1:]) != tuple(self.config.input_shape):
            # both backbones would run on other sizes (global pooling) and quietly give wrong answers
            have, want = "x".join(map(str, x.shape[1:])), "x".join(map(str, self.config.input_shape))
            raise DataError(
                f"images are {have} but the classifier takes {want}; resize them first (reprlab transfer --resize)"
            )

    def forward_features(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return self.backbone(x)  # (B, F)

    def forward_head(self, features: Tensor) -> Tensor:
        return self.head((features - self.feature_mean) / self.feature_std)  # (B, num_classes)

    def standardize_features(self, x: Tensor) -> None:
        """Let the head see the backbone's features of ``x`` standardized (as a linear probe or SVM would).

        A new head on raw features learns slowly when their scales are small; this fixes the
        scales once, before training, from the target's training images.
        """
        f = self.features(x)  # (N, F)
        self.feature_mean.copy_(f.mean(0))
        self.feature_std.copy_(f.std(0).clamp_min(1e-3) if len(f) > 1 else torch.ones_like(f[0]))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def encode(self, x: Tensor) -> Tensor:
        """Backbone features, so ``reprlab encode RUN`` writes what a classical head is trained on."""
        return self.forward_features(x)

    def reset_head(self, num_classes: int) -> None:
        """A fresh linear head for ``num_classes`` classes (the config follows)."""
        self.config = dataclasses.replace(self.config, num_classes=num_classes)
        self.head = nn.Linear(self.num_features, num_classes)

    def trainable_blocks(self) -> list[bool]:
        """For each backbone block, first to last: does it train in this mode?"""
        n = len(self.backbone.blocks())
        mode = self.config.mode
        if mode == "frozen":
            return [False] * n
        if mode == "last-k":
            return [i >= n - self.config.unfreeze for i in range(n)]
        return [True] * n

    def apply_freeze(self) -> None:
        """Set ``requires_grad`` from the mode (the head always trains) and the BatchNorm modes."""
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        for block, on in zip(self.backbone.blocks(), self.trainable_blocks()):
            for p in block.parameters():
                p.requires_grad_(on)
        for p in self.head.parameters():
            p.requires_grad_(True)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            # a frozen block is a fixed function: its BatchNorm uses (and keeps) the source statistics
            for block, on in zip(self.backbone.blocks(), self.trainable_blocks()):
                if not on:
                    block.eval()
        return self

    def optimizer_groups(self) -> list[list[dict]]:
        """One optimizer: the trainable backbone parameters at ``lr * backbone_lr_mult``, the head at ``lr``.

        In mode scratch the multiplier is 1 (nothing is pre-trained); in frozen the backbone has no group.
        """
        mult = 1.0 if self.config.mode == "scratch" else self.config.backbone_lr_mult
        backbone = [p for p in self.backbone.parameters() if p.requires_grad]
        groups = [{"params": list(self.head.parameters()), "name": "head"}]
        if backbone:
            groups.insert(0, {"params": backbone, "lr_mult": mult, "name": "backbone"})
        return [groups]

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        logits = self(batch["x"])
        y = batch["y"]
        ce = F.cross_entropy(logits, y)
        return {"loss": ce, "acc": (logits.argmax(1) == y).float().mean()}

    def predict(self, x: Tensor, batch_size: int = 1024) -> Tensor:
        """Class indices for images x (B, C, H, W), in eval mode without gradients."""
        was = self.training
        self.eval()
        with torch.no_grad():
            out = torch.cat([self(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
        self.train(was)
        return out

    def spatial_features(self, x: Tensor, grid: int = SPATIAL_GRID) -> Tensor:
        """The last two blocks' outputs, each average-pooled to a ``grid`` x ``grid`` grid and concatenated:
        (B, grid² * (C_-2 + C_-1)). The default grid, 3, was chosen on validation by experiments/transfer_choices.py.

        Global average pooling (``forward_features``) keeps what the source classes needed and throws away
        where things are; for a target whose classes differ in shape (sandal, sneaker, ankle boot) the coarse
        layout and the earlier block carry much of what a classical head on frozen features can use.
        """
        self._check_input(x)
        outs = self.backbone.forward_blocks(x)[-2:]
        return torch.cat([F.adaptive_avg_pool2d(o, grid).flatten(1) for o in outs], 1)

    def features(self, x: Tensor, batch_size: int = 1024, kind: str = "pooled", grid: int = SPATIAL_GRID) -> Tensor:
        """Backbone features of x (B, C, H, W) -> (B, F), in eval mode without gradients.

        ``kind``: ``pooled`` (the globally pooled features the head sees) or ``spatial`` (:meth:`spatial_features`,
        pooled to ``grid`` x ``grid``).
        """
        if kind not in FEATURE_KINDS:
            raise ValueError(f"feature kind must be one of {FEATURE_KINDS}, got {kind!r}")
        take = self.forward_features if kind == "pooled" else (lambda xb: self.spatial_features(xb, grid))
        was = self.training
        self.eval()
        with torch.no_grad():
            out = torch.cat([take(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
        self.train(was)
        return out
