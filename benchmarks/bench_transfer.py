"""Transfer-learning training speed, as ratios measured in the same run (runs alternate; medians):

1. images/s of each freeze mode (frozen, last-k=1, all) against scratch, same model and batch:
   feature extraction skips the backbone's backward pass, so it should be the fastest
   (expected: frozen > last-k > all ~= scratch);
2. the engine in mode ``all`` against a plain PyTorch loop with the same two parameter groups
   (target: >= 0.9x, i.e. the engine, freeze policy and param groups cost under 10%).

Uses generated 28x28 images (the speed does not depend on their content), one thread.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table  # noqa: E402

from reprlab.recipes.transfer import target_model  # noqa: E402
from reprlab.config import TrainerConfig  # noqa: E402
from reprlab.data.batches import TensorBatches  # noqa: E402
from reprlab.train.engine import Trainer, seed_everything  # noqa: E402

BATCH, STEPS, REPEATS, WIDTH = 128, 20, 3, 32


def data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(BATCH * STEPS, 1, 28, 28, generator=g), torch.randint(0, 10, (BATCH * STEPS,), generator=g)


def source():
    seed_everything(0)
    return target_model(None, 10, "scratch", width=WIDTH, input_shape=(1, 28, 28))


def ours(src, mode: str, x, y) -> float:
    seed_everything(0)
    m = target_model(src, 10, mode, unfreeze=1)
    cfg = TrainerConfig(epochs=1, batch_size=BATCH, max_steps=STEPS, progress=False, tensorboard=False)
    t = time.perf_counter()
    Trainer(cfg).fit(m, TensorBatches({"x": x, "y": y}, BATCH))
    return STEPS * BATCH / (time.perf_counter() - t)


def plain(src, x, y) -> float:
    """The loop one writes by hand: two Adam groups, shuffled index batches, no engine."""
    seed_everything(0)
    m = target_model(src, 10, "all")
    groups = [{"params": g["params"], "lr": 1e-3 * g.get("lr_mult", 1.0)} for g in m.optimizer_groups()[0]]
    opt = torch.optim.Adam(groups)
    m.train()
    t = time.perf_counter()
    order = torch.randperm(len(x))
    for i in range(STEPS):
        idx = order[i * BATCH : (i + 1) * BATCH]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(m(x[idx]), y[idx]).backward()
        opt.step()
    return STEPS * BATCH / (time.perf_counter() - t)


def main() -> None:
    torch.set_num_threads(1)
    x, y = data()
    src = source()
    modes = ["scratch", "frozen", "last-k", "all"]
    speed = {m: [] for m in modes + ["plain"]}
    for _ in range(REPEATS):  # alternate, so background load hits every mode alike
        for m in modes:
            speed[m].append(ours(src, m, x, y))
        speed["plain"].append(plain(src, x, y))
    med = {k: statistics.median(v) for k, v in speed.items()}
    rows = [[m, f"{med[m]:.0f}", f"{med[m] / med['scratch']:.2f}"] for m in modes]
    print_table(
        f"Training images/s by freeze mode (small CNN width {WIDTH}, batch {BATCH}, 1 thread)",
        ["mode", "images/s", "ratio to scratch"],
        rows,
    )
    ratio = med["all"] / med["plain"]
    print_table(
        "Engine against a plain PyTorch loop (mode all, two parameter groups)",
        ["ours images/s", "plain images/s", "ratio", "target >= 0.9"],
        [[f"{med['all']:.0f}", f"{med['plain']:.0f}", f"{ratio:.2f}", "met" if ratio >= 0.9 else "not met"]],
    )


if __name__ == "__main__":
    main()
