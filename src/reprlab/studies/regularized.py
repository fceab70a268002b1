"""Study `regularized`: does each regularizer give its autoencoder the property it promises?

At one code size it trains a plain autoencoder (sigmoid codes, no penalty), a sparse one
(KL(ρ ‖ ρ̂) penalty), a denoising one (Gaussian corruption) and a VAE, and measures:

* reconstruction error on clean and on Gaussian-corrupted test images (noise std 0 to 0.5);
* code sparsity (mean activation against ρ, fraction of activations below 0.05) and how
  distinct the learned features are (mean |cosine| between encoder weight vectors);
* linear-probe (logistic regression) accuracy of each code, against raw pixels and PCA;
* for the VAE: test NLL (IWAE), against an independent-pixel baseline, samples, interpolations
  and a 2-D latent map.

The study chooses nothing from data: ρ, λ, the denoising σ, the code size, the epochs and the learning rates
are fixed constants (the study searches over none of them), and every model is reported. It trains every
model first and reads the test split once, after training (DESIGN.md section 8).
"""

from __future__ import annotations


import torch

from ..config import TrainerConfig
from ..data.batches import TensorBatches
from ..metrics.nll import iwae_nll
from ..metrics.probes import linear_probe_accuracy
from ..models.regularized import corrupt
from ..plots import image_grid, line_plot, reconstruction_grid, scatter_2d
from ..recipes.training import fit, seeded_model
from .base import Figure, Finding, StudyContext, StudyResult, Table, fmt, mean_std, register_study, verdict_of

PRESETS = {
    "smoke": dict(
        dataset="digits",
        n_train=0,
        epochs=2,
        vae_epochs=2,
        code=16,
        vae_hidden=(64,),
        nll_k=10,
        nll_n=100,
        n_probe=500,
        probe_iter=100,
        levels=(0.0, 0.25, 0.5),
    ),
    "quick": dict(
        dataset="fashion-mnist",
        n_train=10000,
        epochs=10,
        vae_epochs=5,
        code=64,
        vae_hidden=(256,),
        nll_k=100,
        nll_n=1000,
        n_probe=3000,
        probe_iter=100,
        levels=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
    ),
    # the full VAE is the gated quality-target run of docs/regularized.md: gated 300-300 layers, batch 128, Adam 1e-3
    # with a cosine decay over 400 epochs, KL warm-up over 43,000 steps (100 epochs). Of the two recipes run there it
    # is also the better by validation -ELBO at epoch 400 (230.3 nats against 231.6 for the ReLU 512-256 run, both on
    # the 5,000 images held out of the training split), so the choice stands on validation; the test NLLs are reported
    "full": dict(
        dataset="fashion-mnist",
        n_train=0,
        epochs=50,
        vae_epochs=400,
        code=40,
        vae_hidden=(300, 300),
        nll_k=5000,
        nll_n=0,
        n_probe=0,
        probe_iter=500,
        levels=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
        vae_train=dict(batch_size=128, lr_schedule="cosine"),
        vae_kl_warmup=43000,
        vae_gated=True,
    ),
}
# fixed constants, not searched over by the study on any split: the sparsity target ρ, the penalty weight λ, and
# the Gaussian noise std the denoising AE trains with
RHO, SPARSITY_WEIGHT, DAE_NOISE = 0.05, 0.05, 0.3


def _train(
    name: str,
    x: torch.Tensor,
    seed: int,
    epochs: int,
    progress: bool,
    lr: float = 1e-3,
    train: dict | None = None,
    **cfg,
):
    model = seeded_model(name, seed, input_shape=tuple(x.shape[1:]), **cfg)
    # one thread: these models are small, and two threads on a busy 2-core machine can be 40x slower (spinning)
    tcfg = TrainerConfig(
        **{
            **dict(epochs=epochs, batch_size=100, lr=lr, seed=seed, progress=progress, tensorboard=False, threads=1),
            **(train or {}),
        }
    )
    fit(model, TensorBatches({"x": x}, tcfg.batch_size, seed=seed), tcfg, description=f"{name} seed={seed}")
    return model.eval()


def _batched(fn, x: torch.Tensor, size: int = 2000) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fn(x[i : i + size]) for i in range(0, len(x), size)])


def _mse(model, x_in: torch.Tensor, x_clean: torch.Tensor) -> float:
    return float(((_batched(model.reconstruct, x_in) - x_clean) ** 2).mean())


def _mean_abs_cosine(w: torch.Tensor) -> float:
    """Mean |cos| between distinct rows of ``w``: 0 for orthogonal features, 1 for duplicates."""
    u = torch.nn.functional.normalize(w, dim=1)
    c = (u @ u.T).abs()
    k = len(c)
    return float((c.sum() - c.diagonal().sum()) / (k * (k - 1)))


def _centered(w: torch.Tensor) -> torch.Tensor:
    """Each weight vector minus its mean over pixels: a shared offset (which shifts every unit's
    activation the same way) is not a feature, so the correlation of what remains is compared too."""
    return w - w.mean(1, keepdim=True)


def _feature_images(w: torch.Tensor, shape) -> torch.Tensor:
    """Encoder weight rows as images, each scaled to [0, 1]."""
    lo, hi = w.min(1, keepdim=True).values, w.max(1, keepdim=True).values
    return ((w - lo) / (hi - lo + 1e-8)).view(-1, *shape)


def _independent_bernoulli_nll(x_train: torch.Tensor, x_test_bin: torch.Tensor) -> float:
    """NLL (nats) of binary test images under independent pixels with the training means."""
    p = x_train.flatten(1).mean(0).clamp(1e-3, 1 - 1e-3)
    t = x_test_bin.flatten(1)
    return float(-(t * p.log() + (1 - t) * (1 - p).log()).sum(1).mean())


@register_study("regularized", "Regularized autoencoders: sparse, denoising, variational", order=20)
def run(ctx: StudyContext) -> StudyResult:
    p = PRESETS[ctx.preset]
    data, (x_tr, y_tr) = ctx.images(p["dataset"], p["n_train"])
    shape, k, seeds = tuple(x_tr.shape[1:]), p["code"], ctx.seeds
    res = StudyResult(
        "regularized",
        "Regularized autoencoders: sparse, denoising, variational",
        "Each regularizer gives its property: the sparse AE learns sparse, distinct features; the denoising AE is "
        "robust "
        "to noise; the VAE gives a generative latent space.",
        ctx.preset,
        f"reprlab study regularized --preset {ctx.preset}",
    )
    # shallow (one-layer) autoencoders, as in the textbook sparse and denoising AEs; the VAE needs a hidden layer
    specs = {
        "plain AE": ("sae_mlp", dict(code_dim=k, hidden=(), sparsity_weight=0.0)),
        "sparse AE": ("sae_mlp", dict(code_dim=k, hidden=(), rho=RHO, sparsity_weight=SPARSITY_WEIGHT)),
        "denoising AE": ("dae_mlp", dict(code_dim=k, hidden=(), corruption="gaussian", noise=DAE_NOISE)),
        "VAE": (
            "vae_mlp",
            dict(
                latent_dim=k,
                hidden=p["vae_hidden"],
                binarize=True,
                gated=p.get("vae_gated", False),
                kl_warmup=p.get("vae_kl_warmup", 0),
            ),
        ),
    }
    models: dict[str, list] = {name: [] for name in specs}
    for name, (reg, cfg) in specs.items():
        for s in seeds:
            epochs = p["vae_epochs"] if reg == "vae_mlp" else p["epochs"]
            vae = reg == "vae_mlp"
            models[name].append(
                _train(
                    reg,
                    x_tr,
                    s,
                    epochs,
                    ctx.progress,
                    lr=1e-3 if vae else 3e-3,
                    train=p.get("vae_train") if vae else None,
                    **cfg,
                )
            )
    # a VAE with a 2-D latent space, for the latent map
    vae2 = _train(
        "vae_mlp",
        x_tr,
        seeds[0],
        p["vae_epochs"],
        ctx.progress,
        train=p.get("vae_train"),
        latent_dim=2,
        hidden=p["vae_hidden"],
        binarize=True,
    )
    n_probe = p["n_probe"] or len(x_tr)
    xp, yp = x_tr[:n_probe], y_tr[:n_probe].numpy()
    flat_p = xp.flatten(1).numpy()
    from sklearn.decomposition import PCA

    pca = PCA(n_components=k, svd_solver="randomized", random_state=0).fit(flat_p)

    # every model is trained: now read the test split, once, to score them
    x_te, y_te = ctx.read_test(data)

    # ---------------------------------------------------------------- robustness to noise
    levels = p["levels"]
    noisy = {lv: corrupt(x_te, "gaussian", lv, torch.Generator().manual_seed(100)) for lv in levels}
    err = {name: {lv: [_mse(m, noisy[lv], x_te) for m in ms] for lv in levels} for name, ms in models.items()}
    res.tables.append(
        Table(
            "Test reconstruction MSE (per pixel, against the clean image) under Gaussian noise of std σ",
            ["model", *[f"σ={lv:g}" for lv in levels]],
            [[name, *[fmt(err[name][lv]) for lv in levels]] for name in models],
            f"{data.name}, {len(x_tr)} training images; code size {k}; {len(seeds)} seed(s). The denoising AE was "
            f"trained with σ={DAE_NOISE}. "
            "The VAE was trained on dynamically binarized images with a Bernoulli likelihood, so its reconstructions "
            "are blurrier by design.",
        )
    )
    line_plot(
        list(levels),
        {n: ([mean_std(err[n][lv])[0] for lv in levels], [mean_std(err[n][lv])[1] for lv in levels]) for n in models},
        ctx.path("mse_vs_noise.png"),
        "noise std σ",
        "test MSE vs clean image",
        "Reconstruction error under Gaussian noise",
    )
    res.figures.append(
        Figure("mse_vs_noise.png", "Reconstruction error of clean targets from noisy inputs (band: ±1 std over seeds).")
    )
    high = [lv for lv in levels if lv >= DAE_NOISE]
    robust = []
    for lv in high:
        d_m, d_s = mean_std(err["denoising AE"][lv])
        a_m, a_s = mean_std(err["plain AE"][lv])
        robust.append(d_m + 2 * max(d_s, a_s) < a_m)
    clean_ratio = mean_std(err["denoising AE"][0.0])[0] / mean_std(err["plain AE"][0.0])[0]
    res.findings.append(
        Finding(
            f"The denoising AE reconstructs noisy inputs (σ ≥ {DAE_NOISE}) better than the plain AE (by more than 2 "
            "std).",
            verdict_of(robust),
            ", ".join(
                f"σ={lv:g}: DAE {mean_std(err['denoising AE'][lv])[0]:.4f} vs AE {mean_std(err['plain AE'][lv])[0]:.4f}"
                for lv in high
            )
            + f"; on clean inputs the DAE's error is {clean_ratio:.2f}x the plain AE's",
        )
    )

    # ---------------------------------------------------------------- sparsity and features
    def codes(m, x):
        return _batched(m.encode, x)

    sp = {}
    for name in ("plain AE", "sparse AE"):
        acts = [codes(m, x_te) for m in models[name]]
        sp[name] = {
            "mean": [float(a.mean()) for a in acts],
            "below": [float((a < 0.05).float().mean()) for a in acts],
            "dead": [float((a.mean(0) < 0.01).float().mean()) for a in acts],
            "cos": [_mean_abs_cosine(m.encoder[0].weight.detach()) for m in models[name]],
            "corr": [_mean_abs_cosine(_centered(m.encoder[0].weight.detach())) for m in models[name]],
        }
    res.tables.append(
        Table(
            f"Code sparsity and feature overlap (sigmoid codes, ρ = {RHO}, λ = {SPARSITY_WEIGHT})",
            [
                "model",
                "mean activation",
                "activations < 0.05",
                "units with mean < 0.01",
                "mean |cos| between features",
                "mean |corr| between features",
            ],
            [
                [n, fmt(v["mean"]), fmt(v["below"]), fmt(v["dead"]), fmt(v["cos"]), fmt(v["corr"])]
                for n, v in sp.items()
            ],
            "Mean activation is over all test images and units; a feature is a row of the encoder's weight matrix; "
            "|corr| is |cos| after removing each feature's mean weight (a shared offset).",
        )
    )
    s_mean = mean_std(sp["sparse AE"]["mean"])[0]
    sparse_ok = (
        abs(s_mean - RHO) < 0.5 * RHO and mean_std(sp["sparse AE"]["below"])[0] > mean_std(sp["plain AE"]["below"])[0]
    )
    distinct_cos = mean_std(sp["sparse AE"]["cos"])[0] < mean_std(sp["plain AE"]["cos"])[0]
    distinct_corr = mean_std(sp["sparse AE"]["corr"])[0] < mean_std(sp["plain AE"]["corr"])[0]
    res.findings.append(
        Finding(
            "The sparse AE learns sparse codes (mean activation near ρ, most activations near 0).",
            "supported" if sparse_ok else "not supported",
            f"mean activation {s_mean:.3f} (ρ = {RHO}) vs plain {mean_std(sp['plain AE']['mean'])[0]:.3f}; activations "
            "< 0.05: "
            f"{mean_std(sp['sparse AE']['below'])[0]:.2f} vs {mean_std(sp['plain AE']['below'])[0]:.2f}",
        )
    )
    res.findings.append(
        Finding(
            "The sparse AE's features are more distinct (less overlapping) than the plain AE's.",
            verdict_of([distinct_cos, distinct_corr]),
            f"mean |cos| between features {mean_std(sp['sparse AE']['cos'])[0]:.3f} (sparse) vs "
            f"{mean_std(sp['plain AE']['cos'])[0]:.3f} (plain); "
            f"mean |corr| {mean_std(sp['sparse AE']['corr'])[0]:.3f} vs {mean_std(sp['plain AE']['corr'])[0]:.3f}",
        )
    )
    cost = mean_std(err["sparse AE"][0.0])[0] / mean_std(err["plain AE"][0.0])[0]
    if cost > 1.1:
        res.notes.append(
            f"Sparsity has a price here: the sparse AE's clean reconstruction error is {cost:.1f}x the plain AE's "
            f"(λ = {SPARSITY_WEIGHT}, ρ = {RHO})."
        )
    for name, fname in (("plain AE", "features_plain.png"), ("sparse AE", "features_sparse.png")):
        w = models[name][0].encoder[0].weight.detach()[:64]
        image_grid(_feature_images(w, shape), ctx.path(fname), nrow=8, title=f"{name}: encoder features")
        res.figures.append(Figure(fname, f"The first 64 encoder weight vectors of the {name}, each scaled to [0, 1]."))

    # ---------------------------------------------------------------- linear probes
    flat_te = x_te.flatten(1).numpy()
    it, yt = p["probe_iter"], y_te.numpy()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # BLAS threads, like torch's, crawl on a busy machine
        probe = {
            "raw pixels": [linear_probe_accuracy(flat_p, yp, flat_te, yt, max_iter=it)],
            f"PCA ({k})": [linear_probe_accuracy(pca.transform(flat_p), yp, pca.transform(flat_te), yt, max_iter=it)],
        }
        for name, ms in models.items():
            probe[name] = [
                linear_probe_accuracy(codes(m, xp).numpy(), yp, codes(m, x_te).numpy(), yt, max_iter=it) for m in ms
            ]
    res.tables.append(
        Table(
            "Linear probe (logistic regression) test accuracy on each representation",
            ["representation", "dimensions", "accuracy"],
            [[n, x_tr[0].numel() if n == "raw pixels" else k, fmt(v)] for n, v in probe.items()],
            f"Probes are fit on {n_probe} training images and scored on the {len(x_te)} test images; the VAE's code is "
            "the posterior mean μ.",
        )
    )

    # ---------------------------------------------------------------- the VAE as a generative model
    nll_x = x_te[: p["nll_n"]] if p["nll_n"] else x_te
    nll = [iwae_nll(m, nll_x, p["nll_k"]) for m in models["VAE"]]
    elbo = [iwae_nll(m, nll_x, 1) for m in models["VAE"]]
    x_bin = torch.bernoulli(nll_x, generator=torch.Generator().manual_seed(0))  # the same bits iwae_nll scores
    base = _independent_bernoulli_nll(x_tr, x_bin)
    res.tables.append(
        Table(
            "VAE test negative log-likelihood (nats per image, dynamically binarized images)",
            ["model", "NLL"],
            [
                [f"VAE, IWAE bound k={p['nll_k']}", fmt(nll, 5)],
                ["VAE, negative ELBO (k=1)", fmt(elbo, 5)],
                ["independent pixels (training means)", f"{base:.5g}"],
            ],
            f"{len(nll_x)} test images, binarized once with seed 0; "
            f"VAE: {x_tr[0].numel()}-{'-'.join(map(str, p['vae_hidden']))}-{k}"
            f"{' (gated layers)' if p.get('vae_gated') else ''}, {p['vae_epochs']} epochs.",
        )
    )
    res.findings.append(
        Finding(
            "The VAE is a generative model of the images: its test NLL is far below that of independent pixels.",
            "supported" if mean_std(nll)[0] < 0.8 * base else "not supported",
            f"IWAE NLL (k={p['nll_k']}) {mean_std(nll)[0]:.1f} nats vs {base:.1f} for independent pixels; ELBO bound "
            f"{mean_std(elbo)[0]:.1f}",
        )
    )
    vae = models["VAE"][0]
    g = torch.Generator().manual_seed(0)
    image_grid(vae.sample(64, g), ctx.path("vae_samples.png"), nrow=8, title="VAE samples (decoder means)")
    path = vae.interpolate(x_te[:8], x_te[8:16], steps=10)
    image_grid(
        path.reshape(-1, *shape),
        ctx.path("vae_interpolations.png"),
        nrow=10,
        title="VAE interpolations between test images",
    )
    with torch.no_grad():
        reconstruction_grid(x_te[:12], vae.reconstruct(x_te[:12]), ctx.path("vae_reconstructions.png"))
    res.figures += [
        Figure("vae_samples.png", "64 samples: z ~ N(0, I), decoded to Bernoulli means."),
        Figure(
            "vae_interpolations.png",
            "Each row decodes the straight line between the posterior means of two test images.",
        ),
        Figure("vae_reconstructions.png", "Test images (top) and the VAE's reconstructions from μ (bottom)."),
    ]
    n = min(3000, len(x_te))
    z2 = codes(vae2, x_te[:n]).numpy()
    scatter_2d(
        z2, y_te[:n].numpy(), ctx.path("vae_latent_2d.png"), "2-D VAE: posterior means of test images", data.classes
    )
    res.figures.append(
        Figure("vae_latent_2d.png", "Posterior means of a VAE with a 2-D latent space, coloured by class.")
    )

    res.data.update(
        {
            "mse_vs_noise": {n: {str(lv): v for lv, v in e.items()} for n, e in err.items()},
            "sparsity": sp,
            "probe": probe,
            "vae_nll": nll,
            "vae_neg_elbo": elbo,
            "independent_pixels_nll": base,
            "nll_samples": p["nll_k"],
            "code_dim": k,
        }
    )
    res.notes.append(
        f"No setting was chosen from data: ρ = {RHO}, λ = {SPARSITY_WEIGHT}, the denoising σ = {DAE_NOISE}, the code "
        "size, epochs and learning rates are fixed constants; every model was trained before the test split was read."
    )
    if ctx.preset != "full":
        res.notes.append(
            f"The {ctx.preset} preset trains on {len(x_tr)} images for {p['epochs']} epochs (VAE {p['vae_epochs']}) "
            "and "
            f"scores the NLL with k={p['nll_k']} on {len(nll_x)} test images; the full preset uses all training images "
            "and k=5000."
        )
    return res
