"""RBM training against scikit-learn's BernoulliRBM, as ratios measured in the same run.

Both train the same RBM (784 visible, 256 hidden) with persistent contrastive divergence
(one Gibbs step, binary negative samples), plain SGD at the same learning rate, batch 64,
the same number of epochs, on one thread each. Reported: training samples/s (ours through
the reprlab engine) and the quality of what was learnt, scored by the *same* code:
scikit-learn's ``score_samples`` (pseudo-log-likelihood) on test images, after copying our
weights into a BernoulliRBM, and the mean-field reconstruction error.

Runs alternate (ours, sklearn, ours, ...) and report medians, so background load hits both.
scikit-learn is already a reprlab dependency, so no separate peer venv is needed.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # numpy BLAS for scikit-learn: one thread, like torch below

import statistics as st  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table  # noqa: E402

from reprlab.config import TrainerConfig  # noqa: E402
from reprlab.data import load_images  # noqa: E402
from reprlab.data.batches import TensorBatches  # noqa: E402
from reprlab.data.images import locate_fashion_mnist  # noqa: E402
from reprlab.registry import create_model  # noqa: E402
from reprlab.train.engine import Trainer, seed_everything  # noqa: E402

HIDDEN = 256
BATCH = 64
LR = 0.05
EPOCHS = 2
N_TRAIN = 10000
REPEATS = 3


def as_sklearn(W: np.ndarray, c: np.ndarray, b: np.ndarray):
    """A fitted-looking BernoulliRBM holding these weights, so one scorer serves both models."""
    from sklearn.neural_network import BernoulliRBM

    r = BernoulliRBM(n_components=W.shape[0], random_state=0)
    r.components_, r.intercept_hidden_, r.intercept_visible_ = (
        W.astype(np.float64),
        c.astype(np.float64),
        b.astype(np.float64),
    )
    r.h_samples_ = np.zeros((BATCH, W.shape[0]))
    r.n_features_in_ = W.shape[1]
    r.random_state_ = np.random.RandomState(0)
    return r


def quality(r, x_te: np.ndarray) -> tuple[float, float]:
    """(mean pseudo-log-likelihood per image, mean-field reconstruction MSE) on the test images."""
    r.random_state_ = np.random.RandomState(0)  # score_samples flips one random pixel per image: the same ones for both
    pll = float(np.mean(r.score_samples(x_te)))
    h = 1 / (1 + np.exp(-(x_te @ r.components_.T + r.intercept_hidden_)))
    v = 1 / (1 + np.exp(-(h @ r.components_ + r.intercept_visible_)))
    return pll, float(((v - x_te) ** 2).mean())


def ours(x: torch.Tensor):
    seed_everything(0)
    m = create_model("rbm", input_shape=(x.shape[1],), hidden=HIDDEN, k=1, persistent=True, sample_visible=True)
    cfg = TrainerConfig(
        epochs=EPOCHS,
        batch_size=BATCH,
        lr=LR,
        optimizer="sgd",
        momentum=0.0,
        progress=False,
        tensorboard=False,
        threads=1,
    )
    t = time.perf_counter()
    Trainer(cfg).fit(m, TensorBatches({"x": x}, BATCH))
    sps = EPOCHS * len(x) / (time.perf_counter() - t)
    return sps, as_sklearn(m.W.detach().numpy(), m.c.detach().numpy(), m.b.detach().numpy())


def sklearn_rbm(x: np.ndarray):
    from sklearn.neural_network import BernoulliRBM

    r = BernoulliRBM(n_components=HIDDEN, learning_rate=LR, batch_size=BATCH, n_iter=EPOCHS, random_state=0)
    t = time.perf_counter()
    r.fit(x)
    return EPOCHS * len(x) / (time.perf_counter() - t), r


def main() -> None:
    torch.set_num_threads(1)
    name = "fashion-mnist" if locate_fashion_mnist() is not None else "digits"
    d = load_images(name, val_size=0)
    x = d.train[0].flatten(1)[:N_TRAIN]
    x_te = d.test[0].flatten(1)[:5000].double().numpy()
    x_np = x.numpy()  # float32, like ours
    o_sps, s_sps, o_q, s_q = [], [], [], []
    for _ in range(REPEATS):
        sps, r = ours(x)
        o_sps.append(sps)
        o_q.append(quality(r, x_te))
        sps, r = sklearn_rbm(x_np)
        s_sps.append(sps)
        s_q.append(quality(r, x_te))
    om, sm = st.median(o_sps), st.median(s_sps)
    opll, spll = o_q[0][0], s_q[0][0]
    orec, srec = o_q[0][1], s_q[0][1]
    print(
        f"data={name} ({len(x)} training images, {len(x_te)} test)  RBM {x.shape[1]}-{HIDDEN}  PCD-1, SGD lr {LR}, "
        f"batch {BATCH}, {EPOCHS} epochs, 1 thread each"
    )
    print_table(
        f"RBM training: reprlab vs scikit-learn BernoulliRBM (medians of {REPEATS} alternating runs)",
        ["what", "reprlab rbm", "sklearn BernoulliRBM", "ratio"],
        [
            ["training samples/s", om, sm, f"reprlab / sklearn = {om / sm:.2f}x"],
            [
                "test pseudo-log-likelihood (sklearn's scorer, higher is better)",
                opll,
                spll,
                f"difference {opll - spll:+.2f} nats",
            ],
            ["test reconstruction MSE (mean field)", orec, srec, f"reprlab / sklearn = {orec / srec:.2f}"],
        ],
    )


if __name__ == "__main__":
    main()
