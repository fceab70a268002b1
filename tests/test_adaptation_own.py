"""``reprlab adapt --source PATH --target PATH``: domain pairs of your own (image folders, .npz arrays).

The target's labels, when it has them, are read only by the final test: training batches carry no ``y_t``,
validation runs on the source, and a locked :class:`HeldOutLabels` shows that nothing before the test reads them.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from reprlab.data.domains import HeldOutLabels, pair_name, resolve_pair

FLAGS = ["--no-progress", "--trainer.loggers=none", "--batch-size", "64"]


def digits_pair(root, fmt="npz", target_labels=True, target_classes=None):
    """Source: half of scikit-learn's digits; target: the other half, blurred and noisy (a domain shift).
    Both as uint8 (N, 1, 8, 8) images with labels 0-9 (the target's optional)."""
    from scipy.ndimage import gaussian_filter
    from sklearn.datasets import load_digits

    from reprlab.data.folders import write_image_folder

    x, y = load_digits(return_X_y=True)
    img = (x.reshape(-1, 1, 8, 8) * 255 / 16).round().astype(np.uint8)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(img))
    s, t = order[: len(img) // 2], order[len(img) // 2 :]
    blurred = gaussian_filter(img[t].astype(np.float64), (0, 0, 1.0, 1.0))
    shifted = np.clip(blurred + rng.normal(0, 20, blurred.shape), 0, 255).astype(np.uint8)
    ys, yt = y[s], y[t]
    if target_classes is not None:
        keep = np.isin(yt, target_classes)
        shifted, yt = shifted[keep], yt[keep]
    if fmt == "npz":
        np.savez(root / "source.npz", x=img[s], y=ys)
        if target_labels:
            np.savez(root / "target.npz", x=shifted, y=yt)
        else:
            np.savez(root / "target.npz", x=shifted)
        return root / "source.npz", root / "target.npz", yt
    write_image_folder(root / "source", img[s], ys)
    write_image_folder(root / "target", shifted, yt if target_labels else None)
    return root / "source", root / "target", yt


def test_pair_names_keep_paths_whole(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b:c.npz"
    assert pair_name("moons", "moons-rotated") == "moons:moons-rotated"
    assert resolve_pair(pair_name(f"npz:{a}", str(b))) == (f"npz:{a}", str(b))


@pytest.mark.parametrize("fmt", ["npz", "folder"])
def test_adapt_a_pair_of_your_own_from_the_cli(cli, tmp_path, fmt):
    source, target, _ = digits_pair(tmp_path, fmt)
    out = tmp_path / "run"
    rc, stdout, err = cli(
        "adapt", "--source", source, "--target", target, "--method", "coral", "--epochs", "8", "--out", out,
        "--model.channels=8,16", *FLAGS,
    )  # fmt: skip
    assert rc == 0, err
    res = json.loads((out / "final_metrics.json").read_text())
    assert res["source"] == str(source) and res["target"] == str(target)
    # measured (seed 0, the same for npz and folder: the same pixels): source test 0.873, target test 0.667;
    # chance is 0.10 (source-only gives the target 0.667 as well: this checks the plumbing, not the method)
    assert res["source/test_acc"] > 0.8 and res["target/test_acc"] > 0.4, res
    assert "source validation accuracy" in stdout and "target test accuracy" in stdout
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data"]["name"] == pair_name(str(source), str(target))
    assert cfg["model_config"]["input_shape"] == [1, 8, 8] and cfg["model_config"]["num_classes"] == 10


@pytest.mark.parametrize("method", ["dann", "pseudo-label"])
def test_target_labels_are_read_only_by_the_final_test(tmp_path, monkeypatch, method):
    from reprlab.models.adaptation import model_name
    from reprlab.recipes.adaptation import score_adaptation
    from reprlab.recipes.training import train_model

    source, target, yt = digits_pair(tmp_path)
    real_init = HeldOutLabels.__init__

    def locked_init(self, y):
        real_init(self, y)
        self.locked = True  # any read before the test raises

    monkeypatch.setattr(HeldOutLabels, "__init__", locked_init)
    tree = {
        "model": {"channels": (8, 16)},
        "trainer": {"epochs": 2, "batch_size": 64, "progress": False, "loggers": []},
        "data": {"name": pair_name(str(source), str(target))},
    }
    t0 = time.perf_counter()
    out = tmp_path / "run"
    model, trainer, task, metrics = train_model(model_name(method), tree, out)
    with trainer:
        labels = task.extras["target_labels"]
        assert labels.locked and labels.reads == 0  # trained and validated: not one read
        for batch in task.train.epoch(0):
            assert "y_t" not in batch and set(batch) == {"x_s", "y_s", "x_t", "i_t"}
        assert "val/acc" in metrics  # validation ran, on the source
        with pytest.raises(RuntimeError, match="locked"):
            next(iter(task.test.epoch(0)))  # the trip-wire works
        labels.locked = False
        result = score_adaptation(model, task, metrics, out, method, str(source), str(target), t0)
    assert labels.reads == 1 and 0.0 <= result["target/test_acc"] <= 1.0
    # the test part is the target's own random (unstratified) draw; its labels give the accuracy
    test_rows = task.extras["own_pair"].target_test
    pred = model.predict_proba(next(iter(task.test.epoch(0)))["x"]).argmax(1).numpy()
    assert len(test_rows) == len(pred)
    assert result["target/test_acc"] == pytest.approx(float((pred == yt[test_rows]).mean()), abs=1e-6)


def test_an_unlabelled_target_trains_and_reports_only_the_source(cli, tmp_path):
    source, target, _ = digits_pair(tmp_path, "folder", target_labels=False)
    out = tmp_path / "run"
    rc, stdout, err = cli(
        "adapt", "--source", source, "--target", target, "--method", "mmd", "--epochs", "1", "--out", out,
        "--model.channels=8,16", *FLAGS,
    )  # fmt: skip
    assert rc == 0, err
    res = json.loads((out / "final_metrics.json").read_text())
    assert "target/test_acc" not in res and 0 <= res["source/test_acc"] <= 1
    assert "no target test accuracy" in stdout


@pytest.mark.parametrize(
    "change, expect",
    [
        ("classes", "different label sets"),
        ("shape", "give both the same --data.size"),
        ("oracle", "target-oracle trains on the target's labels"),
        ("builtin", "both as your own data"),
        ("same", "both"),
    ],
)
def test_pairs_that_cannot_adapt_are_refused_in_one_line(cli, tmp_path, change, expect):
    source, target, _ = digits_pair(tmp_path, target_classes=[0, 1, 2] if change == "classes" else None)
    method = "target-oracle" if change == "oracle" else "coral"
    if change == "shape":
        np.savez(tmp_path / "big.npz", x=np.zeros((20, 1, 16, 16), np.uint8), y=np.arange(20) % 10)
        target = tmp_path / "big.npz"
    if change == "builtin":
        target = "digits"
    if change == "same":
        target = source
    out = tmp_path / "run"
    rc, _, err = cli("adapt", "--source", source, "--target", target, "--method", method, "--out", out, *FLAGS)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and expect in lines[0], err
    assert not out.exists()
