"""DCGAN: shapes, which parameters each step changes, the three objectives' formulas, the gradient
penalty against a hand computation, the fixed-noise grid, sampling from a run, and bad input."""

import math

import numpy as np

import pytest
import torch
from torch import nn

from reprlab.config import TrainerConfig
from reprlab.errors import ConfigError
from reprlab.models.gan import d_loss, g_loss, gradient_penalty
from reprlab.registry import create_model
from reprlab.train.engine import make_optimizer, seed_everything


def small(**kw):
    seed_everything(0)
    return create_model("dcgan", input_shape=(1, 8, 8), latent_dim=8, g_channels=8, d_channels=8, **kw)


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 12, 16)])
def test_shapes_and_range(shape):
    m = create_model("dcgan", input_shape=shape, g_channels=8, d_channels=8, latent_dim=4)
    x = m.sample(5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (5, *shape) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert m.discriminator(x * 2 - 1).shape == (5,)
    assert m.latent_walk(7, generator=torch.Generator().manual_seed(0)).shape == (7, *shape)


def _snap(module):
    return [p.detach().clone() for p in module.parameters()]


def _same(a, module):
    return all(torch.equal(x, p) for x, p in zip(a, module.parameters()))


class _Step:
    """What the engine hands a model's train_step for one optimizer, without the engine."""

    def __init__(self, opt):
        self.opt = opt

    def zero_grad(self):
        self.opt.zero_grad(set_to_none=True)

    def backward(self, loss):
        loss.backward()

    def step(self):
        self.opt.step()


def _opts(m):
    cfg = TrainerConfig(lr=1e-2)
    return [_Step(make_optimizer(groups, cfg)) for groups in m.optimizer_groups()]


@pytest.mark.parametrize("objective", ["minimax", "non-saturating", "wgan-gp"])
def test_each_step_changes_only_its_own_parameters(objective):
    m = small(objective=objective, n_critic=2)
    batch = {"x": torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))}
    opt_d, opt_g = _opts(m)

    # step 0 with n_critic=2: a D step only
    g0, d0 = _snap(m.generator), _snap(m.discriminator)
    m.on_train_step_start(0, 10)
    m.train_step(batch, [opt_d, opt_g])
    assert _same(g0, m.generator) and not _same(d0, m.discriminator)
    assert all(p.grad is None for p in m.generator.parameters())

    # step 1: a D step, then a G step; D must be where its own optimizer left it
    after_d = {}
    real_step = opt_d.step

    def step_and_record(*a, **k):
        out = real_step(*a, **k)
        after_d["params"] = _snap(m.discriminator)
        return out

    opt_d.step = step_and_record
    g1 = _snap(m.generator)
    m.on_train_step_start(1, 10)
    m.train_step(batch, [opt_d, opt_g])
    assert _same(after_d["params"], m.discriminator), "the G step changed D"
    assert not _same(g1, m.generator), "the G step did not change G"
    assert all(p.requires_grad for p in m.discriminator.parameters())


def test_losses_match_their_formulas():
    real = torch.tensor([2.0, -1.0, 0.5])
    fake = torch.tensor([-3.0, 0.0, 1.5])
    sig = torch.sigmoid
    want_d = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    assert d_loss("minimax", real, fake).item() == pytest.approx(want_d.item(), rel=1e-6)
    assert d_loss("non-saturating", real, fake).item() == pytest.approx(want_d.item(), rel=1e-6)
    assert g_loss("minimax", fake).item() == pytest.approx(torch.log(1 - sig(fake)).mean().item(), rel=1e-6)
    assert g_loss("non-saturating", fake).item() == pytest.approx(-torch.log(sig(fake)).mean().item(), rel=1e-6)
    assert d_loss("wgan-gp", real, fake).item() == pytest.approx(fake.mean().item() - real.mean().item())
    assert g_loss("wgan-gp", fake).item() == pytest.approx(-fake.mean().item())
    # the saturating loss's gradient vanishes when D rejects a fake: at logit -10 it is ~1e4 times smaller
    l = torch.tensor([-10.0], requires_grad=True)
    (gm,) = torch.autograd.grad(g_loss("minimax", l), l)
    (gn,) = torch.autograd.grad(g_loss("non-saturating", l), l)
    assert abs(gm.item()) < 1e-4 * abs(gn.item())


def test_gradient_penalty_matches_hand_computation():
    # linear critic f(x) = w.x + b: the gradient is w everywhere, so GP = (||w|| - 1)^2
    lin = nn.Linear(4, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 0.0, 4.0, 0.0]]))
    real, fake = torch.randn(5, 4), torch.randn(5, 4)
    assert gradient_penalty(lambda x: lin(x).squeeze(1), real, fake).item() == pytest.approx((5.0 - 1.0) ** 2)

    # f(x) = sum x^2: grad = 2 x_hat at x_hat = eps*real + (1-eps)*fake
    real = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    fake = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    eps = torch.tensor([[0.5], [0.25]])
    # x_hat = [[0.5, 0], [0, 0.5]] -> ||2 x_hat|| = 1 and 1 -> GP = 0; then a case with nonzero GP
    assert gradient_penalty(lambda x: (x**2).sum(1), real, fake, eps).item() == pytest.approx(0.0, abs=1e-7)
    eps = torch.tensor([[1.0], [1.0]])
    # x_hat = real: norms 2 and 4 -> ((2-1)^2 + (4-1)^2) / 2 = 5
    gp = gradient_penalty(lambda x: (x**2).sum(1), real, fake, eps)
    assert gp.item() == pytest.approx(5.0)
    assert gp.requires_grad  # create_graph keeps it differentiable for the critic's update


def test_gradient_penalty_is_differentiable_for_the_critic():
    lin = nn.Linear(3, 1)
    gp = gradient_penalty(lambda x: lin(x).squeeze(1), torch.randn(4, 3), torch.randn(4, 3))
    gp.backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    w = lin.weight.detach()
    want = 2 * (w.norm() - 1) * w / w.norm()
    assert torch.allclose(lin.weight.grad, want, atol=1e-6)


def test_fixed_noise_grid_is_reproducible_from_the_seed():
    a, b = small(grid_seed=7, grid_size=9), small(grid_seed=7, grid_size=9)
    assert torch.equal(a.fixed_noise(), torch.randn(9, 8, generator=torch.Generator().manual_seed(7)))
    assert torch.equal(a.fixed_grid(), b.fixed_grid())
    c = small(grid_seed=8, grid_size=9)
    c.load_state_dict(a.state_dict())
    assert not torch.equal(a.fixed_grid(), c.fixed_grid())  # same weights, other seed: other images
    torch.manual_seed(123)
    g1 = a.fixed_grid()
    torch.manual_seed(456)
    assert torch.equal(g1, a.fixed_grid())  # the global RNG does not matter


def test_ema_copy_follows_the_generator():
    m = small(ema=0.5)
    opt = _opts(m)
    batch = {"x": torch.rand(8, 1, 8, 8)}
    before = _snap(m.g_ema)
    m.train_step(batch, opt)
    for e0, e, p in zip(before, m.g_ema.parameters(), m.generator.parameters()):
        assert torch.allclose(e, 0.5 * e0 + 0.5 * p)
    assert not any(p.requires_grad for p in m.g_ema.parameters())


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"objective": "hinge"}, "minimax, non-saturating, wgan-gp"),
        ({"n_critic": 0}, "n_critic must be >= 1"),
        ({"input_shape": (1, 10, 10)}, "divisible by 4"),
    ],
)
def test_bad_config(kw, match):
    with pytest.raises(ConfigError, match=match):
        create_model("dcgan", **kw)


def test_train_sample_and_bad_input_from_the_cli(cli, digits_args, tmp_path):
    run = tmp_path / "gan"
    rc, out, err = cli(
        "train",
        "dcgan",
        *digits_args,
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--out",
        run,
        "--model.g_channels=8",
        "--model.d_channels=8",
        "--model.latent_dim=8",
        "--lr",
        "2e-4",
    )
    assert rc == 0, err
    lines = [__import__("json").loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and {"train/d_real", "train/d_fake", "train/loss_d", "train/loss_g", "train/gp"} <= set(
        lines[-1]
    )
    assert 0 < lines[-1]["train/d_real"] < 1 and 0 < lines[-1]["train/d_fake"] < 1
    assert (run / "samples" / "epoch_001.png").is_file() and (run / "samples" / "epoch_002.png").is_file()

    grid = tmp_path / "grid.png"
    rc, out, err = cli("sample", run, "-n", "16", "-o", grid)
    assert rc == 0 and grid.stat().st_size > 0, err
    rc, out, err = cli("sample", run, "-n", "8", "--interpolate", "-o", tmp_path / "walk.png")
    assert rc == 0, err
    # bad input: one line on stderr, exit 2, nothing written
    for args, needle in [
        (("sample", run, "-n", "0", "-o", tmp_path / "z.png"), "must be > 0"),
        (("sample", run, "-n", "-3", "-o", tmp_path / "z.png"), "must be > 0"),
        (
            ("train", "dcgan", *digits_args, "--out", tmp_path / "x", "--model.objective=hinge"),
            "minimax, non-saturating, wgan-gp",
        ),
        (("train", "dcgan", *digits_args, "--out", tmp_path / "x", "--model.n_critic=0"), "n_critic must be >= 1"),
        (("fd", run, "--inception-weights", tmp_path / "nope.pt"), "does not exist"),
        (("fd", run, "--inception-weights", tmp_path), "not a file"),
    ]:
        rc, out, err = cli(*args)
        assert rc == 2, (args, err)
        assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "z.png").exists() and not (tmp_path / "x").exists()


def test_a_run_samples_without_training_code(cli, digits_args, tmp_path):
    """load_run rebuilds the model from config.json + safetensors; sampling is deterministic per seed."""
    from reprlab.train.checkpoint import load_run

    run = tmp_path / "gan"
    rc, _, err = cli(
        "train",
        "dcgan",
        *digits_args,
        "--epochs",
        "1",
        "--out",
        run,
        "--model.g_channels=8",
        "--model.d_channels=8",
        "--model.latent_dim=8",
        "--model.ema=0.9",
    )
    assert rc == 0, err
    a, b = load_run(run), load_run(run)
    xa = a.sample(10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(xa, b.sample(10, generator=torch.Generator().manual_seed(3)))
    assert not a.training and math.isfinite(float(xa.sum()))


def test_gan_study_smoke(tmp_path):
    """The study runs end to end on digits and its verdicts are computed from its own numbers."""
    from reprlab.studies.base import run_study

    r = run_study("gan", "smoke", tmp_path, progress=False)
    names = {f.path for f in r.figures}
    assert {"fd_vs_epoch.png", "d_dynamics.png", "critic_dynamics.png", "samples_non-saturating.png"} <= names
    assert all((tmp_path / "gan" / n).is_file() for n in names)
    floor = r.data["floor"]["fd"]
    for obj, scores in r.data["scores"].items():
        assert scores[0]["fd"] > floor >= 0  # two epochs of a tiny GAN do not beat real images
        assert 1 <= scores[0]["coverage"] <= 10 and sum(scores[0]["hist"]) == pytest.approx(1.0)
    # the best objective is the one with the lowest mean validation FD; Target 3 tests its test FD by the 2σ rule
    best = r.data["best"]
    fd_val = {o: np.mean([s["fd_val"] for s in sc]) for o, sc in r.data["scores"].items()}
    assert best == min(fd_val, key=fd_val.get) and len(r.data["scores"][best]) == 3
    m, sd = (
        np.mean([s["fd"] for s in r.data["scores"][best]]),
        np.std([s["fd"] for s in r.data["scores"][best]], ddof=1),
    )
    t3 = next(f for f in r.findings if f.claim.startswith("Target 3"))
    want = "supported" if m + 2 * sd <= 5 * floor else ("not supported" if m - 2 * sd > 5 * floor else "inconclusive")
    assert t3.verdict == want
