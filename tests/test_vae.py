"""VAEs: the closed-form KL, the IWAE bound, binarization, warm-up, sampling, and the CLI."""

import json
import math

import pytest
import torch

from reprlab.config import TrainerConfig
from reprlab.data import load_images
from reprlab.data.batches import TensorBatches
from reprlab.errors import ConfigError
from reprlab.metrics.nll import iwae_log_likelihood, iwae_nll
from reprlab.models.vae import gaussian_kl, gaussian_log_prob
from reprlab.registry import create_model
from reprlab.train.engine import Trainer, seed_everything


def one_line(err: str) -> str:
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def digits():
    return load_images("digits")


@pytest.fixture(scope="module")
def trained_vae(digits):
    """A small VAE trained for a few seconds on digits (dynamically binarized)."""
    seed_everything(0)
    m = create_model("vae_mlp", input_shape=(1, 8, 8), latent_dim=4, hidden=(64,), binarize=True)
    Trainer(TrainerConfig(epochs=15, batch_size=64, lr=3e-3, progress=False, tensorboard=False)).fit(
        m, TensorBatches({"x": digits.train[0]}, 64)
    )
    return m.eval()


# ---------------------------------------------------------------- KL and the bound
def test_closed_form_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g) * 0.7
    z = mu + torch.exp(0.5 * logvar) * torch.randn(200_000, 5, 3, generator=g)  # z ~ q
    per_sample = gaussian_log_prob(z, mu, logvar) - gaussian_log_prob(z)  # log q - log p, (S, 5)
    mc, se = per_sample.mean(0), per_sample.std(0) / math.sqrt(len(z))
    exact = gaussian_kl(mu, logvar)
    assert (exact >= 0).all()
    assert ((mc - exact).abs() < 4 * se + 1e-3).all(), (mc, exact, se)


def test_gaussian_log_prob_matches_torch_distributions():
    z, mu, logvar = torch.randn(7, 3), torch.randn(7, 3), torch.randn(7, 3)
    ref = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    assert torch.allclose(gaussian_log_prob(z, mu, logvar), ref, atol=1e-5)


def test_iwae_k1_equals_elbo_in_expectation(trained_vae, digits):
    m = trained_vae
    x = m.prepare(digits.test[0][:64], torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    with torch.no_grad():
        l1 = torch.stack([iwae_log_likelihood(m, x, 1) for _ in range(400)])  # (400, 64)
        neg_elbo = torch.stack([m.loss({"x": x})["neg_elbo"] for _ in range(400)])  # closed-form KL
    mean_l1, se = float(l1.mean()), float(l1.mean(1).std() / math.sqrt(len(l1)))
    assert mean_l1 == pytest.approx(-float(neg_elbo.mean()), abs=4 * se + 0.05)


def test_iwae_bound_rises_with_k(trained_vae, digits):
    x = digits.test[0][:200]
    nll = {k: iwae_nll(trained_vae, x, k, seed=3) for k in (1, 10, 100)}
    # a tighter bound gives a lower NLL estimate; averaged over 200 images the gaps are clear
    assert nll[1] > nll[10] > nll[100], nll
    assert nll[1] - nll[100] > 0.1
    # and the estimate is repeatable
    assert iwae_nll(trained_vae, x, 10, seed=3) == nll[10]


@pytest.mark.parametrize("hidden, gated", [((64,), False), ((32, 32), True)])
def test_training_lowers_test_nll(digits, hidden, gated):
    seed_everything(0)
    m = create_model("vae_mlp", input_shape=(1, 8, 8), latent_dim=4, hidden=hidden, gated=gated, binarize=True)
    if gated:  # gated layers replace the ReLUs
        assert not any(isinstance(layer, torch.nn.ReLU) for layer in m.modules())
    x = digits.test[0][:200]
    before = iwae_nll(m, x, 10)
    Trainer(TrainerConfig(epochs=5, batch_size=64, lr=3e-3, progress=False, tensorboard=False)).fit(
        m, TensorBatches({"x": digits.train[0]}, 64)
    )
    after = iwae_nll(m, x, 10)
    assert m.sample(3).shape == (3, 1, 8, 8)
    # 64 pixels at chance cost 64 log 2 = 44 nats; a trained model does far better
    assert before > 40 and after < 0.75 * before, (before, after)


def test_gated_layer_is_a_linear_part_times_a_sigmoid_gate():
    from reprlab.models.vae import GatedLinear

    torch.manual_seed(0)
    g = GatedLinear(5, 3)
    x = torch.randn(4, 5)
    w, b = g.linear.weight, g.linear.bias
    expected = (x @ w[:3].T + b[:3]) * torch.sigmoid(x @ w[3:].T + b[3:])
    assert torch.allclose(g(x), expected, atol=1e-6)


# ---------------------------------------------------------------- data handling and schedules
def test_dynamic_binarization_draws_fresh_bits_with_the_right_mean():
    m = create_model("vae_mlp", input_shape=(1, 8, 8), latent_dim=2, hidden=(8,), binarize=True).train()
    x = torch.full((500, 1, 8, 8), 0.3)
    a, b = m.prepare(x), m.prepare(x)
    assert set(a.unique().tolist()) <= {0.0, 1.0} and not torch.equal(a, b)
    assert float(a.mean()) == pytest.approx(0.3, abs=0.01)
    m.eval()
    assert torch.equal(m.prepare(x), m.prepare(x))  # fixed bits when evaluating


def test_kl_warmup_ramps_linearly_to_beta():
    m = create_model("vae_mlp", input_shape=(1, 8, 8), latent_dim=2, hidden=(8,), beta=2.0, kl_warmup=10)
    assert m.kl_weight == 0.0
    m.on_train_step_start(0, 100)
    assert m.kl_weight == pytest.approx(0.2)
    m.on_train_step_start(4, 100)
    assert m.kl_weight == pytest.approx(1.0)
    m.on_train_step_start(50, 100)
    assert m.kl_weight == pytest.approx(2.0)
    out = m.loss({"x": torch.rand(8, 1, 8, 8)})
    assert float(out["loss"].detach()) == pytest.approx(float(out["recon"] + 2.0 * out["kl"]), rel=1e-5)


def test_bernoulli_refuses_data_outside_unit_interval():
    m = create_model("vae_mlp", input_shape=(1, 8, 8), latent_dim=2, hidden=(8,))
    with pytest.raises(ConfigError, match=r"likelihood=bernoulli needs data in \[0, 1\]"):
        m.loss({"x": torch.randn(4, 1, 8, 8) * 3})
    g = create_model("vae_mlp", input_shape=(1, 8, 8), latent_dim=2, hidden=(8,), likelihood="gaussian")
    assert torch.isfinite(g.loss({"x": torch.randn(4, 1, 8, 8) * 3})["loss"])


def test_binarize_needs_bernoulli():
    with pytest.raises(ConfigError, match="binarize"):
        create_model("vae_mlp", likelihood="gaussian", binarize=True)


# ---------------------------------------------------------------- generation
@pytest.mark.parametrize(
    "name, shape", [("vae_mlp", (1, 28, 28)), ("vae_conv", (1, 28, 28)), ("vae_conv", (3, 10, 12))]
)
def test_sample_shapes_and_range(name, shape):
    m = create_model(name, input_shape=shape, latent_dim=3)
    s = m.sample(6, torch.Generator().manual_seed(0))
    assert s.shape == (6, *shape) and float(s.min()) >= 0 and float(s.max()) <= 1
    assert torch.equal(s, m.sample(6, torch.Generator().manual_seed(0)))
    w = m.latent_walk(10, torch.Generator().manual_seed(0))
    assert w.shape == (10, *shape)


def test_interpolation_ends_at_the_reconstructions(trained_vae, digits):
    xa, xb = digits.test[0][:3], digits.test[0][3:6]
    path = trained_vae.interpolate(xa, xb, steps=5)
    assert path.shape == (3, 5, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(path[:, 0], trained_vae.reconstruct(xa), atol=1e-6)
        assert torch.allclose(path[:, -1], trained_vae.reconstruct(xb), atol=1e-6)
    assert trained_vae.interpolate(xa[0], xb[0], steps=4).shape == (4, 1, 8, 8)


def test_gaussian_likelihood_trains(digits):
    seed_everything(0)
    m = create_model("vae_conv", input_shape=(1, 8, 8), latent_dim=4, channels=(8, 16), likelihood="gaussian")
    x = digits.train[0]
    before = float(m.loss({"x": x})["neg_elbo"])
    Trainer(TrainerConfig(epochs=5, batch_size=64, lr=3e-3, progress=False, tensorboard=False)).fit(
        m, TensorBatches({"x": x}, 64)
    )
    m.eval()
    assert float(m.loss({"x": x})["neg_elbo"]) < before - 20


# ---------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    from reprlab.cli import main

    run = tmp_path_factory.mktemp("runs") / "vae"
    rc = main(
        [
            "train",
            "vae_mlp",
            "--data",
            "digits",
            "--epochs",
            "2",
            "--no-progress",
            "--trainer.tensorboard=false",
            "--model.latent_dim=3",
            "--model.hidden=32",
            "--model.binarize=true",
            "--out",
            str(run),
        ]
    )
    assert rc == 0
    return run


def test_cli_sample_and_interpolate(cli, vae_run, tmp_path):
    rc, out, err = cli("sample", vae_run, "-n", "16", "-o", tmp_path / "grid.png")
    assert rc == 0, err
    assert (tmp_path / "grid.png").stat().st_size > 500
    rc, out, err = cli("sample", vae_run, "-n", "16", "--interpolate", "-o", tmp_path / "walk.png")
    assert rc == 0 and (tmp_path / "walk.png").stat().st_size > 500, err


def test_cli_eval_reports_iwae_nll(cli, vae_run):
    rc, out, err = cli("eval", vae_run, "--nll-samples", "20")
    assert rc == 0, err
    m = json.loads(out)
    # the k=20 bound is at least as tight as the single-sample one, and both are in nats per image
    assert 0 < m["test/nll"] <= m["test/neg_elbo_iwae1"] + 0.5 and m["test/nll_samples"] == 20


def test_cli_eval_nll_on_a_model_without_likelihood(cli, digits_args, tmp_path):
    run = tmp_path / "sae"
    rc, _, err = cli(
        "train", "sae_mlp", *digits_args, "--epochs", "1", "--model.code_dim=4", "--model.hidden=16", "--out", run
    )
    assert rc == 0, err
    rc, _, err = cli("eval", run, "--nll-samples", "10")
    assert rc == 2 and "has no likelihood" in one_line(err)
    rc, _, err = cli("sample", run, "-o", tmp_path / "x.png")
    assert rc == 2 and "cannot sample" in one_line(err)
