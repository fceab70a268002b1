"""DCGAN training throughput on Fashion-MNIST, as a ratio measured in the same run:

reprlab's engine (in-memory tensors batched by index, one D and one G step per batch) against the
same DCGAN architecture trained the usual standalone way: torchvision ``FashionMNIST`` with
``ToTensor`` + ``Normalize`` transforms, a ``DataLoader``, and the PyTorch DCGAN tutorial's loop
(``BCELoss`` on sigmoid outputs, separate real and fake backward passes). Target: >= 2x images/s.

Runs alternate (ours, tutorial, ours, ...) and report medians, so background load hits both.
"""

from __future__ import annotations

import statistics as st
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_autoencoder import tutorial_dataset  # noqa: E402  (torchvision's FashionMNIST over the local files)
from common import print_table  # noqa: E402

from reprlab.config import TrainerConfig  # noqa: E402
from reprlab.data import load_images  # noqa: E402
from reprlab.data.batches import TensorBatches  # noqa: E402
from reprlab.data.images import locate_fashion_mnist  # noqa: E402
from reprlab.models.gan import Discriminator, Generator  # noqa: E402
from reprlab.registry import create_model  # noqa: E402
from reprlab.train.engine import Trainer, seed_everything  # noqa: E402

BATCH = 64
WIDTH = 32
LATENT = 64
STEPS = 150
REPEATS = 3


def ours(x: torch.Tensor) -> float:
    seed_everything(0)
    model = create_model("dcgan", latent_dim=LATENT, g_channels=WIDTH, d_channels=WIDTH, objective="non-saturating")
    cfg = TrainerConfig(epochs=1, batch_size=BATCH, lr=2e-4, max_steps=STEPS, progress=False, tensorboard=False)
    t = time.perf_counter()
    Trainer(cfg).fit(model, TensorBatches({"x": x}, BATCH, drop_last=True))
    return STEPS * BATCH / (time.perf_counter() - t)


def tutorial(ds) -> float:
    """The PyTorch DCGAN tutorial's loop over a DataLoader, with the same G and D layers."""
    from torch.utils.data import DataLoader

    seed_everything(0)
    net_g = Generator(LATENT, WIDTH, (1, 28, 28))
    net_d = nn.Sequential(Discriminator(WIDTH, (1, 28, 28)), nn.Sigmoid())
    criterion = nn.BCELoss()
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loader = DataLoader(ds, batch_size=BATCH, shuffle=True, drop_last=True)
    t = time.perf_counter()
    for i, (real, _) in enumerate(loader):
        if i == STEPS:
            break
        b = real.size(0)
        net_d.zero_grad()
        label = torch.full((b,), 1.0)
        err_real = criterion(net_d(real).view(-1), label)
        err_real.backward()
        fake = net_g(torch.randn(b, LATENT))
        label.fill_(0.0)
        err_fake = criterion(net_d(fake.detach()).view(-1), label)
        err_fake.backward()
        opt_d.step()
        net_g.zero_grad()
        label.fill_(1.0)
        err_g = criterion(net_d(fake).view(-1), label)
        err_g.backward()
        opt_g.step()
    return STEPS * BATCH / (time.perf_counter() - t)


def main() -> None:
    if locate_fashion_mnist() is None:
        print("Fashion-MNIST not installed; skipping (apt-get install dataset-fashion-mnist)")
        return
    from torchvision import transforms

    x = load_images("fashion-mnist").train[0]
    with tempfile.TemporaryDirectory() as tmp:
        ds = tutorial_dataset(Path(tmp))
        ds.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
        ours_ips, tut_ips = [], []
        for _ in range(REPEATS):
            ours_ips.append(ours(x))
            tut_ips.append(tutorial(ds))
    o, t = st.median(ours_ips), st.median(tut_ips)
    print(
        f"threads={torch.get_num_threads()}  DCGAN G/D width {WIDTH}, latent {LATENT}, batch {BATCH}, {STEPS} steps "
        "per run"
    )
    print_table(
        "DCGAN training throughput (medians of 3 alternating runs)",
        ["what", "images/s", "ratio"],
        [
            ["reprlab engine (dcgan, non-saturating)", o, f"{o / t:.2f}x the tutorial (target >= 2x)"],
            ["DCGAN tutorial loop (DataLoader + transforms)", t, "1.00 (reference)"],
        ],
    )


if __name__ == "__main__":
    main()
