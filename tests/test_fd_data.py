"""``reprlab fd`` on any labelled images: a feature classifier trained once on the data and cached by its content
fingerprint and input shape; unlabelled data needs Inception weights, and says so in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reprlab.config import TrainerConfig, to_dict
from reprlab.registry import create_model
from reprlab.train.engine import Trainer, seed_everything


def digits_folder(root, labelled=True, n=600):
    from sklearn.datasets import load_digits

    from reprlab.data.folders import write_image_folder

    x, y = load_digits(return_X_y=True)
    imgs = (x[:n].reshape(-1, 8, 8) * 255 / 16).round().astype(np.uint8)
    write_image_folder(root, imgs, y[:n] if labelled else None)
    return root


def vae_run(out, folder, epochs=3):
    """A small VAE trained on the folder's training part, recording the folder as ``reprlab train --data`` does."""
    from reprlab.data.folders import open_folder

    d = open_folder(folder, progress=False)
    tc = TrainerConfig(epochs=epochs, batch_size=32, progress=False, loggers=())
    seed_everything(0)
    m = create_model("vae_mlp", input_shape=d.input_shape, latent_dim=4, hidden=(64,))
    cfg = {"model": "vae_mlp", "model_config": to_dict(m.config), "trainer": to_dict(tc), "data": {"name": str(folder)}}
    with Trainer(tc, out, cfg) as t:
        t.fit(m, d.batches("train", 32))
    return out


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_fd_on_a_labelled_folder_trains_its_classifier_once(cli, tmp_path, cache):
    folder = digits_folder(tmp_path / "digits")
    run = vae_run(tmp_path / "run", folder)
    rc, out, err = cli("fd", run, "-n", "300", "--floor", "--kid-subsets", "5")
    assert rc == 0, err
    assert "training the FD-classifier of" in err  # the progress line of the one training
    res = json.loads(out)
    assert res["classes"] == [str(i) for i in range(10)] and str(folder) in res["data"]
    # measured: classifier accuracy 0.992 on the 120 test images; FD-classifier 28 (real floor) vs 2635 (samples)
    assert res["classifier_test_accuracy"] > 0.9  # digits are easy: the features mean something
    # real training images sit closer to the test images than three epochs of a tiny VAE's samples
    assert 0 <= res["real_floor"]["fd_classifier"] < res["samples"]["fd_classifier"]
    assert res["real_floor"]["classes_covered"] == 10
    cached = sorted(p.name for p in cache.glob("fd-classifier-*.safetensors"))
    assert len(cached) == 1
    # the second call loads the cached classifier: no training, the same numbers
    rc, out2, err2 = cli("fd", run, "-n", "300", "--floor", "--kid-subsets", "5")
    assert rc == 0, err2
    assert "training the FD-classifier" not in err2 and json.loads(out2) == res
    # a changed image is other data: a classifier of its own
    first = sorted(folder.rglob("*.png"))[0]
    from PIL import Image

    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(first)
    rc, _, err3 = cli("fd", run, "-n", "300", "--kid-subsets", "5")
    assert rc == 0 and "training the FD-classifier of" in err3, err3
    assert len(list(cache.glob("fd-classifier-*.safetensors"))) == 2


def test_fd_of_a_builtin_run_uses_its_own_data(cli, tmp_path, cache):
    tc = TrainerConfig(epochs=1, batch_size=64, progress=False, loggers=())
    from reprlab.data import load_images
    from reprlab.data.batches import TensorBatches

    d = load_images("digits")
    seed_everything(0)
    m = create_model("vae_mlp", input_shape=(1, 8, 8), latent_dim=4, hidden=(32,))
    cfg = {"model": "vae_mlp", "model_config": to_dict(m.config), "trainer": to_dict(tc), "data": {"name": "digits"}}
    with Trainer(tc, tmp_path / "run", cfg) as t:
        t.fit(m, TensorBatches({"x": d.train[0]}, 64))
    rc, out, err = cli("fd", tmp_path / "run", "-n", "200", "--kid-subsets", "3", "--no-progress")
    assert rc == 0, err
    res = json.loads(out)
    assert res["data"] == "digits test set" and len(res["samples"]["class_shares"]) == 10


def test_fd_on_unlabelled_images_asks_for_inception_weights(cli, capsys, tmp_path, cache):
    labelled = digits_folder(tmp_path / "lab")
    run = vae_run(tmp_path / "run", labelled, epochs=1)
    plain = digits_folder(tmp_path / "plain", labelled=False)
    capsys.readouterr()  # the training's own lines
    rc, out, err = cli("fd", run, "--data", plain)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and "--inception-weights" in lines[0] and "no labels" in lines[0], err
    assert not out and not list(cache.glob("fd-classifier-*"))


def test_fd_refuses_images_of_another_shape(cli, capsys, tmp_path, cache):
    run = vae_run(tmp_path / "run", digits_folder(tmp_path / "a"), epochs=1)
    capsys.readouterr()
    np.savez(tmp_path / "big.npz", x=np.zeros((20, 1, 16, 16), np.uint8), y=np.arange(20) % 2)
    rc, _, err = cli("fd", run, "--data", tmp_path / "big.npz")
    assert rc == 2 and "shape (1, 8, 8)" in err and "(1, 16, 16)" in err
