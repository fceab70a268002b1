"""The engine owns the step for every registered model: the lr schedule reaches every optimizer,
--trainer.optimizer is honoured, accumulation equals one big batch, early stopping keeps the best
epoch, and callbacks (not patches) extend the loop."""

import math
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from reprlab.config import TrainerConfig
from reprlab.data.batches import TensorBatches
from reprlab.errors import ConfigError
from reprlab.models.base import ReprModel
from reprlab.registry import create_model, list_models
from reprlab.train.engine import Callback, Trainer, lr_scale, seed_everything

CFG = dict(progress=False, tensorboard=False)


class LrLog(Callback):
    """The lr of every group of every optimizer, as it was used at each step."""

    def __init__(self):
        self.seen: list[list[float]] = []

    def on_step_end(self, trainer, model, step, out, batches):
        self.seen.append([g["lr"] for o in trainer.optimizers for g in o.param_groups])


def _tiny(name):
    seed_everything(0)
    model = create_model(name)
    batch = model.example_batch(16, torch.Generator().manual_seed(0))
    return model, TensorBatches(batch, 4, shuffle=False)


@pytest.mark.parametrize("name", list_models())
def test_schedule_reaches_every_optimizer_of_every_model(name):
    """Warm-up then cosine: the lr each optimizer used at step 0, at step W and at the last step."""
    model, data = _tiny(name)
    cfg = TrainerConfig(epochs=2, batch_size=4, lr=1e-2, lr_schedule="cosine", warmup_steps=3, **CFG)
    log = LrLog()
    trainer = Trainer(cfg)
    trainer.fit(model, data, callbacks=[log])
    total = 2 * data.num_batches()
    bases = [g["base_lr"] for o in trainer.optimizers for g in o.param_groups]
    assert len(log.seen) == total
    for step in (0, 3, total - 1):
        want = [b * lr_scale(step, total, cfg) for b in bases]
        assert log.seen[step] == pytest.approx(want, rel=1e-12), (name, step)
    # the same numbers from the formula itself: lr/3 at the first warm-up step, cosine after it
    last = bases[0] * 0.5 * (1 + math.cos(math.pi * (total - 1 - 3) / (total - 3)))
    assert log.seen[0][0] == pytest.approx(bases[0] / 3) and log.seen[-1][0] == pytest.approx(last)


@pytest.mark.parametrize("name", list_models())
def test_adamw_is_used_when_asked(name):
    model, data = _tiny(name)
    cfg = TrainerConfig(epochs=1, max_steps=1, batch_size=4, optimizer="adamw", weight_decay=0.01, **CFG)
    trainer = Trainer(cfg)
    trainer.fit(model, data)
    assert trainer.optimizers and all(
        type(o.optimizer if hasattr(o, "optimizer") else o).__name__ == "AdamW" for o in trainer.optimizers
    )


def test_a_model_that_cannot_accumulate_refuses_it_by_name():
    model, data = _tiny("dcgan")
    with pytest.raises(ConfigError, match="dcgan does not support trainer.accumulate"):
        Trainer(TrainerConfig(epochs=1, batch_size=4, accumulate=2, **CFG)).fit(model, data)


def test_accumulated_small_batches_equal_one_big_batch():
    """4 accumulated batches of 8 give the weights of one batch of 32 (a model without batch statistics)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 6, 6, generator=g)
    weights = []
    for batch, acc in ((32, 1), (8, 4)):
        seed_everything(0)
        m = create_model("ae_mlp", input_shape=(1, 6, 6), code_dim=3, hidden=(16,))
        cfg = TrainerConfig(epochs=2, batch_size=batch, accumulate=acc, optimizer="sgd", lr=0.5, **CFG)
        Trainer(cfg).fit(m, TensorBatches({"x": x}, batch, shuffle=False))
        weights.append({k: v.clone() for k, v in m.state_dict().items()})
    for k in weights[0]:
        assert torch.allclose(weights[0][k], weights[1][k], atol=1e-6), k
    seed_everything(0)
    fresh = create_model("ae_mlp", input_shape=(1, 6, 6), code_dim=3, hidden=(16,))
    assert any(not torch.equal(fresh.state_dict()[k], weights[0][k]) for k in weights[0])  # it did train


def test_accumulation_counts_optimizer_steps():
    model, data = _tiny("ae_mlp")  # 16 examples, batches of 4
    trainer = Trainer(TrainerConfig(epochs=3, batch_size=4, accumulate=2, **CFG))
    out = trainer.fit(model, data)
    assert trainer.step == 3 * 2 and out["step"] == 6


@dataclass(frozen=True)
class _Climb:
    peak: float = 3.0


class Climber(ReprModel):
    """w rises by exactly 1 per SGD step (loss = -w, lr 1); the validation loss (w - peak)^2 is least at w = peak."""

    def __init__(self, config=_Climb()):
        super().__init__(config)
        self.w = nn.Parameter(torch.zeros(()))

    def loss(self, batch):
        return {"loss": -self.w + 0 * batch["x"].sum()}

    def eval_step(self, batch):
        return {"loss": (self.w.detach() - self.config.peak) ** 2}


class Raises:
    """A batch source that must never be read."""

    def num_batches(self, world_size=1):
        return 1

    def epoch(self, *a, **k):
        raise AssertionError("the test split was read")


def test_early_stopping_keeps_the_best_epoch_and_stops_after_the_patience(tmp_path):
    one = TensorBatches({"x": torch.zeros(1, 1)}, 1, shuffle=False)
    cfg = TrainerConfig(epochs=20, batch_size=1, optimizer="sgd", momentum=0.0, lr=1.0, early_stop="val/loss:2", **CFG)
    m = Climber()
    with Trainer(cfg, tmp_path / "r", {"model": "climber"}) as t:
        out = t.fit(m, one, one)
    # epoch e ends with w = e: val loss 4, 1, 0, 1, 4 -> best at epoch 3, two worse epochs, stop after epoch 5
    assert out["epoch"] == 5 and out["early_stop/best_epoch"] == 3
    assert float(load_file(tmp_path / "r" / "best.safetensors")["w"]) == 3.0
    assert float(load_file(tmp_path / "r" / "model.safetensors")["w"]) == 5.0
    # a stopped run is finished: resuming it changes nothing
    with Trainer(cfg, tmp_path / "r", resume=True) as t:
        t.fit(Climber(), one, one)
        assert t.already_finished
    assert float(load_file(tmp_path / "r" / "model.safetensors")["w"]) == 5.0
    # the test split has no part in it: only train and val sources are given, and a raising test source is never read
    assert Raises().num_batches() == 1


def test_early_stopping_resumes_its_counters(tmp_path):
    """Stopped mid-way (max_steps) and resumed, it stops at the same epoch with the same best."""
    one = TensorBatches({"x": torch.zeros(1, 1)}, 1, shuffle=False)
    base = dict(epochs=20, batch_size=1, optimizer="sgd", momentum=0.0, lr=1.0, early_stop="val/loss:2", **CFG)
    Trainer(TrainerConfig(max_steps=4, **base), tmp_path / "r").fit(Climber(), one, one)
    with Trainer(TrainerConfig(**base), tmp_path / "r", resume=True) as t:
        out = t.fit(Climber(), one, one)
    assert out["epoch"] == 5 and out["early_stop/best_epoch"] == 3
    assert float(load_file(tmp_path / "r" / "best.safetensors")["w"]) == 3.0


def test_early_stopping_needs_a_logged_validation_metric():
    one = TensorBatches({"x": torch.zeros(1, 1)}, 1, shuffle=False)
    with pytest.raises(ConfigError, match="needs validation data"):
        Trainer(TrainerConfig(epochs=2, batch_size=1, early_stop="val/loss:2", **CFG)).fit(Climber(), one)
    with pytest.raises(ConfigError, match="val/acc.*val metrics: val/loss"):
        Trainer(TrainerConfig(epochs=2, batch_size=1, early_stop="val/acc:2", **CFG)).fit(Climber(), one, one)
    for bad in ("loss", "val/loss", "test/acc:3", "val/loss:0", "val/loss:x", "val/loss:3:up"):
        with pytest.raises(ConfigError, match="early_stop"):
            TrainerConfig(early_stop=bad)


class StopAt(Callback):
    def __init__(self, n):
        self.n, self.epochs = n, []

    def should_stop(self, trainer, model, step):
        return step >= self.n

    def on_epoch_end(self, trainer, model, epoch, metrics):
        self.epochs.append(epoch)
        return {"seen_by_callback": 1.0}


def test_should_stop_ends_training_and_epoch_callbacks_add_metrics():
    model, data = _tiny("ae_mlp")  # 4 steps per epoch
    cb = StopAt(6)
    t = Trainer(TrainerConfig(epochs=10, batch_size=4, **CFG))
    out = t.fit(model, data, callbacks=[cb])
    assert t.step == 6 and cb.epochs == [0, 1] and out["seen_by_callback"] == 1.0
