"""Choose the GAN study's quick recipe (optimizer settings per objective) on VALIDATION FD-classifier only.

Each candidate trains the quick preset's DCGAN (Fashion-MNIST, the same widths, images and epochs as
``studies/gan.py`` PRESETS["quick"]) for one seed, samples ``N_SAMPLES`` images and scores them by
FD-classifier against the 5,000 validation images held out of Fashion-MNIST's training split. The test split
is never loaded. The winner per objective (lowest validation FD) is what ``studies/gan.py`` uses; the table
also prints each candidate's training seconds (on a shared machine: compare them only within one run).

    PYTHONPATH=src .venv/bin/python experiments/gan_quick_recipe.py            # writes experiments/out/
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from reprlab.config import TrainerConfig
from reprlab.data import load_images
from reprlab.data.batches import TensorBatches
from reprlab.metrics.classifier_features import classifier_features, fd_classifier
from reprlab.metrics.frechet import frechet_distance
from reprlab.recipes.training import fit, seeded_model

# The two GAN losses play the same game with a different G loss, so they share one recipe, chosen by the mean
# of their validation FDs; WGAN-GP (a critic, its own betas) gets its own.
# recipe name -> (lr, beta1, beta2, ema of G, n_critic)
GAN_RECIPES = {
    "dcgan-default": (2e-4, 0.5, 0.999, 0.0, 1),
    "lr1e-3": (1e-3, 0.5, 0.999, 0.0, 1),
    "lr2e-3 b(0,.99)": (2e-3, 0.0, 0.99, 0.0, 1),
    "lr2e-3 b(0,.99) ema.95": (2e-3, 0.0, 0.99, 0.95, 1),
    "lr1e-3 b(.5,.999) ema.95": (1e-3, 0.5, 0.999, 0.95, 1),
}
WGAN_RECIPES = {
    "lr2e-4 b(.5,.9) nc2": (2e-4, 0.5, 0.9, 0.0, 2),
    "lr2e-3 b(0,.9) nc2": (2e-3, 0.0, 0.9, 0.0, 2),
    "lr2e-3 b(0,.9) nc2 ema.95": (2e-3, 0.0, 0.9, 0.95, 2),
}
ABBR = {"non-saturating": "NS", "minimax": "MM", "wgan-gp": "WGP"}
CANDIDATES = [
    (f"{ABBR[o]} {r}", o, r, *v)
    for o, table in (("non-saturating", GAN_RECIPES), ("minimax", GAN_RECIPES), ("wgan-gp", WGAN_RECIPES))
    for r, v in table.items()
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=5120)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--width", type=int, default=16, help="G and D channels")
    ap.add_argument("--latent", type=int, default=64)
    ap.add_argument("--n-samples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="run only candidates whose name contains this")
    ap.add_argument("--out", default=str(Path(__file__).parent / "out" / "gan_quick_recipe.json"))
    a = ap.parse_args()
    torch.set_num_threads(1)

    data = load_images("fashion-mnist", None, val_size=5000)  # .test is never touched here
    x = data.train[0][: a.n_train]
    clf, _ = fd_classifier(verbose=False)
    val_feats = classifier_features(clf, data.val[0])
    rows = []
    out = Path(a.out)
    settings = {k: v for k, v in vars(a).items() if k not in ("only", "out")}
    # rows already measured with the same settings are kept (a run with --only adds to them)
    old = json.loads(out.read_text()) if out.is_file() else {}
    rows = [r for r in old.get("candidates", []) if r.get("settings") == settings]
    done = {r["name"] for r in rows}
    for name, obj, recipe, lr, b1, b2, ema, nc in CANDIDATES:
        if (a.only and a.only not in name) or name in done:
            continue
        model = seeded_model(
            "dcgan",
            a.seed,
            input_shape=tuple(x.shape[1:]),
            objective=obj,
            latent_dim=a.latent,
            g_channels=a.width,
            d_channels=a.width,
            beta1=b1,
            beta2=b2,
            ema=ema,
            n_critic=nc,
        )
        cfg = TrainerConfig(epochs=a.epochs, batch_size=64, lr=lr, seed=a.seed, progress=False, tensorboard=False)
        t0 = time.perf_counter()
        fit(model, TensorBatches({"x": x}, 64, seed=a.seed, drop_last=True), cfg)
        secs = time.perf_counter() - t0
        s = model.eval().sample(a.n_samples, generator=torch.Generator().manual_seed(a.seed))
        fd = frechet_distance(classifier_features(clf, s), val_feats)
        row = dict(
            name=name,
            objective=obj,
            recipe=recipe,
            settings=settings,
            lr=lr,
            betas=[b1, b2],
            ema=ema,
            n_critic=nc,
            val_fd=fd,
            train_s=secs,
        )
        rows.append(row)
        print(f"{name:32s} val FD {fd:8.2f}   train {secs:5.1f} s", flush=True)
    val = {r["name"]: r["val_fd"] for r in rows}
    best = {}
    gan = {r: [val.get(f"{ABBR[o]} {r}") for o in ("non-saturating", "minimax")] for r in GAN_RECIPES}
    gan = {r: sum(v) / 2 for r, v in gan.items() if None not in v}
    if gan:
        best["non-saturating and minimax"] = min(gan, key=gan.get)
    wgan = {r: val[f"WGP {r}"] for r in WGAN_RECIPES if f"WGP {r}" in val}
    if wgan:
        best["wgan-gp"] = min(wgan, key=wgan.get)
    for k, v in best.items():
        print(f"best on validation for {k}: {v}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "command": "PYTHONPATH=src .venv/bin/python experiments/gan_quick_recipe.py",
                "split": "validation (5,000 images held out of Fashion-MNIST's training split)",
                "by": f"FD-classifier of {a.n_samples} samples, lower is better (one seed, {a.seed})",
                "settings": settings,
                "candidates": rows,
                "mean val FD of the two GAN losses per recipe": gan,
                "best": best,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
