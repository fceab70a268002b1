"""A restricted Boltzmann machine trained with CD-k, or PCD when ``persistent``.

Bernoulli-Bernoulli (``visible=bernoulli``, the default): energy E(v, h) = -h'Wv - b'v - c'h with
binary v (D,) and h (H,). Summing h out gives the free energy F(v) = -b'v - sum_j softplus(c_j + (Wv)_j),
and p(v) = exp(-F(v)) / Z. Inputs in [0, 1] are read as Bernoulli probabilities.

Gaussian-Bernoulli (``visible=gaussian``, for real-valued data such as standardized table columns):
E(v, h) = ||v - b||^2 / 2 - h'Wv - c'h, unit variance per visible unit, so
F(v) = ||v - b||^2 / 2 - sum_j softplus(c_j + (Wv)_j) and p(v|h) = N(b + W'h, I). The data should be
standardized (zero mean, unit variance per column): the model does not learn the variances.

Training does not need Z: the log-likelihood gradient is -dF(v_data)/dθ + E_model[dF(v)/dθ],
and contrastive divergence estimates the model term with v_k, k Gibbs steps from the data
(CD-k) or from chains kept across updates (PCD, Tieleman 2008). So ``loss`` returns
mean F(v_data) - mean F(v_k.detach()): its gradient is exactly the CD update, and any
optimizer of the engine applies it.
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
from .base import ReprModel, check_unit_interval


@dataclass(frozen=True)
class RBMConfig:
    # (C, H, W) images or (D,) features; set from the data
    input_shape: tuple[int, ...] = (1, 28, 28)
    # hidden units
    hidden: int = 256
    k: int = 1  # Gibbs steps per update
    persistent: bool = False  # PCD: keep the negative chains between updates
    sample_visible: bool = False  # False: the chain's last visible step uses probabilities (less noise)
    visible: Literal["bernoulli", "gaussian"] = "bernoulli"  # gaussian: unit-variance units for standardized data

    def __post_init__(self) -> None:
        check(self.hidden >= 1, f"model.hidden must be >= 1, got {self.hidden}")
        check(self.k >= 1, f"model.k (Gibbs steps) must be >= 1, got {self.k}")
        check(all(s >= 1 for s in self.input_shape), f"model.input_shape must be positive, got {self.input_shape}")


@register_model("rbm", config=RBMConfig)
class RBM(ReprModel):
    """RBM trained by contrastive divergence (CD-k, or PCD with persistent=true); Bernoulli or Gaussian visible
    units, any ``input_shape`` (flattened to D visible units)."""

    def __init__(self, config: RBMConfig):
        super().__init__(config)
        d = math.prod(config.input_shape)
        self.W = nn.Parameter(torch.randn(config.hidden, d) * 0.01)  # (H, D), laid out like nn.Linear's weight
        self.b = nn.Parameter(torch.zeros(d))  # visible bias
        self.c = nn.Parameter(torch.zeros(config.hidden))  # hidden bias
        # PCD chains: not part of the weights (their number follows the batch size)
        self.register_buffer("chain", torch.empty(0, d), persistent=False)

    # ------------------------------------------------------------- conditionals
    def hidden_probs(self, v: Tensor) -> Tensor:
        return torch.sigmoid(F.linear(v, self.W, self.c))  # (B, H)

    def visible_probs(self, h: Tensor) -> Tensor:
        """The mean of p(v|h): Bernoulli probabilities, or the Gaussian mean b + W'h. (B, D)."""
        mean = F.linear(h, self.W.t(), self.b)
        return torch.sigmoid(mean) if self.config.visible == "bernoulli" else mean

    def sample_visible_units(self, mean: Tensor) -> Tensor:
        """A draw of v from p(v|h) given its mean."""
        return torch.bernoulli(mean) if self.config.visible == "bernoulli" else mean + torch.randn_like(mean)

    def visible_energy(self, v: Tensor) -> Tensor:
        """The visible units' own term of F(v), (B,): -b'v (Bernoulli) or ||v - b||^2 / 2 (Gaussian)."""
        return -(v @ self.b) if self.config.visible == "bernoulli" else 0.5 * (v - self.b).pow(2).sum(1)

    def encode(self, x: Tensor) -> Tensor:
        """p(h = 1 | v): the code a DBN passes to the next layer."""
        return self.hidden_probs(x.flatten(1))

    def free_energy(self, v: Tensor) -> Tensor:
        """F(v) per example, (B,): -log sum_h exp(-E(v, h))."""
        v = v.flatten(1)
        return self.visible_energy(v) - F.softplus(F.linear(v, self.W, self.c)).sum(1)

    @torch.no_grad()
    def anomaly_score(self, x: Tensor) -> Tensor:
        """The free energy F(v) per example, (B, *input_shape) -> (B,): -log p(v) up to the constant log Z, so a
        higher score means a less probable input (``reprlab score``). Bernoulli units need data in [0, 1]."""
        v = x.flatten(1)
        if self.config.visible == "bernoulli":
            check_unit_interval(
                v, "an RBM with model.visible=bernoulli", "score data on the scale the model was trained on"
            )
        return self.free_energy(v)

    def gibbs(self, v: Tensor, k: int, h_probs: Tensor | None = None) -> Tensor:
        """k steps v -> h -> v, sampling h always and v on all but the last step (unless sample_visible).

        ``h_probs``, if given, is p(h|v) for the starting ``v`` (saves recomputing it).
        """
        for i in range(k):
            h = torch.bernoulli(h_probs if (i == 0 and h_probs is not None) else self.hidden_probs(v))
            pv = self.visible_probs(h)
            v = self.sample_visible_units(pv) if (self.config.sample_visible or i < k - 1) else pv
        return v

    def decode(self, h: Tensor) -> Tensor:
        """The mean of p(v|h) for codes h (B, hidden), in the input's shape: (B, *input_shape)."""
        return self.visible_probs(h).view(-1, *self.config.input_shape)

    def reconstruct(self, x: Tensor) -> Tensor:
        """Mean-field v -> p(h|v) -> p(v|h), in the input's shape."""
        return self.visible_probs(self.hidden_probs(x.flatten(1))).view_as(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.reconstruct(x)

    # ------------------------------------------------------------- training
    def negative_phase(self, v0: Tensor, h0_probs: Tensor | None = None) -> Tensor:
        """The negative samples v_k: from the data (CD-k) or from the persistent chains (PCD)."""
        with torch.no_grad():
            if not self.config.persistent:
                return self.gibbs(v0, self.config.k, h0_probs)
            if self.chain.shape != v0.shape:
                # (re)start the chains from the data (binary states for Bernoulli units)
                self.chain = torch.bernoulli(v0) if self.config.visible == "bernoulli" else v0.clone()
            pv = self.gibbs(self.chain, self.config.k)
            self.chain = self.sample_visible_units(pv)  # the chains carry sampled states; the update uses the mean
            return pv

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        v0 = batch["x"].flatten(1)  # (B, D)
        if self.config.visible == "bernoulli":
            check_unit_interval(
                v0,
                "an RBM with model.visible=bernoulli",
                "for standardized real-valued data set --model.visible=gaussian",
            )
        a0 = F.linear(v0, self.W, self.c)  # (B, H) hidden pre-activations, shared by F(v0), CD and the logged recon
        fe_data = (self.visible_energy(v0) - F.softplus(a0).sum(1)).mean()
        h0 = torch.sigmoid(a0.detach())
        vk = self.negative_phase(v0, h0)
        fe_model = self.free_energy(vk.detach()).mean()
        with torch.no_grad():
            recon = F.mse_loss(self.visible_probs(h0), v0)
        return {"loss": fe_data - fe_model, "recon": recon, "free_energy": fe_data.detach()}

    def eval_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Deterministic scores: mean-field reconstruction MSE (as "loss") and mean free energy."""
        v = batch["x"].flatten(1)
        recon = F.mse_loss(self.reconstruct(v), v)
        return {"loss": recon, "recon": recon, "free_energy": self.free_energy(v).mean()}
