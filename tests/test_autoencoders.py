import pytest
import torch

from reprlab.config import TrainerConfig
from reprlab.data import load_images
from reprlab.data.batches import TensorBatches
from reprlab.errors import ConfigError
from reprlab.registry import create_model
from reprlab.train.engine import Trainer, seed_everything


@pytest.mark.parametrize("name", ["ae_mlp", "ae_conv"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 10, 12)])
def test_shapes(name, shape):
    m = create_model(name, input_shape=shape, code_dim=5)
    x = torch.rand(4, *shape)
    assert m.encode(x).shape == (4, 5)
    with torch.no_grad():
        y = m(x)
    assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1


def test_bce_rejects_data_outside_unit_interval():
    m = create_model("ae_mlp", input_shape=(1, 8, 8), loss="bce")
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        m.loss({"x": torch.randn(4, 1, 8, 8) * 3})


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_training_lowers_reconstruction_error_on_digits(loss):
    d = load_images("digits")
    seed_everything(0)
    m = create_model("ae_mlp", input_shape=(1, 8, 8), code_dim=8, hidden=(64,), loss=loss)
    x_te = d.test[0]
    with torch.no_grad():
        before = float(((m(x_te) - x_te) ** 2).mean())
    Trainer(TrainerConfig(epochs=15, batch_size=64, progress=False, tensorboard=False)).fit(
        m, TensorBatches({"x": d.train[0]}, 64)
    )
    with torch.no_grad():
        after = float(((m(x_te) - x_te) ** 2).mean())
    # the mean image alone gives about 0.06 on digits; a trained 8-d code does far better
    baseline = float(((x_te - d.train[0].mean(0)) ** 2).mean())
    assert after < 0.5 * before and after < 0.6 * baseline
