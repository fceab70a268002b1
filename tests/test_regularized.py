"""Sparse and denoising autoencoders: the penalty, the corruptions, and what training does."""

import pytest
import torch

from reprlab.config import TrainerConfig
from reprlab.data import load_images
from reprlab.data.batches import TensorBatches
from reprlab.errors import ConfigError
from reprlab.models.regularized import corrupt, kl_sparsity
from reprlab.registry import create_model
from reprlab.train.engine import Trainer, seed_everything


# ---------------------------------------------------------------- sparsity penalty
@pytest.mark.parametrize("rho", [0.01, 0.05, 0.3, 0.9])
def test_sparsity_penalty_is_zero_at_target(rho):
    assert float(kl_sparsity(torch.full((16,), rho), rho)) == pytest.approx(0.0, abs=1e-6)


def test_sparsity_penalty_matches_bernoulli_kl_formula():
    # KL(0.05 || 0.2) = 0.05 log(0.05/0.2) + 0.95 log(0.95/0.8) = 0.093943...
    assert float(kl_sparsity(torch.tensor([0.2]), 0.05)) == pytest.approx(0.0939430, rel=1e-5)
    assert float(kl_sparsity(torch.tensor([0.2, 0.2]), 0.05)) == pytest.approx(2 * 0.0939430, rel=1e-5)


def test_sparsity_gradient_pushes_mean_activation_toward_rho():
    rho = 0.05
    rho_hat = torch.tensor([0.5, 0.2, 0.06, 0.04, 0.01], requires_grad=True)
    kl_sparsity(rho_hat, rho).backward()
    g = rho_hat.grad
    # gradient descent moves rho_hat - lr * g: down where rho_hat > rho, up where it is below
    assert (g[:3] > 0).all() and (g[3:] < 0).all()
    # and a small step lowers the penalty
    with torch.no_grad():
        after = kl_sparsity(rho_hat - 1e-3 * g, rho)
    assert float(after) < float(kl_sparsity(rho_hat.detach(), rho))


def test_sparse_autoencoder_reaches_target_activation_on_digits():
    d = load_images("digits")
    x = d.train[0]
    cfg = TrainerConfig(epochs=25, batch_size=64, lr=3e-3, progress=False, tensorboard=False)
    acts = {}
    for w in (0.0, 0.05):
        seed_everything(0)
        m = create_model("sae_mlp", input_shape=(1, 8, 8), code_dim=32, hidden=(64,), rho=0.05, sparsity_weight=w)
        Trainer(cfg).fit(m, TensorBatches({"x": x}, 64))
        with torch.no_grad():
            acts[w] = float(m.encode(d.test[0]).mean())
    # without the penalty sigmoid codes sit far above 0.05; with it the mean is close to rho
    assert acts[0.0] > 0.2
    assert abs(acts[0.05] - 0.05) < 0.03


def test_l1_option_adds_a_term():
    m = create_model("sae_mlp", input_shape=(1, 8, 8), code_dim=8, hidden=(16,), l1_weight=0.1)
    out = m.loss({"x": torch.rand(4, 1, 8, 8)})
    expected = out["recon"] + 0.01 * out["sparsity_kl"] + 0.1 * out["l1"]
    assert float(out["loss"].detach()) == pytest.approx(float(expected), rel=1e-5)


# ---------------------------------------------------------------- corruption
def test_masking_zeroes_the_configured_fraction():
    x = torch.full((200_000,), 0.7)
    y = corrupt(x, "masking", 0.3, torch.Generator().manual_seed(0))
    assert float((y == 0).float().mean()) == pytest.approx(0.3, abs=0.005)
    assert torch.equal(y[y != 0], x[y != 0])  # kept values are untouched


def test_gaussian_noise_has_configured_std_and_zero_mean():
    x = torch.full((200_000,), 0.5)
    noise = corrupt(x, "gaussian", 0.2, torch.Generator().manual_seed(0)) - x
    assert float(noise.mean()) == pytest.approx(0.0, abs=0.003)
    assert float(noise.std()) == pytest.approx(0.2, rel=0.01)


def test_salt_and_pepper_replaces_the_configured_fraction_half_each():
    x = torch.full((200_000,), 0.5)
    y = corrupt(x, "salt_pepper", 0.4, torch.Generator().manual_seed(0))
    assert float((y != 0.5).float().mean()) == pytest.approx(0.4, abs=0.005)
    assert float((y == 1).float().mean()) == pytest.approx(0.2, abs=0.005)
    assert float((y == 0).float().mean()) == pytest.approx(0.2, abs=0.005)


@pytest.mark.parametrize("kind", ["gaussian", "masking", "salt_pepper"])
def test_level_zero_changes_nothing_and_out_of_range_is_refused(kind):
    x = torch.rand(100)
    assert torch.equal(corrupt(x, kind, 0.0), x)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        corrupt(x, kind, 1.5)


def test_denoising_ae_corrupts_only_in_training():
    seed_everything(0)
    m = create_model("dae_mlp", input_shape=(1, 8, 8), code_dim=4, hidden=(16,), corruption="masking", noise=0.5)
    x = torch.rand(32, 1, 8, 8)
    m.eval()
    assert torch.equal(m.loss({"x": x})["loss"], m.loss({"x": x})["loss"])  # clean input: deterministic
    m.train()
    assert not torch.equal(m.loss({"x": x})["loss"], m.loss({"x": x})["loss"])  # fresh corruption each call


def test_denoising_ae_is_more_robust_to_noise_than_plain_ae():
    d = load_images("digits")
    x, x_te = d.train[0], d.test[0]
    noisy = corrupt(x_te, "masking", 0.4, torch.Generator().manual_seed(0))
    cfg = TrainerConfig(epochs=30, batch_size=64, lr=3e-3, progress=False, tensorboard=False)
    errs = {}
    for name, extra in (("ae_mlp", {}), ("dae_mlp", {"corruption": "masking", "noise": 0.4})):
        seed_everything(0)
        m = create_model(name, input_shape=(1, 8, 8), code_dim=16, hidden=(64,), **extra)
        Trainer(cfg).fit(m, TensorBatches({"x": x}, 64))
        with torch.no_grad():
            errs[name] = float(((m(noisy) - x_te) ** 2).mean())
    assert errs["dae_mlp"] < 0.8 * errs["ae_mlp"], errs


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "name, key, value, expect",
    [
        ("sae_mlp", "rho", 0.0, "model.rho must be in (0, 1)"),
        ("sae_mlp", "rho", 1.0, "model.rho must be in (0, 1)"),
        ("sae_mlp", "sparsity_weight", -1.0, "sparsity_weight must be >= 0"),
        ("dae_mlp", "noise", 1.5, "model.noise must be in [0, 1]"),
        ("dae_mlp", "noise", -0.1, "model.noise must be in [0, 1]"),
    ],
)
def test_bad_config_values(name, key, value, expect):
    with pytest.raises(ConfigError) as e:
        create_model(name, **{key: value})
    assert expect in str(e.value)


@pytest.mark.parametrize(
    "args, expect",
    [
        (["train", "sae_mlp", "--model.rho=1.5"], "model.rho must be in (0, 1)"),
        (["train", "dae_mlp", "--model.noise=2"], "model.noise must be in [0, 1]"),
        (["train", "dae_mlp", "--model.corruption=blur"], "choose one of: gaussian, masking, salt_pepper"),
    ],
)
def test_cli_bad_values_exit_2_one_line(cli, digits_args, args, expect):
    rc, _, err = cli(*args, *digits_args)
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert rc == 2 and len(lines) == 1 and expect in lines[0] and "Traceback" not in err
