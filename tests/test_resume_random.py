"""Exact resume for models that draw random numbers while training.

Denoising masks, the VAE's reparameterization and binarization and the GAN's latent codes come from
torch's global RNG, so a resumed run only matches the straight one if the engine restores that RNG
where the stopped run left it (removing the restore fails dae_mlp, vae_mlp and dcgan here). da_dann
draws nothing from it (its batches come from seeded orders, it has no dropout); it is here for its
paired-domain batches and its step-driven λ schedule. Each model trains straight through, and again
in two parts; the weights must be bitwise equal.

* Interrupted (Ctrl-C right after a ``checkpoint_every`` checkpoint in the middle of an epoch), then
  ``reprlab train --resume``: the case resume exists for.
* Stopped by ``--trainer.max_steps`` in the middle of an epoch, then resumed with ``max_steps=0``.
"""

import contextlib
import io

import pytest
import torch
from safetensors.torch import load_file

from reprlab.cli import main
from reprlab.train.checkpoint import load_state
from reprlab.train.engine import Trainer

COMMON = ["--no-progress", "--trainer.tensorboard=false", "--trainer.threads=1", "--seed", "3", "--batch-size", "64"]
MODELS = {
    # name: (flags, epochs, where to stop: a step in the middle of the second epoch)
    "dae_mlp": (["--data", "digits", "--model.hidden=16", "--model.code_dim=4", "--model.corruption=masking"], 2, 30),
    "vae_mlp": (["--data", "digits", "--model.hidden=16", "--model.latent_dim=4", "--model.binarize=true"], 2, 30),
    "dcgan": (
        ["--data", "digits", "--model.g_channels=4", "--model.d_channels=4", "--model.latent_dim=4", "--lr", "2e-4"],
        2,
        30,
    ),
    "da_dann": (["--data", "moons", "--model.hidden=16,16", "--model.feature_dim=8"], 2, 20),
}


def train(*args) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main([str(a) for a in args])
    assert rc == 0, err.getvalue()


def args_of(name):
    flags, epochs, _ = MODELS[name]
    return ["train", name, *flags, *COMMON, "--epochs", epochs]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run of each model: its weights and its number of steps."""
    runs = {}
    for name in MODELS:
        out = tmp_path_factory.mktemp(name) / "straight"
        train(*args_of(name), "--out", out)
        runs[name] = load_file(out / "model.safetensors"), load_state(out / "trainer_state.pt")["step"]
    return runs


def assert_same_weights(expected, run, halfway):
    got = load_file(run / "model.safetensors")
    assert expected.keys() == got.keys()
    assert any(not torch.equal(halfway[k], got[k]) for k in got)  # the resumed part did train
    differ = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not differ, differ


@pytest.mark.parametrize("name", list(MODELS))
def test_interrupted_then_resumed_is_bitwise_the_straight_run(straight, tmp_path, monkeypatch, name):
    weights, total = straight[name]
    stop = MODELS[name][2]
    epochs = MODELS[name][1]
    assert stop < total and stop % (total // epochs) != 0  # the stop falls inside an epoch
    save = Trainer._save

    def save_then_interrupt(self, *args, **kwargs):
        save(self, *args, **kwargs)
        if self.step == stop:
            raise KeyboardInterrupt  # Ctrl-C: the CLI keeps the last checkpoint and exits 130

    run = tmp_path / "parts"
    monkeypatch.setattr(Trainer, "_save", save_then_interrupt)
    with contextlib.redirect_stderr(io.StringIO()) as err:
        rc = main([str(a) for a in (*args_of(name), f"--trainer.checkpoint_every={stop}", "--out", run)])
    assert rc == 130 and "--resume" in err.getvalue()
    monkeypatch.setattr(Trainer, "_save", save)
    state = load_state(run / "trainer_state.pt")
    assert (state["step"], state["epoch"]) == (stop, 1) and state["batch_in_epoch"] > 0
    halfway = load_file(run / "model.safetensors")
    train("train", "--resume", run, "--no-progress")
    assert load_state(run / "trainer_state.pt")["step"] == total
    assert_same_weights(weights, run, halfway)


@pytest.mark.parametrize(
    "name",
    [
        "dae_mlp",
        "vae_mlp",
        "dcgan",
        "da_dann",
    ],
)
def test_max_steps_stop_then_resume_is_bitwise_the_straight_run(straight, tmp_path, name):
    weights, total = straight[name]
    stop = MODELS[name][2]
    run = tmp_path / "parts"
    train(*args_of(name), f"--trainer.max_steps={stop}", "--out", run)
    assert load_state(run / "trainer_state.pt")["step"] == stop
    halfway = load_file(run / "model.safetensors")
    train("train", "--resume", run, "--trainer.max_steps=0", "--no-progress")
    assert load_state(run / "trainer_state.pt")["step"] == total
    assert_same_weights(weights, run, halfway)
