"""What every reprlab model provides, and helpers shared by the families.

The contract (the engine relies on nothing else):

* ``__init__(config)`` takes the model's frozen config dataclass; ``self.config`` keeps it.
* ``forward`` is pure and returns tensors.
* ``loss(batch) -> dict[str, Tensor]`` with a ``"loss"`` key that is backpropagated;
  the other keys are logged (the engine detaches them).
* ``optimizer_groups() -> list[list[dict]]``: one list of parameter groups per optimizer (default:
  one optimizer over every parameter). A group holds ``params`` and optionally ``lr_mult`` (a backbone
  at a lower lr), ``lr`` (an absolute base lr), ``weight_decay`` (e.g. 0 for norms), ``betas`` and
  ``name``. The engine builds the optimizers and applies the schedule, clipping and accumulation.
* Optional, only where the step itself differs (a GAN alternating D and G):
  ``train_step(batch, steps) -> dict[str, Tensor]``, where ``steps`` holds one engine
  ``OptimizerStep`` per optimizer (``zero_grad()``, ``backward(loss)``, ``step()``).
* Optional: ``eval_step(batch) -> dict[str, Tensor]`` for validation (default: ``loss``);
  ``on_train_step_start(step, total_steps)`` for the model's own schedules (KL warm-up, GRL lambda);
  ``on_epoch_end(epoch) -> dict[str, float]`` for per-epoch state and extras (logged);
  ``test_metrics(test_source, **options) -> dict[str, float]`` for ``reprlab eval`` extras
  (e.g. ``nll_samples`` for IWAE NLL, WER/PER for G2P).
* ``encode(x)`` for models with a code; ``sample(n)`` for generative ones.

Models never import the engine.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError


class ReprModel(nn.Module):
    """Base class: stores the config; subclasses implement ``loss`` (or ``train_step``)."""

    registry_name: str = ""
    can_sample: bool = False

    def __init__(self, config: Any):
        super().__init__()
        self.config = config

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def eval_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.loss(batch)

    def example_batch(self, n: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """A random batch of the kind this model trains on (used by the registry smoke tests).

        The default fits the ``images`` task; models of other tasks override it.
        """
        shape = tuple(getattr(self.config, "input_shape", (1, 28, 28)))
        k = int(getattr(self.config, "num_classes", 10))
        return {"x": torch.rand(n, *shape, generator=generator), "y": torch.randint(0, k, (n,), generator=generator)}

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        raise ConfigError(
            f"model {self.registry_name!r} cannot sample; sampling works for generative models (VAE, GAN)"
        )


def mlp(sizes: list[int], act: type[nn.Module] = nn.ReLU, last_act: nn.Module | None = None) -> nn.Sequential:
    """Linear layers of the given sizes with ``act`` between them (and ``last_act`` after the last)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    if last_act is not None:
        layers.append(last_act)
    return nn.Sequential(*layers)


def conv_down(
    input_shape: tuple[int, int, int], channels: tuple[int, ...]
) -> tuple[list[nn.Module], tuple[int, int, int]]:
    """Stride-2 3x3 convs with ReLU (each halves H and W, rounding up) and the feature shape they end at."""
    c, h, w = input_shape
    layers: list[nn.Module] = []
    prev = c
    for ch in channels:
        layers += [nn.Conv2d(prev, ch, 3, stride=2, padding=1), nn.ReLU()]
        prev = ch
        h, w = (h + 1) // 2, (w + 1) // 2
    return layers, (prev, h, w)


def conv_up(channels: tuple[int, ...], out_channels: int) -> nn.Sequential:
    """The mirror of ``conv_down``: stride-2 4x4 transposed convs (ReLU between) back to ``out_channels``;
    the output is at least as large as the input was, so callers crop it to (H, W)."""
    chans = list(reversed(channels))
    up: list[nn.Module] = []
    for i, ch in enumerate(chans):
        nxt = chans[i + 1] if i + 1 < len(chans) else out_channels
        up.append(nn.ConvTranspose2d(ch, nxt, 4, stride=2, padding=1))
        if i + 1 < len(chans):
            up.append(nn.ReLU())
    return nn.Sequential(*up)


def check_unit_interval(x: Tensor, what: str) -> None:
    """Bernoulli/BCE losses need targets in [0, 1]."""
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise ConfigError(
            f"{what} needs data in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; use the Gaussian/MSE option or rescale "
            "the data"
        )
