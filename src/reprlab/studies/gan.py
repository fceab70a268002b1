"""Study `gan`: does a DCGAN learn to mimic Fashion-MNIST, and how do its objectives compare?

Trains the DCGAN with the minimax, non-saturating and WGAN-GP objectives over at least three seeds at every
preset, and scores the samples of each by FD-classifier and KID (in the features of reprlab's small
Fashion-MNIST classifier) and by class coverage. The selection rule (DESIGN.md section 8): the "best" objective,
which the targets test, is the one with the lowest mean FD-classifier against the validation images held out of
the training split (carved from it for digits), chosen with ``ctx.choose``; only then is the test split read,
once, to report every number (FD and KID against the test images, the per-epoch curve, the classifier's
accuracy). The real-data floor is the same metric between held-back training images and the test images.
Findings compare with 2 std of the seeds. D(x) and D(G(z)) are tracked after every epoch. The VAE's samples
are scored in the same features when a ``vae_mlp`` model is registered.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..config import TrainerConfig
from ..data.batches import TensorBatches
from ..metrics.classifier_features import (
    FeatureClassifierConfig,
    accuracy,
    classifier_features,
    fd_classifier,
    train_feature_classifier,
)
from ..metrics.frechet import frechet_distance, kernel_distance
from ..registry import list_models
from ..plots import image_grid, line_plot
from ..recipes.training import fit, seeded_model
from .base import Figure, Finding, StudyContext, StudyResult, Table, fmt, mean_std, register_study

OBJECTIVES = ("non-saturating", "minimax", "wgan-gp")
SEEDS = (0, 1, 2)  # every preset runs at least these three: the findings compare with 2 std of the seeds
PRESETS = {
    # n_train: training images per epoch (0 = all); n_val: validation images carved from the training split
    # when the data set has none (digits); n_samples: samples scored per run; curve_n: samples for the
    # per-epoch FD; recipe: "quick" (RECIPES) or "dcgan" (the papers' defaults, DCGAN_RECIPE)
    "smoke": dict(
        dataset="digits",
        n_train=0,
        n_val=300,
        epochs=2,
        batch=64,
        g=16,
        d=16,
        latent=16,
        n_samples=300,
        curve_n=150,
        kid_subsets=5,
        recipe="quick",
    ),
    "quick": dict(
        dataset="fashion-mnist",
        n_train=7680,  # 7,680 images x 2 epochs: see RECIPES for how this budget was chosen
        n_val=0,
        epochs=2,
        batch=64,
        g=16,
        d=16,
        latent=64,
        n_samples=5000,
        curve_n=1000,
        kid_subsets=20,
        recipe="quick",
    ),
    "full": dict(
        dataset="fashion-mnist",
        n_train=0,
        n_val=0,
        epochs=20,
        batch=64,
        g=64,
        d=64,
        latent=100,
        n_samples=10000,
        curve_n=5000,
        kid_subsets=100,
        recipe="dcgan",
    ),
}
# Adam settings per objective. The quick recipe was chosen on VALIDATION FD-classifier only (5,000 images held
# out of Fashion-MNIST's training split; the test split is never loaded) by experiments/gan_quick_recipe.py, whose
# output is experiments/out/gan_quick_recipe.json (one seed, 3 epochs of 5,120 images at widths 16): the two GAN
# losses share the recipe with the lowest mean of their validation FDs (lr 2e-3, betas (0, 0.99): 252, against 408
# for the DCGAN defaults lr 2e-4, betas (0.5, 0.999); an EMA of G at 0.95 gave 256), and WGAN-GP's lowest was lr 2e-3,
# betas (0, 0.9), n_critic 2 (289, against 610 at lr 2e-4, betas (0.5, 0.9); 303 with the EMA). The full preset
# keeps the DCGAN / WGAN-GP papers' settings. With that recipe the quick budget (240 steps at widths 16, so that
# three seeds fit the time one seed at widths 32 took) was then chosen the same way, by the two GAN losses' mean
# validation FD: 7,680 images x 2 epochs 245, 5,120 x 3 252, and widths 24 on 5,120 x 2 265
# (experiments/out/gan_quick_budget_*.json, from the same script with --width/--epochs/--n-train).
RECIPES = {
    "quick": {
        "non-saturating": dict(lr=2e-3, beta1=0.0, beta2=0.99, ema=0.0, n_critic=1),
        "minimax": dict(lr=2e-3, beta1=0.0, beta2=0.99, ema=0.0, n_critic=1),
        "wgan-gp": dict(lr=2e-3, beta1=0.0, beta2=0.9, ema=0.0, n_critic=2),
    },
    "dcgan": {
        "non-saturating": dict(lr=2e-4, beta1=0.5, beta2=0.999, ema=0.0, n_critic=1),
        "minimax": dict(lr=2e-4, beta1=0.5, beta2=0.999, ema=0.0, n_critic=1),
        "wgan-gp": dict(lr=2e-4, beta1=0.5, beta2=0.9, ema=0.0, n_critic=5),
    },
}


def study_seeds(ctx_seeds: tuple[int, ...]) -> tuple[int, ...]:
    """The seeds the study runs: the context's, topped up from SEEDS to at least three."""
    return tuple(dict.fromkeys((*ctx_seeds, *SEEDS)))[: max(len(SEEDS), len(ctx_seeds))]


def _classifier(data, ctx: StudyContext):
    """Fashion-MNIST: the cached FD-classifier (its info holds the test accuracy measured when it was cached).
    digits (smoke): a tiny one trained on the spot; its test accuracy is measured at the end of the study."""
    if data.name == "fashion-mnist":
        return fd_classifier(ctx.data_dir, verbose=ctx.progress)
    cfg = FeatureClassifierConfig(channels=(8, 16), feature_dim=32, epochs=4, batch_size=64)
    return train_feature_classifier(*data.train, cfg), {"cached": False}


@torch.no_grad()
def _features(clf, x: torch.Tensor) -> torch.Tensor:
    return classifier_features(clf, x)


@torch.no_grad()
def _coverage(clf, feats: torch.Tensor, threshold: float = 0.05) -> tuple[np.ndarray, int]:
    """``class_coverage`` from features already computed: the share of images per predicted class, and how
    many classes hold at least ``threshold`` of them."""
    pred = clf.head(feats).argmax(1)
    hist = np.bincount(pred.numpy(), minlength=clf.head.out_features) / max(len(pred), 1)
    return hist, int((hist >= threshold).sum())


def _train_gan(objective: str, x: torch.Tensor, p: dict, seed: int, clf, progress: bool):
    """The trained model, the features of ``curve_n`` fixed-noise samples before training and after each
    epoch (scored against the test split only at the end), the epoch history and the training seconds."""
    r = RECIPES[p["recipe"]][objective]
    model = seeded_model(
        "dcgan",
        seed,
        input_shape=tuple(x.shape[1:]),
        objective=objective,
        latent_dim=p["latent"],
        g_channels=p["g"],
        d_channels=p["d"],
        beta1=r["beta1"],
        beta2=r["beta2"],
        ema=r["ema"],
        n_critic=r["n_critic"],
    )
    feats: list[torch.Tensor] = []

    def keep(epoch, m):
        feats.append(_features(clf, m.sample(p["curve_n"], generator=torch.Generator().manual_seed(10_000 + seed))))
        return {}

    keep(-1, model)
    cfg = TrainerConfig(
        epochs=p["epochs"], batch_size=p["batch"], lr=r["lr"], seed=seed, progress=progress, tensorboard=False
    )
    t0 = time.perf_counter()
    data = TensorBatches({"x": x}, p["batch"], seed=seed, drop_last=True)
    trainer = fit(model, data, cfg, callbacks=[keep], description=f"dcgan {objective} seed={seed}")
    return model.eval(), feats, trainer.history, time.perf_counter() - t0


@torch.no_grad()
def _d_accuracy(model, x_real: torch.Tensor, seed: int) -> float:
    """D's accuracy at telling held-out real images from fresh samples (logit > 0 means real)."""
    model.eval()
    fake = model.sample(len(x_real), generator=torch.Generator().manual_seed(20_000 + seed))
    real_ok = (model.discriminator(x_real * 2 - 1) > 0).float().mean()
    fake_ok = (model.discriminator(fake * 2 - 1) <= 0).float().mean()
    return float((real_ok + fake_ok) / 2)


def _score(feats: torch.Tensor, ref_feats: torch.Tensor, p: dict, seed: int) -> dict:
    kid, _ = kernel_distance(feats, ref_feats, subsets=p["kid_subsets"], seed=seed)
    return {"fd": frechet_distance(feats, ref_feats), "kid": kid}


def _vae_samples(x: torch.Tensor, p: dict, seed: int, n: int, progress: bool):
    """Samples of the regularized family's VAE trained on the same images, or None when it is absent."""
    if "vae_mlp" not in list_models():
        return None
    model = seeded_model("vae_mlp", seed, input_shape=tuple(x.shape[1:]))
    cfg = TrainerConfig(
        epochs=p["epochs"], batch_size=p["batch"], lr=1e-3, seed=seed, progress=progress, tensorboard=False
    )
    fit(model, TensorBatches({"x": x}, p["batch"], seed=seed), cfg, description=f"vae_mlp seed={seed}")
    with torch.no_grad():
        return model.eval().sample(n, generator=torch.Generator().manual_seed(30_000 + seed))


def _below(values, limit: float) -> str:
    """The 2σ rule for a target "at most ``limit``": supported when the seeds' mean + 2 std is at most the
    limit, not supported when mean - 2 std is above it, inconclusive when the limit lies within 2 std."""
    m, s = mean_std(values)
    return "supported" if m + 2 * s <= limit else ("not supported" if m - 2 * s > limit else "inconclusive")


def _every(verdicts: list[str]) -> str:
    """One claim "for every objective" from its per-objective 2σ verdicts: supported if all are, not supported if
    one is not and none is, mixed if some are and some are not, inconclusive if the rest lie within 2 std."""
    if "not supported" in verdicts:
        return "mixed" if "supported" in verdicts else "not supported"
    return "supported" if all(v == "supported" for v in verdicts) else "inconclusive"


@register_study("gan", "GANs: DCGAN objectives, FD-classifier and class coverage", order=60)
def run(ctx: StudyContext) -> StudyResult:
    p = PRESETS[ctx.preset]
    seeds = study_seeds(tuple(ctx.seeds))
    data, (x_tr, _) = ctx.images(p["dataset"], p["n_train"])
    pool = data.train[0]  # the training images the floor draws from (never the validation ones)
    if len(data.val[0]):
        x_val = data.val[0]
        val_split = f"validation ({len(x_val):,} images held out of {data.name}'s training split)"
    else:  # digits has no validation split: carve one from the end of the training split
        pool, x_val = pool[: -p["n_val"]], pool[-p["n_val"] :]
        x_tr = pool[: p["n_train"]] if p["n_train"] else pool
        val_split = f"validation ({len(x_val):,} images carved from the end of {data.name}'s training split)"
    res = StudyResult(
        "gan",
        "GANs: DCGAN objectives, FD-classifier and class coverage",
        "A DCGAN's generator learns to mimic the data; its discriminator ends near chance; the saturating (minimax) "
        "generator loss learns more slowly early on than the non-saturating one.",
        ctx.preset,
        f"reprlab study gan --preset {ctx.preset}",
    )
    t_clf = time.perf_counter()
    clf, clf_info = _classifier(data, ctx)
    t_clf = time.perf_counter() - t_clf
    val_feats = _features(clf, x_val)
    n_ref = min(p["n_samples"], len(pool))
    # the floor: real training images (not trained on by G or held out) in the same metric and sample size
    floor_imgs = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(0))[:n_ref]]
    floor_feats = _features(clf, floor_imgs)

    feats: dict[str, list[torch.Tensor]] = {o: [] for o in OBJECTIVES}  # the n_samples samples' features
    curve_feats: dict[str, list[list[torch.Tensor]]] = {o: [] for o in OBJECTIVES}
    scores: dict[str, list[dict]] = {o: [] for o in OBJECTIVES}
    dyn: dict[str, list[list[tuple[float, float]]]] = {o: [] for o in OBJECTIVES}
    secs: dict[str, list[float]] = {o: [] for o in OBJECTIVES}
    grids = {}
    for obj in OBJECTIVES:
        for s in seeds:
            m, cf, hist, dt = _train_gan(obj, x_tr, p, s, clf, ctx.progress)
            f = _features(clf, m.sample(p["n_samples"], generator=torch.Generator().manual_seed(s)))
            h, covered = _coverage(clf, f)
            sc = {"fd_val": frechet_distance(f, val_feats), "coverage": covered, "hist": h.tolist()}
            # a critic's score has no threshold, so D accuracy is only defined for the two GAN losses; the real
            # images are validation ones, which G never trained on
            sc["d_acc"] = _d_accuracy(m, x_val[:2000], s) if obj != "wgan-gp" else None
            sc["d_real"], sc["d_fake"] = hist[-1]["train/d_real"], hist[-1]["train/d_fake"]
            scores[obj].append(sc)
            feats[obj].append(f)
            curve_feats[obj].append(cf)
            dyn[obj].append([(h["train/d_real"], h["train/d_fake"]) for h in hist])
            secs[obj].append(dt)
            if obj not in grids:
                grids[obj] = m.fixed_grid()

    vae, vae_feats = None, None
    try:
        vs = _vae_samples(x_tr, p, seeds[0], p["n_samples"], ctx.progress)
        if vs is not None:
            vae_feats = _features(clf, vs)
            vae = {"fd_val": frechet_distance(vae_feats, val_feats)}
            vae["hist"], vae["coverage"] = (lambda hc: (hc[0].tolist(), hc[1]))(_coverage(clf, vae_feats))
            image_grid(vs[:64], ctx.path("samples_vae.png"), title="VAE samples")
            res.figures.append(Figure("samples_vae.png", "Samples of the VAE (vae_mlp) trained on the same images."))
    except Exception as e:  # another family's model: report, never hide, a failure
        res.notes.append(f"The VAE comparison failed ({e.__class__.__name__}: {e}).")

    # ------------------------------------------------------------------ the choice, on validation
    fd_val = {o: mean_std(sc["fd_val"] for sc in scores[o])[0] for o in OBJECTIVES}
    best = ctx.choose(
        "best DCGAN objective (the one the targets test)",
        fd_val,
        split=val_split,
        by=f"FD-classifier of {p['n_samples']} samples, mean over {len(seeds)} seeds, lower is better",
        lower_is_better=True,
    )

    # ------------------------------------------------------------------ the test split, read once to report
    x_te, y_te = ctx.read_test(data)
    if "test_accuracy" not in clf_info:
        clf_info["test_accuracy"] = accuracy(clf, x_te, y_te)
    n_ref = min(n_ref, len(x_te))
    ref_feats = _features(clf, x_te[:n_ref])
    floor = _score(floor_feats[:n_ref], ref_feats, p, 0)
    floor["hist"], floor["coverage"] = (lambda hc: (hc[0].tolist(), hc[1]))(_coverage(clf, floor_feats[:n_ref]))
    floor["fd_val"] = frechet_distance(floor_feats, val_feats)
    for obj in OBJECTIVES:
        for s, sc, f in zip(seeds, scores[obj], feats[obj]):
            sc.update(_score(f, ref_feats, p, s))
    if vae is not None:
        vae.update(_score(vae_feats, ref_feats, p, seeds[0]))
    curves = {o: [[frechet_distance(f, ref_feats) for f in cf] for cf in curve_feats[o]] for o in OBJECTIVES}
    test_hist = _coverage(clf, ref_feats)[0]

    # ------------------------------------------------------------------ tables
    def col(obj, k):
        return [sc[k] for sc in scores[obj]]

    rows = []
    for obj in OBJECTIVES:
        rows.append(
            [
                obj + (" (best on validation)" if obj == best else ""),
                fmt(col(obj, "fd_val")),
                fmt(col(obj, "fd")),
                fmt([1e3 * v for v in col(obj, "kid")]),
                fmt(col(obj, "coverage"), 3),
                fmt(col(obj, "d_real"), 3),
                fmt(col(obj, "d_fake"), 3),
                fmt(col(obj, "d_acc"), 3) if obj != "wgan-gp" else "-",
                f"{np.mean(secs[obj]):.0f}",
            ]
        )
    if vae is not None:
        rows.append(
            [
                "VAE (vae_mlp)",
                f"{vae['fd_val']:.4g}",
                f"{vae['fd']:.4g}",
                f"{1e3 * vae['kid']:.4g}",
                str(vae["coverage"]),
                "-",
                "-",
                "-",
                "-",
            ]
        )
    rows.append(
        [
            "real floor (train images)",
            f"{floor['fd_val']:.4g}",
            f"{floor['fd']:.4g}",
            f"{1e3 * floor['kid']:.4g}",
            str(floor["coverage"]),
            "-",
            "-",
            "-",
            "-",
        ]
    )
    acc = clf_info.get("test_accuracy", float("nan"))
    recipe = "; ".join(
        f"{o}: lr {r['lr']:g}, betas ({r['beta1']:g}, {r['beta2']:g})"
        + (f", EMA of G {r['ema']:g}" if r["ema"] else "")
        + (f", n_critic {r['n_critic']}" if r["n_critic"] > 1 else "")
        for o, r in RECIPES[p["recipe"]].items()
    )
    res.tables.append(
        Table(
            f"Sample quality ({p['n_samples']} samples; mean ± std over {len(seeds)} seeds): FD-classifier on the "
            f"validation split, which chose the best objective, then on the {data.name} test set, read once to report",
            [
                "model",
                "FD-classifier (validation)",
                "FD-classifier (test)",
                "KID × 1000 (test)",
                "classes ≥ 5%",
                "D(x) last epoch",
                "D(G(z)) last epoch",
                "D accuracy (held out)",
                "train s",
            ],
            rows,
            f"Features: the {clf.feature[0].out_features}-d penultimate layer of reprlab's classifier (test accuracy "
            f"{acc:.3f}). "
            "FD-classifier is not FID: Lucic et al. 2018 report Inception FID on Fashion-MNIST (NS GAN 26.5, WGAN "
            "21.5, WGAN-GP 24.5), "
            f"a different feature space, so those numbers are context only. DCGAN G/D widths {p['g']}/{p['d']}, latent "
            f"{p['latent']}, "
            f"{len(x_tr)} training images, {p['epochs']} epochs, batch {p['batch']}, Adam: {recipe}"
            + (" (chosen on validation FD by experiments/gan_quick_recipe.py)" if p["recipe"] == "quick" else "")
            + ". The real floor scores held-back training images in the same metric and sample size. D accuracy "
            "tells validation images from samples. D(x), D(G(z)) are probabilities for minimax / non-saturating "
            "and critic scores for WGAN-GP.",
        )
    )
    classes = list(data.classes)
    hist_rows = [[obj] + [f"{v:.3f}" for v in scores[obj][0]["hist"]] for obj in OBJECTIVES]
    if vae is not None:
        hist_rows.append(["VAE"] + [f"{v:.3f}" for v in vae["hist"]])
    hist_rows.append(["test images"] + [f"{v:.3f}" for v in test_hist])
    res.tables.append(
        Table(
            f"Class coverage: share of {p['n_samples']} samples the classifier assigns to each class (seed {seeds[0]})",
            ["model"] + classes,
            hist_rows,
        )
    )

    # ------------------------------------------------------------------ figures
    epochs = list(range(0, p["epochs"] + 1))
    line_plot(
        epochs,
        {
            o: (np.mean(curves[o], 0).tolist(), np.std(curves[o], 0).tolist() if len(seeds) > 1 else None)
            for o in OBJECTIVES
        }
        | {"real floor": ([floor["fd"]] * len(epochs), None)},
        ctx.path("fd_vs_epoch.png"),
        "epoch",
        "FD-classifier",
        "FD-classifier against epoch (epoch 0 = untrained G)",
        logy=True,
    )
    res.figures.append(
        Figure(
            "fd_vs_epoch.png",
            f"FD-classifier (against the test set) of {p['curve_n']} samples after each epoch; the flat line is "
            "the real-data floor.",
        )
    )
    ep = list(range(1, p["epochs"] + 1))
    series = {}
    for o in ("non-saturating", "minimax"):
        arr = np.asarray(dyn[o])  # (seeds, epochs, 2)
        series[f"{o} D(x)"] = (arr[:, :, 0].mean(0).tolist(), None)
        series[f"{o} D(G(z))"] = (arr[:, :, 1].mean(0).tolist(), None)
    line_plot(
        ep,
        series,
        ctx.path("d_dynamics.png"),
        "epoch",
        "mean D output (probability)",
        "D(x) and D(G(z)) during training",
    )
    arr = np.asarray(dyn["wgan-gp"])
    line_plot(
        ep,
        {"critic f(x)": (arr[:, :, 0].mean(0).tolist(), None), "critic f(G(z))": (arr[:, :, 1].mean(0).tolist(), None)},
        ctx.path("critic_dynamics.png"),
        "epoch",
        "mean critic score",
        "WGAN-GP critic scores during training",
    )
    res.figures += [
        Figure("d_dynamics.png", "Epoch means of D(x) and D(G(z)) for the two GAN losses (0.5 is chance)."),
        Figure("critic_dynamics.png", "Epoch means of the WGAN-GP critic on real and generated images."),
    ]
    for obj, grid in grids.items():
        image_grid(grid, ctx.path(f"samples_{obj}.png"), title=f"DCGAN {obj}")
        res.figures.append(Figure(f"samples_{obj}.png", f"Fixed-noise samples of the {obj} DCGAN (seed {seeds[0]})."))

    # ------------------------------------------------------------------ findings (the 2σ rule: a gap or a
    # target counts only when it exceeds 2 std of the seeds)
    fd_mean = {o: mean_std(col(o, "fd"))[0] for o in OBJECTIVES}
    init = {o: [c[0] for c in curves[o]] for o in OBJECTIVES}
    # tenfold: each seed's final FD against a tenth of its own untrained generator's (both on curve_n samples)
    fell = {o: _below([c[-1] / (0.1 * c[0]) for c in curves[o]], 1.0) for o in OBJECTIVES}
    res.findings.append(
        Finding(
            "G learns to mimic the data: training cuts FD-classifier at least tenfold from the untrained generator, "
            "for every objective (by more than 2 std of the seeds).",
            _every(list(fell.values())),
            "; ".join(
                f"{o}: {np.mean(init[o]):.3g} -> {mean_std(c[-1] for c in curves[o])[0]:.3g} "
                f"(final / initial {fmt([c[-1] / c[0] for c in curves[o]], 2)}; {fell[o]})"
                for o in OBJECTIVES
            ),
        )
    )
    gan_objs = ("non-saturating", "minimax")
    near = {o: _below([abs(a - 0.5) for a in col(o, "d_acc")], 0.1) for o in gan_objs}
    close = {o: _below(col(o, "fd"), 5 * floor["fd"]) for o in gan_objs}
    evidence = "; ".join(
        f"{o}: D accuracy {fmt(col(o, 'd_acc'), 3)} (within 0.5 ± 0.1: {near[o]}), D(x) "
        f"{mean_std(col(o, 'd_real'))[0]:.3f}, D(G(z)) {mean_std(col(o, 'd_fake'))[0]:.3f}, FD {fmt(col(o, 'fd'), 3)} "
        f"({fd_mean[o] / max(floor['fd'], 1e-12):.0f}× the floor; within 5×: {close[o]})"
        for o in gan_objs
    )
    # chance-level D means "G fools D" only when G's samples are close to the data; otherwise D is just weak
    flags = list(near.values()) + list(close.values())
    if all(v == "supported" for v in flags):
        verdict = "supported"
    elif all(v == "not supported" for v in near.values()):
        verdict = "not supported"
    elif "not supported" not in flags:
        verdict = "inconclusive"
    else:
        verdict = "mixed"
        if all(v == "supported" for v in near.values()):
            evidence += ". D is at chance although the samples are far from the real-data floor: D is weak, not fooled"
    res.findings.append(
        Finding(
            "D ends near chance because G mimics the data: D's accuracy at telling held-out real images from samples "
            "is within 0.5 ± 0.1, while G's FD-classifier is within 5× of the floor (each beyond 2 std of the seeds).",
            verdict,
            evidence,
        )
    )
    k = max(1, p["epochs"] // 4)  # "early": the first quarter of training (at least one epoch)
    early = {o: [float(np.mean(c[1 : k + 1])) for c in curves[o]] for o in gan_objs}
    mm, ms = mean_std(early["minimax"])
    nm, ns = mean_std(early["non-saturating"])
    gap = 2 * max(ms, ns)
    res.findings.append(
        Finding(
            f"The saturating (minimax) G loss learns more slowly early on: its FD-classifier over the first {k} "
            "epoch(s) is higher than the non-saturating loss's (by more than 2 std of the seeds).",
            "supported" if mm > nm + gap else ("not supported" if mm < nm - gap else "inconclusive"),
            f"mean FD-classifier over epochs 1-{k}: minimax {mm:.3g} ± {ms:.2g}, non-saturating {nm:.3g} ± {ns:.2g} "
            f"({len(seeds)} seeds; 2σ margin {gap:.3g})",
        )
    )
    chosen = f"best DCGAN ({best}, chosen on validation FD {fd_val[best]:.3g})"
    if vae is not None:
        res.findings.append(
            Finding(
                "Target 1: the best DCGAN's FD-classifier is at most half the VAE's (by more than 2 std of the seeds).",
                _below(col(best, "fd"), 0.5 * vae["fd"]),
                f"{chosen}: test FD {fmt(col(best, 'fd'))} vs VAE {vae['fd']:.3g} (ratio "
                f"{fd_mean[best] / vae['fd']:.2f})",
            )
        )
    else:
        res.notes.append(
            "Target 1 (best DCGAN ≤ ½ the VAE's FD-classifier) is not measured here: no vae_mlp model is registered."
        )
    cov = mean_std(col(best, "coverage"))[0]
    res.findings.append(
        Finding(
            "Target 2: the best DCGAN covers 10 of 10 classes (each holds ≥ 5% of its samples) in every seed.",
            "supported" if min(col(best, "coverage")) == 10 else "not supported",
            f"{chosen}: {cov:.3g} classes on average, {min(col(best, 'coverage'))} at worst; per objective: "
            + ", ".join(f"{o} {fmt(col(o, 'coverage'), 3)}" for o in OBJECTIVES),
        )
    )
    ratio = fd_mean[best] / max(floor["fd"], 1e-12)
    res.findings.append(
        Finding(
            "Target 3: the best DCGAN's FD-classifier is within 5× of the real-data floor (by more than 2 std of the "
            "seeds).",
            _below(col(best, "fd"), 5 * floor["fd"]),
            f"{chosen}: test FD {fmt(col(best, 'fd'))} vs floor {floor['fd']:.3g}: {ratio:.1f}×",
        )
    )
    res.notes.append(
        f"FD-classifier features come from a classifier with test accuracy {acc:.3f} "
        f"({'loaded from cache' if clf_info.get('cached') else f'trained in {t_clf:.0f} s'}); the issue asks for ≥ "
        "0.92."
    )
    if ctx.preset != "full":
        res.notes.append(
            f"The {ctx.preset} preset trains {len(seeds)} seed(s) on {len(x_tr)} images for {p['epochs']} epochs with "
            "small "
            "networks: its numbers show the pipeline, not converged GANs. The full preset trains 3 seeds on 55,000 "
            "images."
        )
    res.notes.append(
        f"The best objective ({best}) was chosen by its mean FD-classifier on the {val_split} split; the test set "
        "was read only after that choice, to report every number in the tables and findings."
    )
    res.data.update(
        {
            "scores": scores,
            "floor": floor,
            "vae": vae,
            "curves": curves,
            "dynamics": dyn,
            "seconds": secs,
            "classifier": {k: v for k, v in clf_info.items() if k != "config"},
            "best": best,
            "best_chosen_on": val_split,
            "seeds": list(seeds),
            "recipe": RECIPES[p["recipe"]],
        }
    )
    return res
