"""Any data shape: the conv models (ae_conv, vae_conv, dcgan) at 28, 32 and 64 pixels with 1 or 3 channels,
the MLP models at any feature width (tables of D features, flattened RGB images), refusals in one line,
and the 28x28 / 8x8 defaults left exactly as they were."""

import pytest
import torch

from reprlab.config import TrainerConfig
from reprlab.data.batches import TensorBatches
from reprlab.errors import ConfigError
from reprlab.models.gan import stages
from reprlab.registry import create_model
from reprlab.train.checkpoint import apply_weights, load_weights, save_weights
from reprlab.train.engine import Trainer, seed_everything

CONV_MODELS = ["ae_conv", "vae_conv", "dcgan"]
IMAGE_SHAPES = [(1, 28, 28), (3, 32, 32), (1, 32, 32), (3, 64, 64), (1, 64, 64)]


def _one_engine_step(model, batch):
    Trainer(TrainerConfig(epochs=1, max_steps=1, batch_size=4, progress=False, tensorboard=False)).fit(
        model, TensorBatches(batch, 4, shuffle=False)
    )


def _changed(before: dict, module: torch.nn.Module) -> list[str]:
    after = module.state_dict()
    return [k for k in before if not torch.equal(before[k], after[k])]


def _snapshot(module: torch.nn.Module) -> dict:
    return {k: v.clone() for k, v in module.state_dict().items()}


@torch.no_grad()
def _outputs(model, x: torch.Tensor) -> torch.Tensor:
    """A deterministic output in data space: the reconstruction (AE/VAE) or G's images of fixed codes (GAN)."""
    model.eval()
    if model.registry_name == "dcgan":
        return model.decode(torch.randn(len(x), model.config.latent_dim, generator=torch.Generator().manual_seed(3)))
    return model.reconstruct(x)


# ----------------------------------------------------------------------------- conv models at any image size
@pytest.mark.parametrize("shape", IMAGE_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", CONV_MODELS)
def test_conv_model_builds_trains_and_round_trips(name, shape, tmp_path):
    seed_everything(0)
    model = create_model(name, input_shape=shape)
    batch = model.example_batch(8, torch.Generator().manual_seed(0))
    assert batch["x"].shape == (8, *shape)

    model.eval()
    with torch.no_grad():
        out = model.loss(batch)
    assert torch.isfinite(out["loss"]) and all(torch.isfinite(v).all() for v in out.values())

    # the decoder (or generator) gives images of the input's shape; samples are images in [0, 1]
    x = batch["x"]
    assert _outputs(model, x).shape == x.shape
    if name == "ae_conv":
        assert model.decode(model.encode(x)).shape == x.shape
    else:
        s = model.sample(5, torch.Generator().manual_seed(1))
        assert s.shape == (5, *shape)
        assert float(s.min()) >= 0.0 and float(s.max()) <= 1.0

    before = _snapshot(model)
    model.train()
    _one_engine_step(model, batch)
    changed = _changed(before, model)
    assert changed, f"{name} at {shape}: one engine step changed no weights"
    if name == "dcgan":  # D and G both take their step (n_critic=1)
        assert any(k.startswith("discriminator.") for k in changed)
        assert any(k.startswith("generator.") for k in changed)

    save_weights(tmp_path / "m.safetensors", model)
    twin = create_model(name, input_shape=shape)
    apply_weights(twin, load_weights(tmp_path / "m.safetensors"), "test")
    assert torch.equal(_outputs(model, x), _outputs(twin, x))


@pytest.mark.parametrize("name", ["vae_conv", "dcgan"])
def test_rgb_samples_keep_their_channels_apart(name):
    """An RGB model's samples are (B, 3, H, W) and its three channels are different images, not one grey copy."""
    seed_everything(0)
    model = create_model(name, input_shape=(3, 32, 32))
    s = model.sample(4, torch.Generator().manual_seed(0))
    assert s.shape == (4, 3, 32, 32)
    assert not torch.equal(s[:, 0], s[:, 1]) and not torch.equal(s[:, 1], s[:, 2])


@pytest.mark.parametrize("name", ["ae_conv", "vae_conv"])
@pytest.mark.parametrize("shape", [(3, 30, 30), (2, 17, 40), (1, 4, 4)])
def test_conv_autoencoders_crop_to_any_size_of_at_least_four(name, shape):
    """Sizes that are not a multiple of 4 work: halving rounds up and the decoder's output is cropped."""
    model = create_model(name, input_shape=shape)
    x = model.example_batch(3, torch.Generator().manual_seed(0))["x"]
    assert model.reconstruct(x).shape == (3, *shape)
    assert torch.isfinite(model.loss({"x": x})["loss"])


@pytest.mark.parametrize(
    "name, shape, rule",
    [
        ("ae_conv", (1, 2, 2), "at least 4 pixels"),
        ("ae_conv", (3, 40, 3), "at least 4 pixels"),
        ("vae_conv", (1, 3, 3), "at least 4 pixels"),
        ("dcgan", (3, 30, 30), "divisible by 4"),
        ("dcgan", (1, 28, 30), "divisible by 4"),
        ("dcgan", (3, 2, 2), "divisible by 4"),
    ],
)
def test_sizes_a_model_cannot_build_for_are_refused_naming_the_sizes_that_work(name, shape, rule):
    with pytest.raises(ConfigError) as e:
        create_model(name, input_shape=shape)
    msg = str(e.value)
    assert "\n" not in msg
    assert rule in msg and f"{shape[1]}x{shape[2]} pixels" in msg
    assert "(1, 28, 28), (3, 32, 32), (3, 64, 64)" in msg


def test_conv_rule_follows_the_number_of_stages():
    """Three stride-2 stages need at least 8 pixels; 8 itself builds."""
    with pytest.raises(ConfigError, match="at least 8 pixels"):
        create_model("ae_conv", input_shape=(1, 7, 7), channels=(8, 8, 8))
    assert create_model("ae_conv", input_shape=(1, 8, 8), channels=(8, 8, 8)).feat_shape == (8, 1, 1)


@pytest.mark.parametrize("name", CONV_MODELS)
@pytest.mark.parametrize("shape", [(784,), (3, 28), (0, 28, 28)])
def test_conv_models_refuse_non_images(name, shape):
    with pytest.raises(ConfigError, match=r"needs images \(C, H, W\)"):
        create_model(name, input_shape=shape)


@pytest.mark.parametrize(
    "hw, n, start",
    [((8, 8), 2, (2, 2)), ((28, 28), 2, (7, 7)), ((32, 32), 3, (4, 4)), ((48, 48), 3, (6, 6)), ((64, 64), 4, (4, 4))],
)
def test_dcgan_stages_and_generator_start(hw, n, start):
    """G starts from a 1x1 -> (H/2^n, W/2^n) projection: 7x7 at 28 px as before, 4x4 at 32 and 64 px."""
    assert stages(*hw) == n
    m = create_model("dcgan", input_shape=(3, *hw), g_channels=4, d_channels=4, latent_dim=8)
    first = m.generator.net[0]
    assert tuple(first.kernel_size) == start
    n_up = sum(isinstance(layer, torch.nn.ConvTranspose2d) for layer in m.generator.net)
    n_down = sum(isinstance(layer, torch.nn.Conv2d) for layer in m.discriminator.net)
    assert n_up == n + 1 and n_down == n  # the projection plus n upsamplings; D mirrors them
    widths = [layer.out_channels for layer in m.discriminator.net if isinstance(layer, torch.nn.Conv2d)]
    assert widths == [4 * 2 ** min(i, 3) for i in range(n)]


def test_dcgan_non_square_images():
    m = create_model("dcgan", input_shape=(3, 32, 64), g_channels=4, d_channels=4, latent_dim=8)
    assert stages(32, 64) == 3
    assert m.sample(2, torch.Generator().manual_seed(0)).shape == (2, 3, 32, 64)
    assert m.discriminator(torch.zeros(2, 3, 32, 64)).shape == (2,)


# ----------------------------------------------------------------------------- Bernoulli/BCE data range
@pytest.mark.parametrize(
    "name, kw, fix",
    [
        ("vae_conv", {}, "--model.likelihood=gaussian"),
        ("ae_conv", {"loss": "bce"}, "--model.loss=mse --model.output=identity"),
        ("ae_conv", {}, "--model.loss=mse --model.output=identity"),
    ],
)
def test_bernoulli_and_sigmoid_models_refuse_rgb_data_outside_unit_interval(name, kw, fix):
    model = create_model(name, input_shape=(3, 32, 32), **kw)
    x = torch.rand(4, 3, 32, 32)
    x[:, 2] += 0.5  # only the blue channel leaves [0, 1]
    with pytest.raises(ConfigError, match="needs data in \\[0, 1\\]") as e:
        model.loss({"x": x})
    assert fix in str(e.value) and "\n" not in str(e.value)
    model.loss({"x": x.clamp(0, 1)})  # the same data in range trains


# ----------------------------------------------------------------------------- MLP models at any feature width
# settings for standardized tables (values of either sign): Gaussian/MSE/identity options
TABLE_SETTINGS = {
    "ae_mlp": {"loss": "mse", "output": "identity"},
    "sae_mlp": {"loss": "mse", "output": "identity"},
    "dae_mlp": {"loss": "mse", "output": "identity"},
    "vae_mlp": {"likelihood": "gaussian"},
    "dense_ae_layer": {"loss": "mse", "output": "identity"},
    "rbm": {"visible": "gaussian"},
    "stacked_classifier": {},
}
MLP_MODELS = list(TABLE_SETTINGS)


def _table(n: int, d: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    x = (x - x.mean(0)) / x.std(0)  # standardized columns, as the table reader gives them
    return {"x": x, "y": torch.randint(0, 10, (n,), generator=g)}


@pytest.mark.parametrize("case", ["table7", "rgb32"])
@pytest.mark.parametrize("name", MLP_MODELS)
def test_mlp_models_take_any_feature_width(name, case, tmp_path):
    seed_everything(0)
    if case == "table7":
        shape, kw = (7,), TABLE_SETTINGS[name]
        model = create_model(name, input_shape=shape, **kw)
        batch = _table(8, 7, 0)
    else:
        shape, kw = (3, 32, 32), {}
        model = create_model(name, input_shape=shape)
        batch = model.example_batch(8, torch.Generator().manual_seed(0))
    x = batch["x"]
    assert x.shape == (8, *shape)
    model.eval()
    with torch.no_grad():
        out = model.loss(batch)
        y = model(x)
    assert all(torch.isfinite(v).all() for v in out.values())
    assert y.shape == ((8, 10) if name == "stacked_classifier" else x.shape)

    before = _snapshot(model)
    model.train()
    _one_engine_step(model, batch)
    assert _changed(before, model), f"{name} at {shape}: one engine step changed no weights"

    save_weights(tmp_path / "m.safetensors", model)
    twin = create_model(name, input_shape=shape, **kw)
    apply_weights(twin, load_weights(tmp_path / "m.safetensors"), "test")
    model.eval()
    twin.eval()
    with torch.no_grad():
        assert torch.equal(model(x), twin(x))


@pytest.mark.parametrize(
    "name, fix",
    [
        ("ae_mlp", "--model.loss=mse --model.output=identity"),
        ("sae_mlp", "--model.loss=mse --model.output=identity"),
        ("dae_mlp", "--model.loss=mse --model.output=identity"),
        ("dense_ae_layer", "--model.loss=mse --model.output=identity"),
        ("vae_mlp", "--model.likelihood=gaussian"),
        ("rbm", "--model.visible=gaussian"),
    ],
)
def test_standardized_tables_with_unit_interval_defaults_are_refused_naming_the_setting(name, fix):
    model = create_model(name, input_shape=(7,))
    with pytest.raises(ConfigError) as e:
        model.loss(_table(8, 7, 1))
    msg = str(e.value)
    assert "needs data in [0, 1]" in msg and fix in msg and "\n" not in msg


def test_identity_output_needs_mse():
    with pytest.raises(ConfigError, match="model.loss=bce needs model.output=sigmoid"):
        create_model("dense_ae_layer", input_shape=(7,), loss="bce", output="identity")


def test_dense_ae_layer_identity_output_reaches_negative_values():
    m = create_model("dense_ae_layer", input_shape=(7,), hidden=4, loss="mse", output="identity")
    with torch.no_grad():
        m.decoder.bias.fill_(-3.0)
        y = m(torch.zeros(2, 7))
        assert float(y.max()) < 0 and torch.equal(m.decode(m.encode(torch.zeros(2, 7))), y)


# ----------------------------------------------------------------------------- the Gaussian-Bernoulli RBM
@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_rbm_free_energy_matches_summing_out_the_hidden_units(visible):
    """F(v) = -log sum_h exp(-E(v, h)), by enumerating all 2^3 hidden states."""
    torch.manual_seed(0)
    m = create_model("rbm", input_shape=(4,), hidden=3, visible=visible).double()
    with torch.no_grad():
        m.W.normal_(0, 0.7), m.b.normal_(0, 0.5), m.c.normal_(0, 0.5)
    v = torch.rand(5, 4, dtype=torch.float64) if visible == "bernoulli" else torch.randn(5, 4, dtype=torch.float64)
    hs = torch.tensor([[(i >> j) & 1 for j in range(3)] for i in range(8)], dtype=torch.float64)  # (8, 3)
    vis = -(v @ m.b) if visible == "bernoulli" else 0.5 * (v - m.b).pow(2).sum(1)  # (5,)
    energy = vis[:, None] - hs @ m.c - (v @ m.W.t()) @ hs.t()  # (5, 8): E(v, h) for every h
    expected = -torch.logsumexp(-energy, dim=1)
    assert torch.allclose(m.free_energy(v), expected, atol=1e-10)


def test_gaussian_rbm_visible_samples_are_unit_variance_around_the_mean():
    torch.manual_seed(0)
    m = create_model("rbm", input_shape=(3,), hidden=2, visible="gaussian")
    h = torch.tensor([[1.0, 0.0]]).expand(20000, 2)
    mean = m.visible_probs(h)
    assert torch.allclose(mean[0], m.b + m.W[0], atol=1e-6)
    v = m.sample_visible_units(mean)
    assert torch.allclose(v.mean(0), mean[0], atol=0.03)
    assert torch.allclose(v.var(0), torch.ones(3), atol=0.05)


@pytest.mark.parametrize("persistent", [False, True])
def test_gaussian_rbm_learns_a_standardized_table(persistent):
    """CD-1 / PCD on 7 standardized correlated columns: the mean-field reconstruction error falls well below the
    error of predicting every value by its column mean (about 1 for standardized data)."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(512, 2, generator=g)
    x = z @ torch.randn(2, 7, generator=g) + 0.3 * torch.randn(512, 7, generator=g)
    x = (x - x.mean(0)) / x.std(0)
    seed_everything(0)
    m = create_model("rbm", input_shape=(7,), hidden=16, visible="gaussian", persistent=persistent)
    m.eval()
    with torch.no_grad():
        before = float(m.eval_step({"x": x})["recon"])
    Trainer(TrainerConfig(epochs=30, batch_size=64, lr=1e-2, progress=False, tensorboard=False)).fit(
        m, TensorBatches({"x": x}, 64, seed=0)
    )
    m.eval()
    with torch.no_grad():
        after = float(m.eval_step({"x": x})["recon"])
    assert before > 0.9 and after < 0.3 * before, (before, after)  # measured: 0.997 -> 0.108 (CD), 0.190 (PCD)


# ----------------------------------------------------------------------------- the defaults did not change
# Parameter count and, per state_dict entry, (shape, first value at torch.manual_seed(0)) of the default
# models, computed once from the code at commit 77baa51 (before any-shape support) with:
#   torch.manual_seed(0); m = create_model(name, **kw)
#   {k: (tuple(v.shape), round(float(v.flatten()[0]), 6)) for k, v in m.state_dict().items()}
# Equal shapes, names and first values mean the same layers, created and initialized in the same order,
# so existing runs load and existing results reproduce.
_BN = {"running_mean": 0.0, "running_var": 1.0, "num_batches_tracked": 0.0}


def _bn(prefix: str, n: int, w0: float) -> dict:
    return {
        f"{prefix}.weight": ((n,), w0),
        f"{prefix}.bias": ((n,), 0.0),
        **{f"{prefix}.{k}": (((n,) if k != "num_batches_tracked" else ()), v) for k, v in _BN.items()},
    }


DEFAULTS_AT_77BAA51 = {
    ("ae_conv", ()): (
        256001,
        {
            "encoder.0.weight": ((32, 1, 3, 3), -0.002496),
            "encoder.0.bias": ((32,), -0.076225),
            "encoder.2.weight": ((64, 32, 3, 3), 0.004922),
            "encoder.2.bias": ((64,), 0.005928),
            "encoder.5.weight": ((32, 3136), -0.007031),
            "encoder.5.bias": ((32,), 0.016299),
            "fc.weight": ((3136, 32), -0.110048),
            "fc.bias": ((3136,), 0.021469),
            "decoder.0.weight": ((64, 32, 4, 4), 0.002575),
            "decoder.0.bias": ((32,), 0.035327),
            "decoder.2.weight": ((32, 1, 4, 4), -0.20797),
            "decoder.2.bias": ((1,), 0.102637),
        },
    ),
    ("vae_conv", ()): (
        431665,
        {
            "encoder.0.weight": ((32, 1, 3, 3), -0.002496),
            "encoder.0.bias": ((32,), -0.076225),
            "encoder.2.weight": ((64, 32, 3, 3), 0.004922),
            "encoder.2.bias": ((64,), 0.005928),
            "to_params.weight": ((80, 3136), -0.007031),
            "to_params.bias": ((80,), -0.000669),
            "fc.weight": ((3136, 40), -0.028515),
            "fc.bias": ((3136,), 0.021108),
            "decoder.0.weight": ((64, 32, 4, 4), -0.008557),
            "decoder.0.bias": ((32,), -0.003507),
            "decoder.2.weight": ((32, 1, 4, 4), -0.120706),
            "decoder.2.bias": ((1,), 0.233339),
        },
    ),
    ("dcgan", ()): (
        1468482,
        {
            "generator.net.0.weight": ((64, 256, 7, 7), 1.1e-05),
            **_bn("generator.net.1", 256, 0.993415),
            "generator.net.3.weight": ((256, 128, 4, 4), 0.006764),
            **_bn("generator.net.4", 128, 1.014957),
            "generator.net.6.weight": ((128, 1, 4, 4), -0.01413),
            "generator.net.6.bias": ((1,), 0.0),
            "discriminator.net.0.weight": ((64, 1, 4, 4), 0.0095),
            "discriminator.net.0.bias": ((64,), 0.0),
            "discriminator.net.2.weight": ((128, 64, 4, 4), 0.04335),
            "discriminator.net.2.bias": ((128,), 0.0),
            "discriminator.net.5.weight": ((1, 6272), -0.003544),
            "discriminator.net.5.bias": ((1,), 0.0),
        },
    ),
    ("dcgan", (("input_shape", (1, 8, 8)),)): (  # the digits dataset
        725442,
        {
            "generator.net.0.weight": ((64, 256, 2, 2), 0.032542),
            **_bn("generator.net.1", 256, 1.03463),
            "generator.net.3.weight": ((256, 128, 4, 4), -0.016847),
            **_bn("generator.net.4", 128, 1.033214),
            "generator.net.6.weight": ((128, 1, 4, 4), -0.002979),
            "generator.net.6.bias": ((1,), 0.0),
            "discriminator.net.0.weight": ((64, 1, 4, 4), -0.018987),
            "discriminator.net.0.bias": ((64,), 0.0),
            "discriminator.net.2.weight": ((128, 64, 4, 4), -0.015431),
            "discriminator.net.2.bias": ((128,), 0.0),
            "discriminator.net.5.weight": ((1, 512), 0.005901),
            "discriminator.net.5.bias": ((1,), 0.0),
        },
    ),
    ("dcgan", (("input_shape", (3, 28, 28)),)): (1474628, None),  # fashion-m: the count only
}


@pytest.mark.parametrize("key", list(DEFAULTS_AT_77BAA51), ids=lambda k: k[0] + "".join(str(v) for _, v in k[1]))
def test_default_architectures_are_unchanged(key):
    name, kw = key
    count, entries = DEFAULTS_AT_77BAA51[key]
    torch.manual_seed(0)
    m = create_model(name, **dict(kw))
    assert sum(p.numel() for p in m.parameters()) == count
    if entries is None:
        return
    got = {k: (tuple(v.shape), round(float(v.flatten()[0]), 6)) for k, v in m.state_dict().items()}
    assert list(got) == list(entries)  # same names in the same order
    assert got == entries
