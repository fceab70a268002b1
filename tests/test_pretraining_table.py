"""Greedy pre-training on tables: the first layer takes real-valued (standardized) inputs, the layers above take
sigmoid codes; ``reprlab pretrain --data my.csv`` and ``finetune`` work on a labelled table end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from reprlab.config import TrainerConfig
from reprlab.recipes.pretraining import StackSpec, in_unit_interval, pretrain_stack

FAST = TrainerConfig(epochs=2, batch_size=32, progress=False, loggers=(), lr=1e-2)


def blobs_csv(path, n=300, seed=0, label=True):
    """Three classes of 6-feature Gaussian blobs, the columns at very different scales (1e-3 .. 1e3), so only
    standardized inputs are usable; ``kind`` holds the class name."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2.0, (3, 6))
    scales = np.array([1e3, 1e-3, 1.0, 50.0, 0.2, 7.0])
    y = np.arange(n) % 3
    x = (centres[y] + rng.normal(0, 0.7, (n, 6))) * scales + 100.0
    names = np.array(["ash", "birch", "cedar"])
    lines = [",".join([f"f{i}" for i in range(6)] + (["kind"] if label else []))]
    for row, c in zip(x, names[y]):
        lines.append(",".join([f"{v:.6g}" for v in row] + ([c] if label else [])))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_layer_model_picks_units_for_the_data():
    for t in ("ae", "dae"):
        name, cfg = StackSpec((8, 4), t).layer_model(0, 6, unit_interval=False)
        assert name == "dense_ae_layer" and cfg["loss"] == "mse" and cfg["output"] == "identity"
        _, up = StackSpec((8, 4), t).layer_model(1, 8)
        assert "loss" not in up and "output" not in up  # the defaults: sigmoid reconstruction, BCE
    name, cfg = StackSpec((8, 4), "rbm").layer_model(0, 6, unit_interval=False)
    assert name == "rbm" and cfg["visible"] == "gaussian"
    assert "visible" not in StackSpec((8, 4), "rbm").layer_model(1, 8)[1]
    assert in_unit_interval(torch.rand(5, 3)) and not in_unit_interval(torch.randn(50, 3))


@pytest.mark.parametrize("layer_type", ["dae", "rbm"])
def test_a_stack_trains_on_standardized_rows(layer_type):
    g = torch.Generator().manual_seed(0)
    # real-valued rows near a 2-dimensional plane: negative values and values above 1, with structure to learn
    x = torch.randn(400, 2, generator=g) @ torch.randn(2, 6, generator=g) + 0.1 * torch.randn(400, 6, generator=g)
    cfg = TrainerConfig(epochs=20, batch_size=32, progress=False, loggers=(), lr=1e-2)
    stack = pretrain_stack(x, StackSpec((8, 4), layer_type), cfg, x_eval=x[:100])
    first, second = stack.layers
    if layer_type == "rbm":
        assert first.config.visible == "gaussian" and second.config.visible == "bernoulli"
    else:
        assert (first.config.loss, first.config.output) == ("mse", "identity")
        assert (second.config.loss, second.config.output) == ("bce", "sigmoid")
    # the first layer models its real-valued input: its reconstruction error is well below that of the mean row
    baseline = float(((x[:100] - x.mean(0)) ** 2).mean())
    assert stack.scores[0]["eval/recon"] < 0.3 * baseline  # measured: 0.10 x (dae), 0.15 x (rbm)
    codes = stack.encode(x)
    assert codes.shape == (400, 4) and 0 < float(codes.min()) and float(codes.max()) < 1


@pytest.mark.parametrize("layer_type", ["dae", "rbm"])
def test_pretrain_and_finetune_a_labelled_table_from_the_cli(cli, tmp_path, layer_type):
    table = blobs_csv(tmp_path / "trees.csv")
    stack = tmp_path / "stack"
    flags = ["--no-progress", "--trainer.loggers=none", "--batch-size", "32"]
    rc, out, err = cli(
        "pretrain", "--data", table, "--data.label=kind", "--layers", "16,8", "--layer-type", layer_type,
        "--epochs", "3", "--out", stack, *flags,
    )  # fmt: skip
    assert rc == 0, err
    assert "unlabelled rows" in out
    meta = json.loads((stack / "stack.json").read_text())
    assert meta["data"]["name"] == str(table) and meta["data_source"]["kind"] == "table"
    assert meta["data_source"]["columns"] == [f"f{i}" for i in range(6)]
    first = json.loads((stack / "layer1" / "config.json").read_text())["model_config"]
    assert (first.get("visible"), first.get("output")) in (("gaussian", None), (None, "identity"))
    ft = tmp_path / "ft"
    rc, out, err = cli("finetune", stack, "--epochs", "30", "--out", ft, *flags, "--lr", "0.01")
    assert rc == 0, err
    res = json.loads((ft / "final_metrics.json").read_text())
    # three well-separated blobs: the fine-tuned stack classifies the held-out rows (60 of 300) well
    assert res["test/error"] < 0.1, res  # measured: 1 of 60 wrong for both layer types
    saved = json.loads((ft / "config.json").read_text())
    assert saved["data_source"]["fingerprint"] == meta["data_source"]["fingerprint"]
    # fine-tuning reads the rows standardized with the stack's statistics
    assert saved["data_source"]["stats"] == meta["data_source"]["stats"]


def test_finetune_refuses_an_unlabelled_table_in_one_line(cli, tmp_path):
    table = blobs_csv(tmp_path / "plain.csv", label=False)
    stack = tmp_path / "stack"
    flags = ["--no-progress", "--trainer.loggers=none"]
    rc, _, err = cli("pretrain", "--data", table, "--layers", "8", "--epochs", "1", "--out", stack, *flags)
    assert rc == 0, err
    rc, _, err = cli("finetune", stack, "--epochs", "1", "--out", tmp_path / "ft", *flags)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and "label" in lines[0], err
    assert not (tmp_path / "ft").exists()
