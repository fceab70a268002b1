"""Your own data through the core: ``--data PATH`` on train/eval/encode/sample, the run's record of its data,
and refusals of changed data.

* a PNG folder written from Fashion-MNIST (train/, val/ and test/ sub-folders in IDX order) trains ``ae_mlp``
  to the same bytes as the built-in loader on the same images and seed;
* 3-channel 32- and 64-pixel folders train every image model one step through the CLI, the runs load back
  with the weights they saved, and ``sample`` writes RGB grids;
* a CSV trains ``ae_mlp``, ``vae_mlp`` and ``rbm`` with the range settings the data needs filled in, and a
  forced setting that needs [0, 1] is refused in one line;
* ``eval``, ``encode`` and ``--resume`` rebuild the recorded data (a table keeps its statistics) and refuse,
  in one line, data that changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import needs_fashion

QUIET = ["--no-progress", "--trainer.loggers=none"]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRLAB_CACHE", str(tmp_path / "cache"))


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "model.safetensors"))


def colour_images(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 RGB images (n, 3, size, size) of two classes: a red vertical or a blue horizontal gradient,
    with noise, so every channel differs from the others."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    ramp = np.linspace(0, 1, size)
    out = np.empty((n, 3, size, size), dtype=np.float64)
    for i in range(n):
        g = ramp[:, None] * np.ones(size) if y[i] == 0 else np.ones(size)[:, None] * ramp
        out[i, 0] = g if y[i] == 0 else 0.2
        out[i, 1] = 0.5 * (1 - g)
        out[i, 2] = 0.1 if y[i] == 0 else g
    out += rng.normal(0, 0.05, out.shape)
    return (out.clip(0, 1) * 255).round().astype(np.uint8), y


# ---------------------------------------------------------------------------------------- bitwise equality
@needs_fashion
def test_png_folder_trains_ae_mlp_to_the_builtin_loaders_bytes(cli, tmp_path):
    """The built-in loader with limit=256 and val_size=64 trains on Fashion-MNIST's first 256 images and
    validates on its last 64 training images. A folder with those images in train/ and val/ (zero-padded
    names in IDX order, class sub-folders) gives the same split, the same batches and the same weights."""
    from reprlab.data.folders import write_image_folder
    from reprlab.data.images import load_fashion_mnist

    x, y = load_fashion_mnist("train")
    xt, yt = load_fashion_mnist("test")
    u8 = (x[:, 0] * 255).round().to(torch.uint8).numpy()
    ut8 = (xt[:, 0] * 255).round().to(torch.uint8).numpy()
    assert torch.equal(torch.from_numpy(u8).float().div_(255.0), x[:, 0])  # PNG holds the IDX bytes exactly
    folder = tmp_path / "fashion-png"
    write_image_folder(folder / "train", u8[:256], y[:256].numpy())
    write_image_folder(folder / "val", u8[-64:], y[-64:].numpy())
    write_image_folder(folder / "test", ut8[:100], yt[:100].numpy())
    common = ["--epochs", "2", "--batch-size", "32", "--seed", "3", "--model.hidden=64", "--model.code_dim=8", *QUIET]
    rc, out, err = cli("train", "ae_mlp", "--data", "fashion-mnist", "--data.limit=256", "--data.val_size=64",
                       *common, "--out", tmp_path / "builtin")  # fmt: skip
    assert rc == 0, err
    rc, out, err = cli("train", "ae_mlp", "--data", folder, *common, "--out", tmp_path / "folder")
    assert rc == 0, err
    assert "256 train / 64 val / 100 test (given split)" in out
    a, b = weights(tmp_path / "builtin"), weights(tmp_path / "folder")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "builtin" / "model.safetensors").read_bytes() == (
        tmp_path / "folder" / "model.safetensors"
    ).read_bytes()
    va = json.loads((tmp_path / "builtin" / "final_metrics.json").read_text())["val/loss"]
    vb = json.loads((tmp_path / "folder" / "final_metrics.json").read_text())["val/loss"]
    assert va == vb
    src = json.loads((tmp_path / "folder" / "config.json").read_text())["data_source"]
    assert src["kind"] == "folder" and src["split"]["method"] == "given" and len(src["fingerprint"]) == 16
    assert src["classes"] == [str(c) for c in range(10)]


def test_png_folder_matches_a_builtin_dataset_without_fashion(cli, tmp_path, monkeypatch):
    """The same check on any machine: scikit-learn's digits, quantised to uint8, registered as a built-in
    dataset (the loader path of fashion-mnist and digits: tensors, the last ``val_size`` training images held
    out) and written as a PNG folder with train/, val/ and test/ sub-folders, train ae_mlp to the same bytes."""
    import reprlab.data as data_pkg
    from reprlab.data import ImageData, register_dataset
    from reprlab.data.folders import write_image_folder
    from reprlab.data.images import load_digits_split, split_train_val

    def quantised(split: str) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        x, y = load_digits_split(split)
        u8 = (x * 255).round().to(torch.uint8)
        return u8.float().div_(255.0), y, u8[:, 0].numpy()

    xtr, ytr, utr = quantised("train")
    xte, yte, ute = quantised("test")
    monkeypatch.setattr(data_pkg, "_DATASETS", dict(data_pkg._DATASETS))

    def describe(_):
        return {"found": True, "where": "test", "sizes": "", "how": None}

    @register_dataset("digits-u8", "images", describe)
    def _load(data_dir=None, val_size=5000, limit=0):
        tr, va = split_train_val(xtr, ytr, val_size, limit)
        return ImageData("digits-u8", tr, va, (xte, yte), tuple(map(str, range(10))), "test")

    folder = tmp_path / "digits-png"
    write_image_folder(folder / "train", utr[:300], ytr[:300].numpy())
    write_image_folder(folder / "val", utr[-100:], ytr[-100:].numpy())
    write_image_folder(folder / "test", ute, yte.numpy())
    common = ["--epochs", "3", "--batch-size", "16", "--seed", "7", "--model.hidden=32", "--model.code_dim=4", *QUIET]
    rc, out, err = cli("train", "ae_mlp", "--data", "digits-u8", "--data.limit=300", "--data.val_size=100",
                       *common, "--out", tmp_path / "builtin")  # fmt: skip
    assert rc == 0, err
    rc, out, err = cli("train", "ae_mlp", "--data", folder, *common, "--out", tmp_path / "folder")
    assert rc == 0, err
    assert "300 train / 100 val / 360 test (given split)" in out
    assert (tmp_path / "builtin" / "model.safetensors").read_bytes() == (
        tmp_path / "folder" / "model.safetensors"
    ).read_bytes()
    fa = json.loads((tmp_path / "builtin" / "final_metrics.json").read_text())
    fb = json.loads((tmp_path / "folder" / "final_metrics.json").read_text())
    assert fa["val/loss"] == fb["val/loss"] and fa["test/loss"] == fb["test/loss"]
    # a folder with another seed's split is another run: the check can fail
    rc, out, err = cli(
        "train", "ae_mlp", "--data", folder, *common[:-2], "--seed", "8", *QUIET, "--out", tmp_path / "s8"
    )
    assert (
        rc == 0
        and (tmp_path / "s8" / "model.safetensors").read_bytes()
        != (tmp_path / "folder" / "model.safetensors").read_bytes()
    )


# ---------------------------------------------------------------------------------------- RGB folders
IMAGE_MODELS = {
    "ae_conv": ["--model.channels=8,16", "--model.code_dim=4"],
    "vae_conv": ["--model.channels=8,16", "--model.latent_dim=4"],
    "dcgan": ["--model.g_channels=8", "--model.d_channels=8", "--model.latent_dim=8", "--model.grid_size=4"],
    "classifier": ["--model.width=8"],
    "ae_mlp": ["--model.hidden=16", "--model.code_dim=4"],
    "sae_mlp": ["--model.hidden=16", "--model.code_dim=4"],
    "dae_mlp": ["--model.hidden=16", "--model.code_dim=4"],
    "vae_mlp": ["--model.hidden=16", "--model.latent_dim=4"],
    "rbm": ["--model.hidden=16"],
    "dense_ae_layer": ["--model.hidden=16"],
    "stacked_classifier": ["--model.hidden=16"],
}


@pytest.mark.parametrize("size", [32, 64])
def test_rgb_folder_trains_every_image_model_and_loads_back(cli, tmp_path, size):
    import reprlab
    from reprlab.data.folders import write_image_folder

    imgs, y = colour_images(24, size, seed=size)
    folder = tmp_path / f"rgb{size}"
    write_image_folder(folder, imgs, y, classes=["gradient-v", "gradient-h"])
    for name, settings in IMAGE_MODELS.items():
        run = tmp_path / name
        rc, out, err = cli("train", name, "--data", folder, "--batch-size", "8", "--trainer.max_steps=1",
                           *settings, *QUIET, "--out", run)  # fmt: skip
        assert rc == 0, (name, err)
        cfg = json.loads((run / "config.json").read_text())
        assert cfg["model_config"]["input_shape"] == [3, size, size], name
        assert cfg["data_source"]["classes"] == ["gradient-h", "gradient-v"]
        if "num_classes" in cfg["model_config"]:
            assert cfg["model_config"]["num_classes"] == 2
        model = reprlab.load(run)
        saved = weights(run)
        state = model.state_dict()
        assert all(torch.equal(state[k], saved[k]) for k in saved), name
        x = torch.from_numpy(imgs[:2]).float() / 255
        with torch.no_grad():
            if hasattr(model, "encode"):
                assert torch.isfinite(model.encode(x)).all(), name
            elif hasattr(model, "sample"):
                assert model.sample(2).shape == (2, 3, size, size)
    rc, out, err = cli("sample", tmp_path / "dcgan", "-n", "4", "-o", tmp_path / "grid.png")
    assert rc == 0 and "(4 RGB images)" in out, err


def test_sample_writes_an_rgb_grid_for_rgb_data(cli, tmp_path):
    """A VAE trained a little on red and blue gradients draws them in colour: the grid's channels differ."""
    from PIL import Image

    from reprlab.data.folders import write_image_folder

    imgs, y = colour_images(64, 32)
    write_image_folder(tmp_path / "rgb", imgs, y)
    run = tmp_path / "vae"
    settings = ["--epochs", "6", "--batch-size", "16", "--lr", "3e-3", "--model.channels=8,16", "--model.latent_dim=4"]
    rc, out, err = cli("train", "vae_conv", "--data", tmp_path / "rgb", *settings, *QUIET, "--out", run)
    assert rc == 0, err
    rc, out, err = cli("sample", run, "-n", "16", "-o", tmp_path / "grid.png")
    assert rc == 0 and "(16 RGB images)" in out, err
    a = np.asarray(Image.open(tmp_path / "grid.png").convert("RGB")).astype(int)
    assert np.abs(a[..., 0] - a[..., 1]).max() > 40 and np.abs(a[..., 1] - a[..., 2]).max() > 40


def test_sample_grid_of_a_grey_folder_stays_grey(cli, tmp_path):
    from PIL import Image

    from reprlab.data.folders import write_image_folder

    imgs, y = colour_images(16, 28)
    write_image_folder(tmp_path / "grey", imgs[:, :1], y)
    run = tmp_path / "vae"
    rc, out, err = cli("train", "vae_mlp", "--data", tmp_path / "grey", "--trainer.max_steps=1",
                       "--model.hidden=8", *QUIET, "--out", run)  # fmt: skip
    assert rc == 0, err
    assert json.loads((run / "config.json").read_text())["model_config"]["input_shape"] == [1, 28, 28]
    rc, out, err = cli("sample", run, "-n", "4", "-o", tmp_path / "g.png")
    assert rc == 0 and "RGB" not in out
    a = np.asarray(Image.open(tmp_path / "g.png").convert("RGB")).astype(int)
    assert (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()


def test_image_grid_shows_any_channel_count(tmp_path):
    from PIL import Image

    from reprlab.plots import image_grid

    for c in (1, 2, 3, 4):
        p = image_grid(torch.rand(3, c, 8, 8, generator=torch.Generator().manual_seed(c)), tmp_path / f"c{c}.png")
        a = np.asarray(Image.open(p).convert("RGB"))
        assert a.shape[0] > 8 and a.shape[1] > 8
        assert (a[..., 0] != a[..., 2]).any() == (c == 3), c  # colour only for 3 channels


# ---------------------------------------------------------------------------------------- tables
def write_table(path: Path, n: int = 240, seed: int = 0, label: bool = True) -> Path:
    """A CSV of n rows: 5 numeric columns at very different scales (outside [0, 1]) and a class column."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)) * [1, 10, 100, 0.1, 3] + [0, 50, -200, 1, 0]
    y = (x[:, 0] + 0.1 * x[:, 1] > 5).astype(int)
    head = "a,b,c,d,e" + (",kind" if label else "")
    rows = [",".join(f"{v:.5f}" for v in r) + (f",{'ab'[k]}" if label else "") for r, k in zip(x, y)]
    path.write_text(head + "\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    "model, settings, filled",
    [
        ("ae_mlp", ["--model.hidden=16", "--model.code_dim=3"], {"loss": "mse", "output": "identity"}),
        ("vae_mlp", ["--model.hidden=16", "--model.latent_dim=3"], {"likelihood": "gaussian"}),
        ("rbm", ["--model.hidden=8"], {"visible": "gaussian"}),
    ],
)
def test_csv_trains_with_the_range_settings_the_data_needs(cli, tmp_path, model, settings, filled):
    csv = write_table(tmp_path / "t.csv")
    run = tmp_path / "run"
    rc, out, err = cli("train", model, "--data", csv, "--data.drop=kind", "--epochs", "2", "--batch-size", "32",
                       *settings, *QUIET, "--out", run)  # fmt: skip
    assert rc == 0, err
    assert "table" in out and "5 features" in out and "unlabelled" in out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model_config"]["input_shape"] == [5]
    for k, v in filled.items():
        assert cfg["model_config"][k] == v
    src = cfg["data_source"]
    assert src["kind"] == "table" and src["columns"] == ["a", "b", "c", "d", "e"]
    # the statistics are the training rows' own (not all rows')
    raw = np.loadtxt(csv, delimiter=",", skiprows=1, usecols=range(5))
    train_rows = np.setdiff1d(np.arange(len(raw)), [])
    from reprlab.data.splits import make_split

    sp = make_split(len(raw), None, 0.2, 0.1, 0)
    assert src["split"]["digest"] == sp.digest() and len(train_rows) == 240
    np.testing.assert_allclose(src["stats"]["mean"], raw[sp.train].mean(0), rtol=1e-12)
    assert not np.allclose(src["stats"]["mean"], raw.mean(0), rtol=1e-9)
    assert np.isfinite(json.loads((run / "final_metrics.json").read_text())["test/loss"])


@pytest.mark.parametrize(
    "model, forced, fix",
    [
        ("ae_mlp", "--model.output=sigmoid", "--model.output=identity"),
        ("ae_mlp", "--model.loss=bce", "--model.loss=mse"),
        ("vae_mlp", "--model.likelihood=bernoulli", "--model.likelihood=gaussian"),
        ("rbm", "--model.visible=bernoulli", "--model.visible=gaussian"),
    ],
)
def test_a_forced_unit_interval_setting_on_a_table_is_refused(cli, tmp_path, model, forced, fix):
    csv = write_table(tmp_path / "t.csv", label=False)
    rc, out, err = cli("train", model, "--data", csv, forced, *QUIET, "--out", tmp_path / "run")
    assert rc == 2 and fix in one_line(err) and forced.lstrip("-") in one_line(err)
    assert not (tmp_path / "run").exists()


def test_a_labelled_table_trains_a_classifier_and_a_label_less_one_is_refused(cli, tmp_path):
    csv = write_table(tmp_path / "t.csv")
    run = tmp_path / "sc"
    rc, out, err = cli("train", "stacked_classifier", "--data", csv, "--data.label=kind", "--epochs", "15",
                       "--batch-size", "16", "--lr", "3e-3", "--model.hidden=16", *QUIET, "--out", run)  # fmt: skip
    assert rc == 0, err
    metrics = json.loads((run / "final_metrics.json").read_text())
    assert metrics["test/error"] < 0.2  # the label is a linear rule of two columns
    assert json.loads((run / "config.json").read_text())["model_config"]["num_classes"] == 2
    rc, out, err = cli("train", "stacked_classifier", "--data", csv, "--data.drop=kind", *QUIET,
                       "--out", tmp_path / "no")  # fmt: skip
    assert rc == 2 and "data.label=COLUMN" in one_line(err) and not (tmp_path / "no").exists()


def test_npz_features_and_images(cli, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "f.npz", x=rng.random((80, 7)).astype(np.float32), y=rng.integers(0, 3, 80))
    imgs, y = colour_images(40, 32)
    np.savez(tmp_path / "i.npz", x=imgs.transpose(0, 2, 3, 1), y=y)  # channels last
    rc, out, err = cli("train", "ae_mlp", "--data", tmp_path / "f.npz", "--trainer.max_steps=2", "--model.hidden=8",
                       *QUIET, "--out", tmp_path / "f")  # fmt: skip
    assert rc == 0, err
    cfg = json.loads((tmp_path / "f" / "config.json").read_text())
    assert cfg["model_config"]["input_shape"] == [7] and cfg["model_config"]["output"] == "sigmoid"  # in [0, 1]
    rc, out, err = cli("train", "classifier", "--data", tmp_path / "i.npz", "--trainer.max_steps=1",
                       "--model.width=8", *QUIET, "--out", tmp_path / "i")  # fmt: skip
    assert rc == 0, err
    cfg = json.loads((tmp_path / "i" / "config.json").read_text())
    assert cfg["model_config"]["input_shape"] == [3, 32, 32] and cfg["model_config"]["num_classes"] == 2


# ---------------------------------------------------------------------------------------- eval/encode/resume
def test_eval_encode_and_resume_find_the_data_again_and_refuse_it_changed(cli, tmp_path, monkeypatch):
    from reprlab.data.folders import write_image_folder

    imgs, y = colour_images(30, 28)
    folder = tmp_path / "imgs"
    files = write_image_folder(folder, imgs[:, :1], y)
    run = tmp_path / "run"
    rc, out, err = cli("train", "ae_mlp", "--data", folder, "--epochs", "2", "--batch-size", "8",
                       "--trainer.max_steps=3", "--model.hidden=8", *QUIET, "--out", run)  # fmt: skip
    assert rc == 0, err
    rc, out, err = cli("eval", run)
    assert rc == 0, err
    first = json.loads((run / "eval.json").read_text())
    # from another folder: the run recorded where the data is
    monkeypatch.chdir(tmp_path.parent)
    rc, out, err = cli("encode", run, "-o", tmp_path / "codes.npy", "--split", "val")
    assert rc == 0, err
    codes, labels = np.load(tmp_path / "codes.npy"), np.load(tmp_path / "codes.labels.npy")
    src = json.loads((run / "config.json").read_text())["data_source"]
    assert codes.shape == (src["split"]["counts"]["val"], 32) and len(labels) == len(codes)
    # an unchanged copy with a new modification time rebuilds the cache and is the same data
    files[0].write_bytes(files[0].read_bytes())
    rc, out, err = cli("eval", run)
    assert rc == 0 and json.loads((run / "eval.json").read_text()) == first
    # one changed image: every command that reads the run's data refuses it in one line
    from PIL import Image

    a = np.asarray(Image.open(files[3])).copy()
    a[0, 0] = 255 - a[0, 0]
    Image.fromarray(a).save(files[3])
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    for args in (("eval", run), ("encode", run, "-o", tmp_path / "c2.npy"), ("train", "--resume", run, *QUIET)):
        rc, out, err = cli(*args)
        assert rc == 2 and "changed since the run was trained on it" in one_line(err), args
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "c2.npy").exists()
    # other data given on purpose is evaluated (no comparison): the same folder, as it is now
    rc, out, err = cli("eval", run, "--data", folder)
    assert rc == 0, err


def test_a_folder_run_resumes_bitwise_and_prints_its_config(cli, tmp_path):
    import yaml

    from reprlab.data.folders import write_image_folder

    imgs, y = colour_images(40, 32)
    write_image_folder(tmp_path / "rgb", imgs, y)
    common = ["--data", tmp_path / "rgb", "--epochs", "3", "--batch-size", "8", "--model.channels=8,16", *QUIET]
    rc, out, err = cli("train", "ae_conv", *common, "--out", tmp_path / "full")
    assert rc == 0, err
    rc, out, err = cli("train", "ae_conv", *common, "--trainer.max_steps=5", "--out", tmp_path / "cut")
    assert rc == 0, err
    rc, out, err = cli("train", "--resume", tmp_path / "cut", "--trainer.max_steps=0", *QUIET)
    assert rc == 0, err
    assert (tmp_path / "cut" / "model.safetensors").read_bytes() == (
        tmp_path / "full" / "model.safetensors"
    ).read_bytes()
    rc, out, err = cli("train", "ae_conv", *common, "--print-config")
    assert rc == 0, err
    tree = yaml.safe_load(out)
    assert tree["model"]["input_shape"] == [3, 32, 32] and tree["data"]["name"] == str(tmp_path / "rgb")


def test_a_table_run_is_evaluated_with_its_saved_statistics(cli, tmp_path):
    csv = write_table(tmp_path / "t.csv", label=False)
    run = tmp_path / "run"
    rc, out, err = cli("train", "ae_mlp", "--data", csv, "--epochs", "1", "--model.hidden=8", *QUIET, "--out", run)
    assert rc == 0, err
    # new rows from another distribution: encoded with the run's statistics, not their own
    other = write_table(tmp_path / "other.csv", n=50, seed=1, label=False)
    rc, out, err = cli("encode", run, "--data", other, "--split", "train", "-o", tmp_path / "c.npy")
    assert rc == 0, err
    import reprlab
    from reprlab.data.tables import open_table

    stats = json.loads((run / "config.json").read_text())["data_source"]["stats"]
    t = open_table(other, stats=stats)
    with torch.no_grad():
        want = reprlab.load(run).encode(torch.from_numpy(t.x[t.split.train]))
    assert np.array_equal(np.load(tmp_path / "c.npy"), want.numpy())
    assert not (tmp_path / "c.labels.npy").exists() and "no labels" in out
    rc, out, err = cli("sample", run, "-o", tmp_path / "s.png")
    assert rc == 2 and "cannot sample" in one_line(err)


def test_vae_table_samples_come_back_in_the_tables_units(cli, tmp_path):
    csv = write_table(tmp_path / "t.csv", label=False)
    run = tmp_path / "run"
    rc, out, err = cli("train", "vae_mlp", "--data", csv, "--epochs", "3", "--model.hidden=16", *QUIET, "--out", run)
    assert rc == 0, err
    rc, out, err = cli("sample", run, "-n", "200", "-o", tmp_path / "s")
    assert rc == 0 and (tmp_path / "s.csv").is_file(), err
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "a,b,c,d,e" and len(lines) == 201
    s = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
    assert abs(s[:, 2].mean() - (-200)) < 60 and abs(s[:, 1].mean() - 50) < 6  # the columns' own scales
    rc, out, err = cli("sample", run, "-o", tmp_path / "s.png")
    assert rc == 2 and "table rows" in one_line(err)
