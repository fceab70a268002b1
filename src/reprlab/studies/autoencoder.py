"""Study `autoencoder`: does a nonlinear autoencoder beat PCA at the same code size?

Measures test reconstruction MSE against code size for the MLP autoencoder and for PCA,
compares MSE and BCE training, and draws 2-D latent maps (AE vs PCA) scored by 5-NN accuracy.

The study chooses nothing from data: the code sizes, the epochs, the learning rate and the loss compared are
fixed in advance and every one is reported, so there is no validation split to choose on. It trains every
model first and reads the test split once, after training (DESIGN.md section 8).
"""

from __future__ import annotations

import numpy as np
import torch

from ..config import TrainerConfig
from ..data.batches import TensorBatches
from ..plots import line_plot, reconstruction_grid, scatter_2d
from ..recipes.training import fit, seeded_model
from .base import Figure, Finding, StudyContext, StudyResult, Table, fmt, mean_std, register_study, verdict_of

PRESETS = {
    #          train examples, epochs, code sizes,        BCE/MSE code size
    "smoke": dict(n_train=1000, epochs=1, codes=(2, 8), loss_code=8, dataset="digits"),
    "quick": dict(n_train=10000, epochs=8, codes=(2, 8, 32, 64), loss_code=32, dataset="fashion-mnist"),
    "full": dict(n_train=0, epochs=40, codes=(2, 8, 32, 64), loss_code=32, dataset="fashion-mnist"),
}


def _train_ae(x_tr: torch.Tensor, code: int, loss: str, seed: int, epochs: int, progress: bool):
    model = seeded_model("ae_mlp", seed, input_shape=tuple(x_tr.shape[1:]), code_dim=code, loss=loss)
    cfg = TrainerConfig(epochs=epochs, batch_size=128, lr=1e-3, seed=seed, progress=progress, tensorboard=False)
    fit(model, TensorBatches({"x": x_tr}, 128, seed=seed), cfg, description=f"ae code={code} {loss} seed={seed}")
    return model.eval()


def _mse(model, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(
            sum(((model(x[i : i + 2000]) - x[i : i + 2000]) ** 2).sum() for i in range(0, len(x), 2000)) / x.numel()
        )


def _encode(model, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.encode(x).numpy()


def _fit_pca(x_tr: np.ndarray, k: int):
    from sklearn.decomposition import PCA

    return PCA(n_components=k, svd_solver="full").fit(x_tr)


def _pca_mse(pca, x_te: np.ndarray) -> float:
    rec = pca.inverse_transform(pca.transform(x_te))
    return float(((rec - x_te) ** 2).mean())


def _knn_acc(z_tr, y_tr, z_te, y_te) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    return float(KNeighborsClassifier(5).fit(z_tr, y_tr).score(z_te, y_te))


@register_study("autoencoder", "Autoencoders vs PCA", order=10)
def run(ctx: StudyContext) -> StudyResult:
    p = PRESETS[ctx.preset]
    data, (x_tr, y_tr) = ctx.images(p["dataset"], p["n_train"])
    flat_tr = x_tr.flatten(1).numpy()
    # train everything first (the MSE autoencoders at each code size, PCA, the BCE autoencoders) ...
    models = {(k, s): _train_ae(x_tr, k, "mse", s, p["epochs"], ctx.progress) for k in p["codes"] for s in ctx.seeds}
    k_loss = p["loss_code"]
    bce_models = [_train_ae(x_tr, k_loss, "bce", s, p["epochs"], ctx.progress) for s in ctx.seeds]
    pcas = {k: _fit_pca(flat_tr, k) for k in p["codes"]}
    # ... then read the test split, once, to score them
    x_te, y_te = ctx.read_test(data)
    flat_te = x_te.flatten(1).numpy()
    res = StudyResult(
        "autoencoder",
        "Autoencoders vs PCA",
        "A nonlinear autoencoder reconstructs better than PCA (a linear projection) at the same code size.",
        ctx.preset,
        f"reprlab study autoencoder --preset {ctx.preset}",
    )

    ae_mse = {k: [_mse(models[(k, s)], x_te) for s in ctx.seeds] for k in p["codes"]}
    pca_mse = {k: _pca_mse(pcas[k], flat_te) for k in p["codes"]}

    rows, wins = [], []
    for k in p["codes"]:
        m, sd = mean_std(ae_mse[k])
        win = m + 2 * sd < pca_mse[k]
        wins.append(win)
        rows.append(
            [
                k,
                fmt(ae_mse[k]),
                f"{pca_mse[k]:.4g}",
                f"{pca_mse[k] / m:.2f}",
                "AE" if win else ("PCA" if m - 2 * sd > pca_mse[k] else "tie"),
            ]
        )
    res.tables.append(
        Table(
            "Test reconstruction MSE (per pixel) against code size",
            ["code size", f"MLP AE (mean ± std, {len(ctx.seeds)} seeds)", "PCA", "PCA / AE", "better (2σ)"],
            rows,
            f"{data.name}, {len(x_tr)} training images, {p['epochs']} epochs, Adam 1e-3, batch 128, MLP "
            f"{x_tr[0].numel()}-512-256-k; test set of {len(x_te)}.",
        )
    )
    line_plot(
        list(p["codes"]),
        {
            "MLP autoencoder": (
                [mean_std(ae_mse[k])[0] for k in p["codes"]],
                [mean_std(ae_mse[k])[1] for k in p["codes"]],
            ),
            "PCA": ([pca_mse[k] for k in p["codes"]], None),
        },
        ctx.path("mse_vs_code.png"),
        "code size",
        "test MSE per pixel",
        "Reconstruction error against code size",
        logx=True,
        logy=True,
    )
    res.figures.append(
        Figure("mse_vs_code.png", "Test reconstruction MSE against code size (band: ±1 std over seeds).")
    )
    codes = list(p["codes"])
    flat = [k for a, k in zip(codes, codes[1:]) if mean_std(ae_mse[k])[0] > 0.95 * mean_std(ae_mse[a])[0]]
    if flat:
        res.notes.append(
            f"The autoencoder's error stops falling at code sizes {flat} (less than 5% below the next smaller code) "
            "while "
            "PCA's keeps falling: with this training budget the network is limited by optimization, not by its code "
            "size."
        )
    won = [k for k, w in zip(p["codes"], wins) if w]
    res.findings.append(
        Finding(
            "The autoencoder's test MSE is lower than PCA's at every code size (by more than 2 std of the seeds).",
            verdict_of(wins),
            f"AE wins at code sizes {won or 'none'} of {list(p['codes'])}; "
            + ", ".join(f"k={k}: AE {mean_std(ae_mse[k])[0]:.4f} vs PCA {pca_mse[k]:.4f}" for k in p["codes"]),
        )
    )

    # MSE against BCE training at one code size, both scored in MSE
    k = k_loss
    bce = [_mse(m, x_te) for m in bce_models]
    res.tables.append(
        Table(
            f"Training loss: MSE against BCE (code size {k}), scored by test MSE",
            ["training loss", "test MSE"],
            [["MSE", fmt(ae_mse[k])], ["BCE (sigmoid outputs)", fmt(bce)]],
            "BCE treats pixels as Bernoulli probabilities; it weights errors near 0 and 1 more heavily than MSE does.",
        )
    )
    res.data.update(
        {
            "ae_mse": {str(k): v for k, v in ae_mse.items()},
            "pca_mse": {str(k): v for k, v in pca_mse.items()},
            "bce_mse": bce,
        }
    )

    # 2-D latent maps, scored by 5-NN accuracy on the test codes
    if 2 in p["codes"]:
        m2 = models[(2, ctx.seeds[0])]
        pca2 = pcas[2]
        z_ae_tr, z_ae_te = _encode(m2, x_tr), _encode(m2, x_te)
        z_pca_tr, z_pca_te = pca2.transform(flat_tr), pca2.transform(flat_te)
        acc_ae = _knn_acc(z_ae_tr, y_tr.numpy(), z_ae_te, y_te.numpy())
        acc_pca = _knn_acc(z_pca_tr, y_tr.numpy(), z_pca_te, y_te.numpy())
        n = min(3000, len(x_te))
        scatter_2d(
            z_ae_te[:n],
            y_te.numpy()[:n],
            ctx.path("latent_ae.png"),
            f"AE 2-D code (5-NN acc {acc_ae:.2f})",
            data.classes,
        )
        scatter_2d(
            z_pca_te[:n],
            y_te.numpy()[:n],
            ctx.path("latent_pca.png"),
            f"PCA 2-D (5-NN acc {acc_pca:.2f})",
            data.classes,
        )
        res.figures += [
            Figure("latent_ae.png", "2-D autoencoder code of test images, coloured by class."),
            Figure("latent_pca.png", "First two principal components of the same images."),
        ]
        res.tables.append(
            Table(
                "Class structure of 2-D codes (5-NN test accuracy)",
                ["code", "5-NN accuracy"],
                [["MLP AE (k=2)", f"{acc_ae:.3f}"], ["PCA (k=2)", f"{acc_pca:.3f}"]],
            )
        )
        res.findings.append(
            Finding(
                "A 2-D nonlinear code separates the classes better than the first two principal components.",
                "supported" if acc_ae > acc_pca else "not supported",
                f"5-NN accuracy on 2-D test codes: AE {acc_ae:.3f}, PCA {acc_pca:.3f}",
            )
        )
        res.data["knn_2d"] = {"ae": acc_ae, "pca": acc_pca}

    big = models[(max(p["codes"]), ctx.seeds[0])]
    with torch.no_grad():
        reconstruction_grid(x_te[:12], big(x_te[:12]), ctx.path("reconstructions.png"))
    res.figures.append(
        Figure(
            "reconstructions.png",
            f"Test images (top) and their reconstructions from a {max(p['codes'])}-d code (bottom).",
        )
    )
    res.notes.append(
        "No setting was chosen from data: the code sizes, epochs, learning rate and losses are fixed in advance and "
        "all are reported; every model was trained before the test split was read."
    )
    if ctx.preset != "full":
        res.notes.append(
            f"The {ctx.preset} preset trains on {len(x_tr)} images for {p['epochs']} epochs; the full preset uses all "
            "55,000 for 40 epochs."
        )
    return res
