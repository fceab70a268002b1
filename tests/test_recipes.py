"""The training recipes that studies and estimators call: a seeded fit in memory, and the final-metrics writer."""

import json

import torch

from reprlab.config import TrainerConfig
from reprlab.data.batches import TensorBatches
from reprlab.recipes.training import FINAL_METRICS, final_metrics, fit, seeded_model, write_final_metrics


def _x():
    return torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(0))


def _fit(seed: int, epochs: int = 2):
    model = seeded_model("ae_mlp", seed, input_shape=(1, 4, 4), code_dim=3, hidden=(8,))
    cfg = TrainerConfig(epochs=epochs, batch_size=16, seed=seed, progress=False, tensorboard=False)
    trainer = fit(model, TensorBatches({"x": _x()}, 16, seed=seed), cfg)
    return model, trainer


def test_seeded_fit_is_reproducible_and_keeps_its_history():
    a, ta = _fit(0)
    b, _ = _fit(0)
    c, _ = _fit(1)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)  # same seed: the same init, batches and steps
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))
    assert [h["epoch"] for h in ta.history] == [1, 2] and ta.history[-1]["step"] == 8  # 64 / 16 * 2
    assert ta.run_dir is None  # in memory: no run directory


def test_fit_calls_the_callbacks_each_epoch():
    seen = []
    model = seeded_model("ae_mlp", 0, input_shape=(1, 4, 4), code_dim=3, hidden=(8,))
    cfg = TrainerConfig(epochs=3, batch_size=32, progress=False, tensorboard=False)
    trainer = fit(model, TensorBatches({"x": _x()}, 32), cfg, callbacks=[lambda epoch, m: seen.append(epoch)])
    assert seen == [0, 1, 2] and len(trainer.history) == 3


def test_final_metrics_keep_numbers_prefix_test_and_add_extras(tmp_path):
    metrics = {"epoch": 3, "val/loss": 0.5, "train/loss": 0.25, "note": "text is dropped"}
    expect = {
        "epoch": 3,
        "val/loss": 0.5,
        "train/loss": 0.25,
        "test/acc": 0.75,
        "wall_seconds": 2.0,
        "labels": 100,
        "target/test_acc": 0.5,
    }
    assert final_metrics(metrics, {"acc": 0.75}, 2.0, labels=100, **{"target/test_acc": 0.5}) == expect
    written = write_final_metrics(tmp_path, metrics, {"acc": 0.75}, 2.0, labels=100, **{"target/test_acc": 0.5})
    assert written == expect and json.loads((tmp_path / FINAL_METRICS).read_text()) == expect
    assert sorted(p.name for p in tmp_path.iterdir()) == [FINAL_METRICS]  # no temp file left behind
