"""VAE training speed and test NLL against pythae, measured in the same run.

Same MLP architecture (784-512-256-(μ, log σ²) 40-d, mirrored decoder, Bernoulli likelihood),
same statically binarized Fashion-MNIST training images, batch size, Adam learning rate and
number of epochs. pythae runs its documented ``BaseTrainer`` in its own venv
(benchmarks/.venv-pythae, made by _peers.py); reprlab runs ``Trainer.fit`` into a run
directory. Runs alternate (ours, pythae, ours, ...) and report medians, so background load
hits both. Both trained models are scored by the same IWAE estimator on the same binarized
test images.

Targets: reprlab samples/s >= 2x pythae's; reprlab test NLL <= pythae's. Run i uses seed SEED + i for
both libraries, so the NLLs are means over REPEATS seeds (one seeded pair can differ by init luck).
The script also counts the FLOPs of one training step and measures the machine's float32 GEMM
GFLOP/s at the same thread count: pythae's GFLOP/s against that peak bounds the speed-up that
any implementation of the same computation could have over it.
Sizes can be changed with environment variables: BENCH_VAE_TRAIN, BENCH_VAE_EPOCHS,
BENCH_VAE_REPEATS, BENCH_VAE_THREADS, BENCH_VAE_NLL_K, BENCH_VAE_NLL_TEST.
"""

from __future__ import annotations

import json
import os
import statistics as st
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _peers import peer_python  # noqa: E402
from common import matmul_gflops, print_table, train_step_flops  # noqa: E402

from reprlab.config import TrainerConfig  # noqa: E402
from reprlab.data import load_images  # noqa: E402
from reprlab.data.batches import TensorBatches  # noqa: E402
from reprlab.data.images import locate_fashion_mnist  # noqa: E402
from reprlab.metrics.nll import iwae_nll  # noqa: E402
from reprlab.registry import create_model  # noqa: E402
from reprlab.train.checkpoint import apply_weights  # noqa: E402
from reprlab.train.engine import Trainer, seed_everything  # noqa: E402

N_TRAIN = int(os.environ.get("BENCH_VAE_TRAIN", 20000))
EPOCHS = int(os.environ.get("BENCH_VAE_EPOCHS", 3))
REPEATS = int(os.environ.get("BENCH_VAE_REPEATS", 3))
THREADS = int(os.environ.get("BENCH_VAE_THREADS", 1))
NLL_K = int(os.environ.get("BENCH_VAE_NLL_K", 200))
NLL_TEST = int(os.environ.get("BENCH_VAE_NLL_TEST", 1000))
BATCH, LR, HIDDEN, LATENT, SEED = 100, 1e-3, (512, 256), 40, 0


def new_model(seed: int = SEED):
    seed_everything(seed)
    return create_model("vae_mlp", input_shape=(1, 28, 28), latent_dim=LATENT, hidden=HIDDEN)


def ours(x: torch.Tensor, seed: int):
    model = new_model(seed)
    cfg = TrainerConfig(epochs=EPOCHS, batch_size=BATCH, lr=LR, seed=seed, progress=False, tensorboard=False)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        Trainer(cfg, run_dir=Path(tmp) / "run").fit(model, TensorBatches({"x": x}, BATCH, seed=seed))
        seconds = time.perf_counter() - t
    return EPOCHS * len(x) / seconds, model


def step_flops(x: torch.Tensor) -> float:
    """FLOPs per training sample: forward, backward and Adam step on one batch, counted by torch."""
    model = new_model()
    opt = torch.optim.Adam(model.parameters(), lr=LR)

    def step():
        opt.zero_grad()
        model.loss({"x": x[:BATCH]})["loss"].backward()
        opt.step()

    return train_step_flops(step) / BATCH


def pythae(py: str, data: Path, weights: Path, seed: int) -> float:
    cmd = [
        py,
        str(HERE / "_pythae_vae.py"),
        str(data),
        str(weights),
        str(EPOCHS),
        str(BATCH),
        str(LR),
        str(THREADS),
        str(seed),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(THREADS)))
    if r.returncode != 0:
        raise RuntimeError(f"pythae run failed:\n{r.stderr[-2000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return out["samples"] / out["seconds"]


def main() -> None:
    if locate_fashion_mnist() is None:
        print("Fashion-MNIST not installed; skipping (apt-get install dataset-fashion-mnist)")
        return
    py = peer_python("pythae", ["pythae==0.1.2"])
    if py is None:
        print("pythae could not be installed; skipping")
        return
    torch.set_num_threads(THREADS)
    import lightning.fabric  # noqa: F401 - import outside the timed region, as pythae's import is in its runner

    data = load_images("fashion-mnist")
    g = torch.Generator().manual_seed(SEED)
    x = torch.bernoulli(data.train[0][:N_TRAIN], generator=g)  # static binarization: both see the same bits
    x_te = data.test[0][:NLL_TEST]
    flops = step_flops(x)
    peak = matmul_gflops()
    # one estimator and one fixed binarization of the test images for every model
    x_te = torch.bernoulli(x_te, generator=torch.Generator().manual_seed(1))
    ours_sps, peer_sps, nll_ours, nll_peer = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        data_file = Path(tmp) / "data.pt"
        torch.save({"x": x, "hidden": list(HIDDEN), "latent": LATENT}, data_file)
        for i in range(REPEATS):
            weights = Path(tmp) / f"pythae{i}.pt"
            sps, model = ours(x, SEED + i)
            ours_sps.append(sps)
            peer_sps.append(pythae(py, data_file, weights, SEED + i))
            peer_model = new_model()
            apply_weights(peer_model, {**peer_model.state_dict(), **torch.load(weights)}, "pythae weights")
            nll_ours.append(iwae_nll(model, x_te, NLL_K))
            nll_peer.append(iwae_nll(peer_model, x_te, NLL_K))
    o, p = st.median(ours_sps), st.median(peer_sps)
    no, npr = st.mean(nll_ours), st.mean(nll_peer)
    sd = lambda v: st.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
    print(
        f"threads={THREADS}  vae_mlp 784-{'-'.join(map(str, HIDDEN))}-{LATENT}  batch={BATCH}  Adam lr={LR}  "
        f"{EPOCHS} epochs on {len(x)} statically binarized Fashion-MNIST images; seeds {SEED}..{SEED + REPEATS - 1}"
    )
    print_table(
        f"VAE training throughput (medians of {REPEATS} alternating runs) and test NLL (mean ± std over the runs' "
        "seeds)",
        [
            "library",
            "samples/s",
            "GFLOP/s (fraction of GEMM peak)",
            f"test NLL (IWAE k={NLL_K}, {len(x_te)} images, nats)",
            "ratio",
        ],
        [
            [
                "pythae 0.1.2 (BaseTrainer)",
                p,
                f"{p * flops / 1e9:.1f} ({p * flops / 1e9 / peak:.2f})",
                f"{npr:.2f} ± {sd(nll_peer):.2f}",
                "1.00 (reference)",
            ],
            [
                "reprlab (Trainer.fit)",
                o,
                f"{o * flops / 1e9:.1f} ({o * flops / 1e9 / peak:.2f})",
                f"{no:.2f} ± {sd(nll_ours):.2f}",
                f"speed {o / p:.2f}x (target >= 2x); NLL {no - npr:+.2f} nats (target <= 0)",
            ],
        ],
    )
    print(
        f"\n{flops / 1e6:.2f} MFLOP per training sample (forward + backward + Adam, counted by torch); float32 GEMM "
        "peak "
        f"{peak:.1f} GFLOP/s at {THREADS} thread(s). At that peak a step would run {peak / (p * flops / 1e9):.2f}x "
        "pythae's "
        "speed: the most any implementation of the same computation can gain over it here."
    )


if __name__ == "__main__":
    main()
