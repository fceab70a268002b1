"""DANN on Fashion-MNIST -> Fashion-M against pytorch-adapt's DANN, measured in the same run.

Both train the same network (the same initial weights: reprlab's da_dann CNN, head and
discriminator) on the same data for the same number of steps, batch size and Adam learning
rate; pytorch-adapt runs in its own venv (benchmarks/.venv-pytorch-adapt, with setuptools<70,
see /work/shared/PEERS.md). Reported: target test accuracy of each, and training speed
(source+target samples per second) as a ratio. Runs alternate (ours, peer, ...) and the table
gives medians. Differences that remain: reprlab ramps the reversal weight λ from 0 to 1 (the
DANN schedule); pytorch-adapt's DANNHook uses a constant 1 and steps its three optimizers itself.

Environment: BENCH_LIMIT (images per domain, default 4000), BENCH_EPOCHS (default 3),
BENCH_REPEATS (default 2), BENCH_THREADS (default 1).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _peers import peer_python  # noqa: E402
from common import print_table  # noqa: E402

from reprlab.config import TrainerConfig  # noqa: E402
from reprlab.data.domains import PairedBatches, load_domain_pair  # noqa: E402
from reprlab.data.images import locate_fashion_mnist  # noqa: E402
from reprlab.registry import create_model  # noqa: E402
from reprlab.train.engine import Trainer, seed_everything  # noqa: E402

LIMIT = int(os.environ.get("BENCH_LIMIT", 4000))
EPOCHS = int(os.environ.get("BENCH_EPOCHS", 3))
REPEATS = int(os.environ.get("BENCH_REPEATS", 2))
THREADS = int(os.environ.get("BENCH_THREADS", 1))
BATCH, LR, SEED = 128, 1e-3, 0
PEER = ["pytorch-adapt==0.0.83"]


def peer_env() -> str | None:
    """The peer's python. Its import needs pkg_resources, gone from setuptools >= 70; torch 2.14's
    metadata asks for a newer setuptools, so the pin is a second install that pip lets through with a warning."""
    py = peer_python("pytorch-adapt", PEER)
    if py is None:
        return None
    if subprocess.run([py, "-c", "import pytorch_adapt.hooks"], capture_output=True).returncode != 0:
        subprocess.run([py, "-m", "pip", "install", "-q", "setuptools<70"], capture_output=True)
        res = subprocess.run([py, "-c", "import pytorch_adapt.hooks"], capture_output=True, text=True)
        if res.returncode != 0:
            print(f"[pytorch-adapt] does not import: {res.stderr.strip().splitlines()[-1]}", file=sys.stderr)
            return None
    return py


def ours(source, target, init: dict, steps: int) -> dict:
    model = create_model("da_dann", input_shape=source.input_shape, num_classes=source.num_classes)
    model.load_state_dict(init)
    cfg = TrainerConfig(
        epochs=EPOCHS,
        batch_size=BATCH,
        lr=LR,
        seed=SEED,
        max_steps=steps,
        progress=False,
        tensorboard=False,
        threads=THREADS,
    )
    t = time.perf_counter()
    Trainer(cfg).fit(model, PairedBatches(source.train, target.train, BATCH, seed=SEED))
    seconds = time.perf_counter() - t
    model.eval()
    acc = float((model.predict_proba(target.test[0]).argmax(1) == target.test[1]).float().mean())
    return {"target_acc": acc, "seconds": seconds, "samples_per_s": steps * BATCH / seconds}


def peer(py: str, work: Path) -> dict | None:
    res = subprocess.run([py, str(HERE / "_adapt_peer.py"), str(work)], capture_output=True, text=True)
    if res.returncode != 0:
        print(
            f"[pytorch-adapt] failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}",
            file=sys.stderr,
        )
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    if locate_fashion_mnist() is None:
        print("Fashion-MNIST not installed; skipping (apt-get install dataset-fashion-mnist)")
        return
    torch.set_num_threads(THREADS)
    source, target = load_domain_pair("fashion-mnist", "fashion-m", val_size=0, limit=LIMIT)
    steps = EPOCHS * (-(-len(source.train[0]) // BATCH))
    seed_everything(SEED)
    init_model = create_model("da_dann", input_shape=source.input_shape, num_classes=source.num_classes)
    init = {k: v.clone() for k, v in init_model.state_dict().items()}
    cfg = init_model.config
    py = peer_env()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        torch.save(
            {
                "x_s": source.train[0],
                "y_s": source.train[1],
                "x_t": target.train[0],
                "x_test": target.test[0],
                "y_test": target.test[1],
            },
            work / "data.pt",
        )
        torch.save(init, work / "init.pt")
        (work / "cfg.json").write_text(
            json.dumps(
                {
                    "input_shape": list(cfg.input_shape),
                    "channels": list(cfg.channels),
                    "feature_dim": cfg.feature_dim,
                    "num_classes": cfg.num_classes,
                    "disc_hidden": cfg.disc_hidden[0],
                    "lr": LR,
                    "batch": BATCH,
                    "steps": steps,
                    "seed": SEED,
                    "threads": THREADS,
                }
            )
        )
        runs_ours, runs_peer = [], []
        ours(source, target, init, 2)  # warm-up: the first Fabric launch imports and sets up once per process
        for _ in range(REPEATS):
            runs_ours.append(ours(source, target, init, steps))
            if py:
                r = peer(py, work)
                if r:
                    runs_peer.append(r)
    med = lambda runs, k: statistics.median(r[k] for r in runs)  # noqa: E731
    print(
        f"Fashion-MNIST -> Fashion-M, {len(source.train[0])} images per domain, {steps} steps of batch {BATCH} per "
        "domain, "
        f"Adam {LR:g}, threads={THREADS}, medians of {REPEATS} alternating runs"
    )
    rows = [["reprlab da_dann", med(runs_ours, "target_acc"), med(runs_ours, "samples_per_s"), "1.00 (reference)"]]
    if runs_peer:
        rows.append(
            [
                "pytorch-adapt DANNHook",
                med(runs_peer, "target_acc"),
                med(runs_peer, "samples_per_s"),
                f"reprlab / pytorch-adapt = {med(runs_ours, 'samples_per_s') / med(runs_peer, 'samples_per_s'):.2f}x",
            ]
        )
    else:
        rows.append(["pytorch-adapt DANNHook", "-", "-", "peer did not install or run (see the message above)"])
    print_table(
        "DANN: target test accuracy and training speed",
        ["implementation", "target acc", "samples/s", "speed ratio"],
        rows,
    )


if __name__ == "__main__":
    main()
