"""The engine: determinism, exact resume (also after kill -9), NaN guard, overwrite refusal,
models with their own optimizers, bf16 autocast and 2-process DDP on CPU."""

import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from conftest import REPO, run_subprocess
from reprlab.config import TrainerConfig
from reprlab.data.batches import TensorBatches
from reprlab.errors import DivergedError, RunExistsError
from reprlab.models.base import ReprModel
from reprlab.registry import create_model
from reprlab.train.checkpoint import load_state
from reprlab.train.engine import Trainer, seed_everything

CFG = dict(progress=False, tensorboard=False)


def data(n=256, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.rand(n, 1, 4, 4, generator=g), "y": torch.randint(0, 3, (n,), generator=g)}


def new_ae(seed=0):
    seed_everything(seed)
    return create_model("ae_mlp", input_shape=(1, 4, 4), code_dim=3, hidden=(8,))


def test_same_seed_is_bitwise_identical(tmp_path):
    outs = []
    for i in range(2):
        m = new_ae()
        Trainer(TrainerConfig(epochs=2, batch_size=32, **CFG), tmp_path / f"r{i}").fit(m, TensorBatches(data(), 32))
        outs.append(load_file(tmp_path / f"r{i}" / "model.safetensors"))
    assert all(torch.equal(outs[0][k], outs[1][k]) for k in outs[0])


def test_resume_in_process_is_bitwise(tmp_path):
    full = new_ae()
    Trainer(TrainerConfig(epochs=3, batch_size=32, **CFG), tmp_path / "full").fit(full, TensorBatches(data(), 32))
    part = new_ae()
    # stop after 11 steps (mid-epoch), then resume to the end
    Trainer(TrainerConfig(epochs=3, batch_size=32, max_steps=11, **CFG), tmp_path / "part").fit(
        part, TensorBatches(data(), 32)
    )
    assert load_state(tmp_path / "part" / "trainer_state.pt")["step"] == 11
    again = new_ae(seed=123)  # different init: resume must restore everything
    Trainer(TrainerConfig(epochs=3, batch_size=32, **CFG), tmp_path / "part", resume=True).fit(
        again, TensorBatches(data(), 32)
    )
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "part" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_state(tmp_path / "part" / "trainer_state.pt")["step"] == 24


def test_resume_after_kill_9_is_bitwise(tmp_path):
    args = [
        "train",
        "ae_mlp",
        "--data",
        "digits",
        "--epochs",
        "12",
        "--batch-size",
        "16",
        "--model.hidden=256,256",
        "--trainer.checkpoint_every=25",
        "--no-progress",
        "--trainer.tensorboard=false",
        "--trainer.threads=1",
    ]
    ref = run_subprocess(*args, "--out", tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "reprlab", *args, "--out", str(tmp_path / "run")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    state = tmp_path / "run" / "trainer_state.pt"
    killed_at = None
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if state.exists():
            try:
                step = load_state(state)["step"]
            except Exception:
                step = 0
            if step >= 100:
                os.kill(proc.pid, signal.SIGKILL)
                killed_at = step
                break
        time.sleep(0.01)
    proc.wait()
    assert killed_at is not None, "the run finished before it could be killed"
    assert proc.returncode == -signal.SIGKILL
    res = run_subprocess("train", "--resume", tmp_path / "run", "--no-progress")
    assert res.returncode == 0, res.stderr
    a, b = load_file(tmp_path / "ref" / "model.safetensors"), load_file(tmp_path / "run" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_state(state)["step"] == load_state(tmp_path / "ref" / "trainer_state.pt")["step"]


@dataclass(frozen=True)
class _NanCfg:
    nan_at: int = 3


class NanAfter(ReprModel):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.w = nn.Parameter(torch.ones(2))
        self.calls = 0

    def loss(self, batch):
        self.calls += 1
        loss = (self.w**2).sum() * batch["x"].mean()
        if self.calls >= self.config.nan_at:
            loss = loss * float("nan")
        return {"loss": loss}


def test_nan_guard_stops_names_step_keeps_last_good(tmp_path):
    m = NanAfter(_NanCfg(3))
    t = Trainer(TrainerConfig(epochs=5, batch_size=32, checkpoint_every=1, **CFG), tmp_path / "r")
    with pytest.raises(DivergedError, match=r"at step 3; the last good checkpoint \(step 1\)"):
        t.fit(m, TensorBatches(data(), 32))
    # the step-2 checkpoint holds the weights whose loss was NaN at step 3: the one before it is put back
    st = load_state(tmp_path / "r" / "trainer_state.pt")
    assert st["step"] == 1 and torch.isfinite(st["model"]["w"]).all()
    w = load_file(tmp_path / "r" / "model.safetensors")["w"]
    assert torch.equal(w, st["model"]["w"]) and len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 0


def test_refuses_to_overwrite(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text('{"model": "ae_mlp"}')
    with pytest.raises(RunExistsError, match="--overwrite"):
        Trainer(TrainerConfig(**CFG), tmp_path / "r")
    assert (tmp_path / "r" / "config.json").read_text() == '{"model": "ae_mlp"}'
    Trainer(TrainerConfig(**CFG), tmp_path / "r", overwrite=True)
    assert not (tmp_path / "r" / "config.json").exists()


class TwoOpt(ReprModel):
    """Alternates two optimizers, like a GAN: each step only touches its own parameters."""

    def __init__(self, cfg=None):
        super().__init__(cfg)
        self.a = nn.Linear(16, 1)
        self.b = nn.Linear(16, 1)

    def optimizer_groups(self):
        return [[{"params": self.a.parameters()}], [{"params": self.b.parameters()}]]

    def train_step(self, batch, steps):
        x = batch["x"].flatten(1)
        opt_a, opt_b = steps
        opt_a.zero_grad()
        la = (self.a(x) - 1).pow(2).mean()
        opt_a.backward(la)
        opt_a.step()
        opt_b.zero_grad()
        lb = (self.b(x) + 1).pow(2).mean()
        opt_b.backward(lb)
        opt_b.step()
        return {"loss": la + lb, "loss_a": la, "loss_b": lb}


def test_models_with_their_own_optimizers(tmp_path):
    seed_everything(0)
    m = TwoOpt()
    a0, b0 = m.a.weight.clone(), m.b.weight.clone()
    cfg = TrainerConfig(epochs=3, batch_size=32, optimizer="sgd", lr=0.1, **CFG)
    out = Trainer(cfg, tmp_path / "r").fit(m, TensorBatches(data(), 32))
    assert not torch.equal(a0, m.a.weight) and not torch.equal(b0, m.b.weight)
    assert out["train/loss_a"] < 0.5 and out["train/loss_b"] < 0.5
    assert len(load_state(tmp_path / "r" / "trainer_state.pt")["optimizers"]) == 2


@pytest.mark.parametrize(
    "precision, activations",
    [
        ("bf16", torch.bfloat16),
        ("32", torch.float32),
    ],
)
def test_bf16_autocast_runs_linear_layers_in_bf16(precision, activations):
    m = new_ae()
    seen = []
    linears = [mod for mod in m.modules() if isinstance(mod, nn.Linear)]
    assert linears
    hooks = [mod.register_forward_hook(lambda mod, inp, out: seen.append((inp[0].dtype, out.dtype))) for mod in linears]
    try:
        out = Trainer(TrainerConfig(epochs=2, batch_size=32, precision=precision, **CFG)).fit(
            m, TensorBatches(data(), 32)
        )
    finally:
        for h in hooks:
            h.remove()
    # 2 epochs x 8 batches, every Linear once per step; autocast gives each Linear's output in bf16
    assert len(seen) == 2 * 8 * len(linears)
    assert {o for _, o in seen} == {activations}, set(seen)
    assert all(p.dtype == torch.float32 for p in m.parameters())  # mixed precision: the weights stay float32
    assert math.isfinite(out["train/loss"])


def test_logs_and_run_dir(tmp_path):
    m = new_ae()
    Trainer(TrainerConfig(epochs=2, batch_size=64, progress=False), tmp_path / "r", {"model": "ae_mlp"}).fit(
        m, TensorBatches(data(), 64), TensorBatches(data(64, seed=1), 64, shuffle=False)
    )
    r = tmp_path / "r"
    lines = (r / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and '"val/loss"' in lines[1]
    assert list((r / "logs").rglob("metrics.csv")) and list((r / "tb").rglob("events.out.tfevents.*"))
    assert not list(r.glob(".*tmp*"))  # atomic writes leave no temp files


def test_ddp_two_processes_on_cpu(tmp_path):
    res = run_subprocess(
        "train",
        "ae_mlp",
        "--data",
        "digits",
        "--epochs",
        "2",
        "--devices",
        "2",
        "--no-progress",
        "--trainer.tensorboard=false",
        "--model.hidden=32",
        "--out",
        tmp_path / "ddp",
        timeout=240,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    st = load_state(tmp_path / "ddp" / "trainer_state.pt")
    assert st["world_size"] == 2 and st["rng"]["torch"].shape[0] == 2
    # each process saw half the data per epoch: ceil(611 / 128) = 5 steps per epoch
    assert st["step"] == 10


def test_lr_schedule_warmup_then_cosine_and_exact_resume(tmp_path):
    from reprlab.train.engine import lr_scale

    cfg = TrainerConfig(epochs=3, batch_size=32, lr_schedule="cosine", warmup_steps=4, **CFG)
    assert [lr_scale(s, 24, cfg) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lr_scale(14, 24, cfg) == pytest.approx(0.5)  # half-way through the 20 decay steps
    assert lr_scale(23, 24, cfg) == pytest.approx(0.5 * (1 + math.cos(math.pi * 19 / 20)))
    # the engine applies it: the last step's lr is the base lr times the last scale
    m = new_ae()
    t = Trainer(
        TrainerConfig(epochs=3, batch_size=32, lr=1e-2, lr_schedule="cosine", warmup_steps=4, **CFG), tmp_path / "full"
    )
    t.fit(m, TensorBatches(data(), 32))
    group = load_state(tmp_path / "full" / "trainer_state.pt")["optimizers"][0]["param_groups"][0]
    assert group["lr"] == pytest.approx(1e-2 * lr_scale(23, 24, cfg)) and group["base_lr"] == 1e-2
    # stopping mid-run and resuming follows the same schedule, so the weights are bitwise those of one run
    Trainer(
        TrainerConfig(epochs=3, batch_size=32, lr=1e-2, lr_schedule="cosine", warmup_steps=4, max_steps=9, **CFG),
        tmp_path / "part",
    ).fit(new_ae(), TensorBatches(data(), 32))
    Trainer(
        TrainerConfig(epochs=3, batch_size=32, lr=1e-2, lr_schedule="cosine", warmup_steps=4, **CFG),
        tmp_path / "part",
        resume=True,
    ).fit(new_ae(seed=5), TensorBatches(data(), 32))
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "part" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
