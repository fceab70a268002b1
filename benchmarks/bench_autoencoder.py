"""MLP autoencoder training speed on Fashion-MNIST, as ratios measured in the same run:

1. against the machine's own float32 matmul GFLOP/s (target: >= 0.70);
2. against the usual tutorial loop: torchvision ``FashionMNIST`` + ``DataLoader`` + ``ToTensor``,
   the same model, optimizer and batch size (target: >= 2x samples/s).

Runs alternate (ours, tutorial, ours, ...) and report medians, so background load hits both.
"""

from __future__ import annotations

import gzip
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import matmul_gflops, print_table, train_step_flops  # noqa: E402

from reprlab.config import TrainerConfig  # noqa: E402
from reprlab.data import load_images  # noqa: E402
from reprlab.data.batches import TensorBatches  # noqa: E402
from reprlab.data.images import FASHION_MNIST_FILES, locate_fashion_mnist  # noqa: E402
from reprlab.registry import create_model  # noqa: E402
from reprlab.train.engine import Trainer, seed_everything  # noqa: E402

BATCH = 256
# the default ae_mlp, and a wider one where matmuls dominate the step
SIZES = {"default 784-512-256-32": (512, 256), "wide 784-1024-512-32": (1024, 512)}
STEPS = 150
REPEATS = 3


def new_model(hidden):
    seed_everything(0)
    return create_model("ae_mlp", input_shape=(1, 28, 28), code_dim=32, hidden=hidden)


def ours(x: torch.Tensor, hidden) -> float:
    model = new_model(hidden)
    cfg = TrainerConfig(epochs=1, batch_size=BATCH, max_steps=STEPS, progress=False, tensorboard=False)
    t = time.perf_counter()
    Trainer(cfg).fit(model, TensorBatches({"x": x}, BATCH))
    return STEPS * BATCH / (time.perf_counter() - t)


def tutorial_dataset(root: Path):
    """torchvision's FashionMNIST over the local IDX files (no download): it reads raw/ uncompressed."""
    from torchvision import datasets, transforms

    src = locate_fashion_mnist()
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for stem in FASHION_MNIST_FILES.values():
        f = src / stem if (src / stem).exists() else src / (stem + ".gz")
        data = f.read_bytes()
        (raw / stem).write_bytes(gzip.decompress(data) if f.suffix == ".gz" else data)
    return datasets.FashionMNIST(str(root), train=True, download=False, transform=transforms.ToTensor())


def tutorial(ds, hidden) -> float:
    from torch.utils.data import DataLoader

    model = new_model(hidden)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(ds, batch_size=BATCH, shuffle=True)
    t = time.perf_counter()
    for i, (x, _) in enumerate(loader):
        if i == STEPS:
            break
        opt.zero_grad()
        loss = F.mse_loss(model(x), x)
        loss.backward()
        opt.step()
    return STEPS * BATCH / (time.perf_counter() - t)


def flops_per_sample(x: torch.Tensor, hidden) -> float:
    model = new_model(hidden)
    opt = torch.optim.Adam(model.parameters())
    xb = x[:BATCH]

    def step():
        opt.zero_grad()
        model.loss({"x": xb})["loss"].backward()
        opt.step()

    return train_step_flops(step) / BATCH


def main() -> None:
    import statistics as st

    if locate_fashion_mnist() is None:
        print("Fashion-MNIST not installed; skipping (apt-get install dataset-fashion-mnist)")
        return
    x = load_images("fashion-mnist").train[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ds = tutorial_dataset(Path(tmp))
        for label, hidden in SIZES.items():
            flops = flops_per_sample(x, hidden)
            peak, ours_sps, tut_sps = [], [], []
            for _ in range(REPEATS):
                peak.append(matmul_gflops())
                ours_sps.append(ours(x, hidden))
                tut_sps.append(tutorial(ds, hidden))
            peak_m, ours_m, tut_m = st.median(peak), st.median(ours_sps), st.median(tut_sps)
            ours_gf = ours_m * flops / 1e9
            rows.append(
                [
                    label,
                    f"{flops / 1e6:.2f}",
                    peak_m,
                    ours_m,
                    ours_gf,
                    f"{ours_gf / peak_m:.2f}",
                    tut_m,
                    f"{ours_m / tut_m:.2f}x",
                ]
            )
    print(
        f"threads={torch.get_num_threads()}  batch={BATCH}  FLOPs per sample per training step counted by "
        "torch.utils.flop_counter; medians of 3 alternating runs (matmul, reprlab, tutorial)"
    )
    print_table(
        "MLP autoencoder training throughput on Fashion-MNIST",
        [
            "ae_mlp",
            "MFLOP/sample",
            "matmul GFLOP/s",
            "reprlab samples/s",
            "reprlab GFLOP/s",
            "of matmul (target >= 0.70)",
            "tutorial samples/s",
            "reprlab / tutorial (target >= 2x)",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
