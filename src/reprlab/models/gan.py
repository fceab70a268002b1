"""DCGAN for small images, trained with one of three objectives.

Generator: z (B, latent_dim) -> transposed convolutions with BatchNorm and ReLU -> tanh image.
Discriminator (critic for WGAN-GP): strided convolutions with LeakyReLU -> one score per image.
Images are (B, C, H, W) in [0, 1] outside the model and in [-1, 1] inside it, with any channel count C;
H and W must be divisible by 4. How many stride-2 stages G and D use follows from the size (see
``stages``): two up to 31 pixels (8x8 digits start G at 2x2, 28x28 Fashion-MNIST at 7x7), and one more
each time G can still start from at least 4x4: 32x32 starts at 4x4 with three stages, 64x64 at 4x4
with four (the DCGAN paper's 64x64 design).

Objectives (``objective``), with l = D's logit and f = the critic's score:

* ``minimax``: the saturating game of Goodfellow et al. 2014, min_G max_D E[log D(x)] + E[log(1 - D(G(z)))].
  D minimizes softplus(-l_real) + softplus(l_fake); G minimizes E[log(1 - D(G(z)))] = -softplus(l_fake).
* ``non-saturating``: same D; G minimizes -log D(G(z)) = softplus(-l_fake).
* ``wgan-gp``: Gulrajani et al. 2017. The critic minimizes E[f(G(z))] - E[f(x)] + gp_weight * GP with
  GP = E[(||grad f(x_hat)||_2 - 1)^2] at random interpolates x_hat; G minimizes -E[f(G(z))].

Each engine step updates D once; G is updated on every ``n_critic``-th step (counted from the engine's
global step, so resume stays exact). An EMA copy of G (``ema`` > 0) is optional; ``sample`` uses it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import check
from ..registry import register_model
from .base import ReprModel, check_image_shape

OBJECTIVES = ("minimax", "non-saturating", "wgan-gp")


@dataclass(frozen=True)
class DCGANConfig:
    # (C, H, W) images; set from the data
    input_shape: tuple[int, ...] = (1, 28, 28)
    # size of the noise z that G maps to an image
    latent_dim: int = 64
    g_channels: int = 64  # G's last hidden layer has 2x this; each earlier one doubles, up to 8x
    d_channels: int = 64  # width of D's first layer; each next one doubles, up to 8x
    objective: str = "non-saturating"  # one of OBJECTIVES
    n_critic: int = 1  # D steps per G step (WGAN-GP's paper uses 5)
    # WGAN-GP's gradient-penalty weight
    gp_weight: float = 10.0
    lr_g: Optional[float] = None  # None: trainer.lr
    # None: trainer.lr
    lr_d: Optional[float] = None
    beta1: float = 0.5  # Adam betas; DCGAN uses (0.5, 0.999), WGAN-GP (0.0, 0.9)
    # Adam's second beta
    beta2: float = 0.999
    ema: float = 0.0  # decay of an EMA copy of G; 0 = no copy
    grid_seed: int = 1234  # seed of the fixed noise behind the per-epoch sample grid
    # images in the per-epoch sample grid (RUN/samples)
    grid_size: int = 64

    def __post_init__(self) -> None:
        check(
            self.objective in OBJECTIVES,
            f"model.objective {self.objective!r} is not valid; choose one of: {', '.join(OBJECTIVES)}",
        )
        check(self.n_critic >= 1, f"model.n_critic must be >= 1 (D steps per G step), got {self.n_critic}")
        shape = tuple(self.input_shape)
        fits = len(shape) == 3 and shape[1] % 4 == 0 and shape[2] % 4 == 0 and min(shape[1:]) >= 4
        check_image_shape("dcgan", shape, "height and width divisible by 4 (8, 28, 32, 64, ...)", fits)
        check(self.latent_dim >= 1, f"model.latent_dim must be >= 1, got {self.latent_dim}")
        check(self.g_channels >= 1 and self.d_channels >= 1, "model.g_channels and model.d_channels must be >= 1")
        check(self.gp_weight >= 0, f"model.gp_weight must be >= 0, got {self.gp_weight}")
        check(0.0 <= self.ema < 1.0, f"model.ema must be in [0, 1), got {self.ema}")
        check(0.0 <= self.beta1 < 1.0 and 0.0 <= self.beta2 < 1.0, "model.beta1 and model.beta2 must be in [0, 1)")
        check(self.grid_size >= 1, "model.grid_size must be >= 1")
        for k in ("lr_g", "lr_d"):
            v = getattr(self, k)
            check(v is None or v > 0, f"model.{k} must be > 0, got {v}")


MAX_DOUBLINGS = 3  # the widest layer is 2^3 = 8x g_channels / d_channels, as in DCGAN's 64x64 nets


def stages(h: int, w: int) -> int:
    """How many stride-2 stages G (and D, mirrored) use for (H, W) images, both divisible by 4.

    Two, so G starts from (H/4, W/4), while H/8 or W/8 is not a whole number of at least 4; one more per
    halving that keeps G's start at least 4x4 pixels: 8 -> 2 (start 2x2), 28 -> 2 (7x7), 32 -> 3 (4x4),
    48 -> 3 (6x6), 64 -> 4 (4x4), 128 -> 5 (4x4). Sizes below 32 keep the two stages they always had."""
    n = 2
    while all(s % 2 ** (n + 1) == 0 and s // 2 ** (n + 1) >= 4 for s in (h, w)):
        n += 1
    return n


class Generator(nn.Module):
    """z (B, latent) -> (B, C, H, W) in [-1, 1]: a 1x1 -> (H/2^n, W/2^n) projection, then n stride-2 upsamplings.

    With ch = g_channels and n = ``stages(H, W)``, layer widths are ch * 2^min(n - i, 3) for i = 0..n-1:
    28x28 (n=2): (B, 4ch, 7, 7) -> (B, 2ch, 14, 14) -> (B, C, 28, 28)
    32x32 (n=3): (B, 8ch, 4, 4) -> (B, 4ch, 8, 8) -> (B, 2ch, 16, 16) -> (B, C, 32, 32)
    64x64 (n=4): (B, 8ch, 4, 4) -> (B, 8ch, 8, 8) -> (B, 4ch, 16, 16) -> (B, 2ch, 32, 32) -> (B, C, 64, 64)
    """

    def __init__(self, latent_dim: int, channels: int, out_shape: tuple[int, ...]):
        super().__init__()
        c, h, w = out_shape
        n = stages(h, w)
        widths = [channels * 2 ** min(n - i, MAX_DOUBLINGS) for i in range(n)]  # first to last hidden
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, widths[0], (h >> n, w >> n), 1, 0, bias=False),  # (B, w0, H/2^n, W/2^n)
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for a, b in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]  # 2x size
        layers += [nn.ConvTranspose2d(widths[-1], c, 4, 2, 1), nn.Tanh()]  # (B, C, H, W)
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z[:, :, None, None])  # (B, latent, 1, 1) -> (B, C, H, W)


class Discriminator(nn.Module):
    """(B, C, H, W) in [-1, 1] -> (B,) logit (or critic score). No BatchNorm: WGAN-GP's penalty is per sample.

    The mirror of G: n = ``stages(H, W)`` stride-2 convs of widths ch * 2^min(i, 3) for i = 0..n-1
    (ch = d_channels), then one linear score. 28x28: (B, ch, 14, 14) -> (B, 2ch, 7, 7) -> (B,);
    64x64: (B, ch, 32, 32) -> (B, 2ch, 16, 16) -> (B, 4ch, 8, 8) -> (B, 8ch, 4, 4) -> (B,).
    """

    def __init__(self, channels: int, in_shape: tuple[int, ...]):
        super().__init__()
        c, h, w = in_shape
        n = stages(h, w)
        widths = [channels * 2 ** min(i, MAX_DOUBLINGS) for i in range(n)]
        layers: list[nn.Module] = []
        for a, b in zip([c, *widths], widths):
            layers += [nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(0.2, True)]  # halves H and W
        layers += [nn.Flatten(), nn.Linear(widths[-1] * (h >> n) * (w >> n), 1)]  # (B, w_last * H/2^n * W/2^n)
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


# ---------------------------------------------------------------- the losses, as plain functions
def d_loss(objective: str, real: Tensor, fake: Tensor) -> Tensor:
    """D's loss from its outputs on real and generated images (without WGAN-GP's penalty)."""
    if objective == "wgan-gp":
        return fake.mean() - real.mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()  # BCE(real, 1) + BCE(fake, 0)


def g_loss(objective: str, fake: Tensor) -> Tensor:
    """G's loss from D's outputs on generated images."""
    if objective == "minimax":
        return -F.softplus(fake).mean()  # E[log(1 - sigmoid(l))]: saturates when D rejects the fakes
    if objective == "non-saturating":
        return F.softplus(-fake).mean()  # E[-log sigmoid(l)]
    return -fake.mean()


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor, eps: Tensor | None = None) -> Tensor:
    """E[(||grad_x f(x_hat)||_2 - 1)^2] at x_hat = eps * real + (1 - eps) * fake, eps ~ U(0, 1) per sample."""
    if eps is None:
        eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


@register_model("dcgan", config=DCGANConfig)
class DCGAN(ReprModel):
    """DCGAN (transposed-conv G, strided-conv D) with minimax, non-saturating or WGAN-GP objective."""

    can_sample = True

    def __init__(self, config: DCGANConfig):
        super().__init__(config)
        shape = tuple(config.input_shape)
        self.generator = Generator(config.latent_dim, config.g_channels, shape)
        self.discriminator = Discriminator(config.d_channels, shape)
        self.generator.apply(_dcgan_init)
        self.discriminator.apply(_dcgan_init)
        self.g_ema = copy.deepcopy(self.generator).requires_grad_(False) if config.ema > 0 else None
        self._step = 0

    # ----------------------------------------------------------- sampling (no training code)
    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        dev = next(self.parameters()).device
        return (
            torch.randn(n, self.config.latent_dim, generator=generator).to(dev)
            if generator is not None
            else torch.randn(n, self.config.latent_dim, device=dev)
        )

    def decode(self, z: Tensor) -> Tensor:
        """Images in [0, 1] from codes z (B, latent_dim), by the EMA generator when there is one."""
        g = self.g_ema if self.g_ema is not None else self.generator
        return (g(z) + 1) / 2

    def forward(self, z: Tensor) -> Tensor:
        return self.decode(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        was = self.training
        self.eval()
        out = torch.cat([self.decode(self.noise(min(1000, n - i), generator)) for i in range(0, n, 1000)])
        self.train(was)
        return out

    @torch.no_grad()
    def latent_walk(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n images along the straight line between two random codes."""
        z = self.noise(2, generator)
        t = torch.linspace(0, 1, n, device=z.device)[:, None]
        was = self.training
        self.eval()
        out = self.decode((1 - t) * z[0] + t * z[1])
        self.train(was)
        return out

    def fixed_noise(self) -> Tensor:
        return torch.randn(
            self.config.grid_size,
            self.config.latent_dim,
            generator=torch.Generator().manual_seed(self.config.grid_seed),
        )

    @torch.no_grad()
    def fixed_grid(self) -> Tensor:
        """G's images from the fixed noise of ``grid_seed`` (the same codes every epoch)."""
        was = self.training
        self.eval()
        out = self.decode(self.fixed_noise().to(next(self.parameters()).device))
        self.train(was)
        return out

    # ----------------------------------------------------------- training
    def optimizer_groups(self) -> list[list[dict]]:
        """Two optimizers, D first then G, each at its own lr (``lr_d`` / ``lr_g``, else the trainer's) and
        with DCGAN's Adam betas (used by adam and adamw)."""
        c = self.config
        betas = (c.beta1, c.beta2)

        def group(module: nn.Module, lr: float | None, name: str) -> list[dict]:
            g = {"params": list(module.parameters()), "betas": betas, "name": name}
            return [dict(g, lr=lr) if lr else g]

        return [group(self.discriminator, c.lr_d, "discriminator"), group(self.generator, c.lr_g, "generator")]

    def on_train_step_start(self, step: int, total_steps: int) -> None:
        self._step = step

    def _d_out(self, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """Mean D(x) and D(G(z)): probabilities for the GAN losses, critic scores for WGAN-GP."""
        f = (lambda t: t) if self.config.objective == "wgan-gp" else torch.sigmoid
        return {"d_real": f(real.detach()).mean(), "d_fake": f(fake.detach()).mean()}

    def train_step(self, batch: dict[str, Tensor], steps) -> dict[str, Tensor]:
        """One D (critic) update, then one G update every ``n_critic`` steps; ``steps`` are the engine's
        optimizer steps for D and G (they clip and take the scheduled lr)."""
        c = self.config
        opt_d, opt_g = steps
        x = batch["x"] * 2 - 1  # (B, C, H, W) in [-1, 1]
        g_turn = (self._step + 1) % c.n_critic == 0
        z = torch.randn(x.shape[0], c.latent_dim, device=x.device)
        # one G forward serves both steps; its graph is kept only when G will be updated
        with torch.set_grad_enabled(g_turn):
            fake = self.generator(z)  # (B, C, H, W)
        fake_d = fake.detach()

        # D (critic) step: only D's parameters get gradients. D has no BatchNorm, so real and fake
        # images can go through it as one batch.
        out_d = self.discriminator(torch.cat([x, fake_d]))
        real_out, fake_out = out_d[: len(x)], out_d[len(x) :]
        ld = d_loss(c.objective, real_out, fake_out)
        gp = (
            gradient_penalty(self.discriminator, x, fake_d)
            if c.objective == "wgan-gp"
            else torch.zeros((), device=x.device)
        )
        loss_d = ld + c.gp_weight * gp
        opt_d.zero_grad()
        opt_d.backward(loss_d)
        opt_d.step()
        out = {
            "loss": loss_d.detach(),
            "loss_d": loss_d.detach(),
            "gp": gp.detach(),
            **self._d_out(real_out, fake_out),
            # G's loss against this step's D before its update; logged every step so epoch means are fair
            "loss_g": g_loss(c.objective, fake_out.detach()),
        }

        if g_turn:
            # G step against the updated D; D is frozen so its parameters collect no gradients
            self.discriminator.requires_grad_(False)
            try:
                lg = g_loss(c.objective, self.discriminator(fake))
                opt_g.zero_grad()
                opt_g.backward(lg)
                opt_g.step()
            finally:
                self.discriminator.requires_grad_(True)
            if self.g_ema is not None:
                self._update_ema()
        return out

    @torch.no_grad()
    def _update_ema(self) -> None:
        d = self.config.ema
        for pe, p in zip(self.g_ema.parameters(), self.generator.parameters()):
            pe.lerp_(p, 1 - d)
        for be, b in zip(self.g_ema.buffers(), self.generator.buffers()):
            be.copy_(b)

    def loss(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Both losses on a batch with fresh noise, no update (WGAN-GP's penalty is left out: it needs gradients)."""
        c = self.config
        x = batch["x"] * 2 - 1
        z = torch.randn(x.shape[0], c.latent_dim, device=x.device)
        real_out, fake_out = self.discriminator(x), self.discriminator(self.generator(z))
        ld = d_loss(c.objective, real_out, fake_out)
        return {
            "loss": ld,
            "loss_d": ld.detach(),
            "loss_g": g_loss(c.objective, fake_out).detach(),
            **self._d_out(real_out, fake_out),
        }


def _dcgan_init(m: nn.Module) -> None:
    """DCGAN's init: conv weights N(0, 0.02), BatchNorm scales N(1, 0.02)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
