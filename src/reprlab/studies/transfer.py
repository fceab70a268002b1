"""Study `transfer`: does a pre-trained backbone beat training from scratch, in accuracy, time and data?

Two settings: (a) across classes, source = Fashion-MNIST classes 0-4, target = classes 5-9;
(b) across tasks, source = all of Fashion-MNIST, target = scikit-learn digits upsampled to 28x28.
Five methods on each target, at several label budgets: scratch, frozen + linear head, frozen + SVM,
fine-tune the last block, fine-tune all (transferred heads start as a linear probe). Every network method gets the
same number of optimizer steps; its held-out (validation) accuracy is recorded along the way, which
gives the training time each method needs to reach the scratch model's final accuracy.
"""

from __future__ import annotations

import math
from dataclasses import replace
import time

import numpy as np
import torch

from ..recipes.transfer import accuracy, classical_head, target_model
from ..config import TrainerConfig
from ..data import load_images
from ..data.batches import TensorBatches
from ..data.transfer import label_budget
from ..models.classifier import SPATIAL_GRID
from ..plots import line_plot, scatter_2d
from ..recipes.training import fit, seed_everything
from ..train.engine import Callback
from .base import Figure, Finding, StudyContext, StudyResult, Table, fmt, mean_std, register_study, verdict_of

PRESETS = {
    # source: CNN width, images (0 = all), epochs; target: label budgets, optimizer steps per run, curve points,
    # validation images for the curves, test images in the t-SNE
    "smoke": dict(width=8, src_n=1000, src_epochs=1, budgets=(10,), steps=10, points=2, n_val=200, n_tsne=100),
    "quick": dict(width=8, src_n=15000, src_epochs=3, budgets=(10, 100), steps=100, points=10, n_val=1000, n_tsne=500),
    "full": dict(
        width=32, src_n=0, src_epochs=10, budgets=(10, 100, 1000), steps=400, points=20, n_val=5000, n_tsne=2000
    ),
}
SETTINGS = {
    "a": dict(title="(a) across classes", source="fashion-mnist-0-4", target="fashion-mnist-5-9"),
    "b": dict(title="(b) across tasks", source="fashion-mnist", target="digits-28"),
}
METHODS = (
    "scratch",
    "frozen + linear",
    "frozen + SVM",
    "frozen + logreg",
    "frozen + SVM, spatial",
    "fine-tune last-k",
    "fine-tune all",
)
# scikit-learn heads on frozen features: (head, feature kind); "spatial" = the last two blocks average-pooled to
# a SPATIAL_GRID x SPATIAL_GRID grid each
CLASSICAL = {
    "frozen + SVM": ("svm", "pooled"),
    "frozen + logreg": ("logreg", "pooled"),
    "frozen + SVM, spatial": ("svm", "spatial"),
}
NETS = {"scratch": "scratch", "frozen + linear": "frozen", "fine-tune last-k": "last-k", "fine-tune all": "all"}
# The constants below were chosen on VALIDATION images (held out of the target's training split, never the test
# split) by experiments/transfer_choices.py, on (a) at 10 labels/class over 3 seeds with the quick source; its
# scores are in experiments/out/transfer_choices.json / .txt. In the order it chooses them:
# - LR, one learning rate for every target run (scratch trains all its weights at it, fine-tuning trains the
#   backbone at LR * BACKBONE_LR_MULT): the candidate where scratch, the baseline, scores best;
# - BACKBONE_LR_MULT and LP-FT (the transferred head starts as a logistic-regression probe instead of at
#   random): fine-tune all's best at that LR;
# - SPATIAL_GRID, the pooling grid of the spatial features: frozen + SVM, spatial's best.
# Validation accuracy there (mean of 3 seeds): LR 3e-3 / 1e-2 / 3e-2 -> scratch 0.800 / 0.807 / 0.800;
# BACKBONE_LR_MULT 0.1 / 0.3 / 1.0 -> fine-tune all 0.806 / 0.822 / 0.831 (the source classes differ from the
# target's, so the backbone has to move as fast as the head); LP-FT head 0.831 against a random head 0.812;
# SPATIAL_GRID 1 / 2 / 3 / 4 -> frozen + SVM 0.768 / 0.836 / 0.847 / 0.842 (the default of Classifier.features,
# so `reprlab transfer --features spatial` pools as the study does).
LR, BACKBONE_LR_MULT, LP_FT = 1e-2, 1.0, True
BATCH, SOURCE_LR = 64, 5e-3


def _features(model, x: torch.Tensor, kind: str, grid: int = SPATIAL_GRID) -> torch.Tensor:
    """Frozen features of images ``x`` (``Classifier.features``): ``pooled`` or ``spatial`` on a ``grid`` x ``grid``."""
    return model.features(x, kind=kind, grid=grid)


def _trainer_cfg(epochs: int, steps: int, batch: int, lr: float, seed: int) -> TrainerConfig:
    return TrainerConfig(
        epochs=epochs, max_steps=steps, batch_size=batch, lr=lr, seed=seed, progress=False, tensorboard=False
    )


def _train_source(name: str, p: dict, data_dir, seed: int):
    """(trained source model, its data, images trained on, seconds); its test accuracy is read later, after the
    study's choices (see :func:`_score_on_test`)."""
    d = load_images(name, data_dir)
    x, y = d.train
    if p["src_n"]:
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(x), generator=g)[: p["src_n"]]
        x, y = x[idx], y[idx]
    seed_everything(seed)
    model = target_model(
        None, d.num_classes, "scratch", backbone="small_cnn", width=p["width"], input_shape=tuple(x.shape[1:])
    )
    t0 = time.perf_counter()
    cfg = _trainer_cfg(p["src_epochs"], 0, 128, SOURCE_LR, seed)
    fit(model, TensorBatches({"x": x, "y": y}, 128, seed=seed), cfg, description=f"source {name}")
    return model.eval(), d, len(x), time.perf_counter() - t0


class _TrainClock(Callback):
    """Training seconds (evaluation excluded) and validation accuracy at the curve's step marks."""

    def __init__(self, setup_seconds: float, bpe: int, steps: int, marks: set[int], xv, yv):
        self.train, self.last = setup_seconds, 0.0
        self.bpe, self.steps, self.marks, self.xv, self.yv = bpe, steps, marks, xv, yv
        self.curve: list[dict] = []

    def on_fit_start(self, trainer, model) -> None:  # after Fabric's set-up, right before the first step
        self.last = time.perf_counter()

    def on_epoch_end(self, trainer, model, epoch, metrics) -> None:
        self.train += time.perf_counter() - self.last
        step = min((epoch + 1) * self.bpe, self.steps)
        prev = min(epoch * self.bpe, self.steps)
        if any(prev < m <= step for m in self.marks) or step == self.steps:
            acc = accuracy(model, self.xv, self.yv)
            self.curve.append({"step": step, "epoch": epoch + 1, "seconds": self.train, "acc": acc})
        self.last = time.perf_counter()  # evaluation time is not training time


def _fit_curve(
    model, x, y, xv, yv, steps: int, seed: int, points: int, setup_seconds: float = 0.0, lr: float | None = None
) -> dict:
    """Train ``model`` for ``steps`` steps at ``lr`` (LR by default); validation accuracy at about ``points`` step
    counts, with train seconds.

    ``setup_seconds`` (the head's standardization and probe fit) count as training time from the start.
    """
    batch = min(BATCH, len(x))
    bpe = math.ceil(len(x) / batch)
    epochs = math.ceil(steps / bpe)
    marks = {int(round(steps * (j + 1) / points)) for j in range(points)}
    curve: list[dict] = []
    clock = _TrainClock(setup_seconds, bpe, steps, marks, xv, yv)
    cfg = replace(_trainer_cfg(epochs, steps, batch, LR if lr is None else lr, seed), lr_schedule="cosine")
    fit(model, TensorBatches({"x": x, "y": y}, batch, seed=seed), cfg, callbacks=[clock], description="target")
    curve = clock.curve
    return {"curve": curve, "seconds": clock.train, "epochs": epochs}


def _reach(curve: list[dict], goal: float) -> dict | None:
    for c in curve:
        if c["acc"] >= goal:
            return c
    return None


def _run_setting(key: str, p: dict, ctx: StudyContext, res: StudyResult) -> dict:
    """Train every method of setting ``key`` at every budget and seed, scoring them on validation only.

    The fitted models stay in ``out["_fitted"]`` (a network, or a scikit-learn head with the kind of frozen
    features it reads); :func:`_score_on_test` reads the test split once the study has made its choices."""
    s = SETTINGS[key]
    source, src_d, src_n, src_sec = _train_source(s["source"], p, ctx.data_dir, 0)
    d = load_images(s["target"], ctx.data_dir)
    x_tr, y_tr = d.train
    xv, yv = d.val[0][: p["n_val"]], d.val[1][: p["n_val"]]
    fewest = int(torch.bincount(y_tr).min())
    budgets = [b for b in p["budgets"] if b <= fewest]
    if len(budgets) < len(p["budgets"]):
        res.notes.append(
            f"{s['title']}: {d.name} has at most {fewest} training images in its smallest class, so budgets "
            f"{[b for b in p['budgets'] if b > fewest]} per class are left out."
        )
    out: dict = {
        "source": {"name": s["source"], "n": src_n, "seconds": src_sec},
        "target": d.name,
        "n_val": len(yv),
        "budgets": budgets,
        "runs": {},
        "_fitted": {},
        "_data": (source, src_d, d),
    }
    for b in budgets:
        for seed in ctx.seeds:
            xb, yb = label_budget(x_tr, y_tr, b, seed, d.num_classes)
            runs, fitted = {}, {}
            for method, mode in NETS.items():
                seed_everything(seed)
                t0 = time.perf_counter()
                # transferred heads start as a logistic-regression probe on the frozen features (LP-FT);
                # scratch's head starts at random
                m = target_model(
                    source,
                    d.num_classes,
                    mode,
                    unfreeze=1,
                    backbone_lr_mult=BACKBONE_LR_MULT,
                    standardize_on=xb,
                    probe_on=None if mode == "scratch" or not LP_FT else (xb, yb),
                )
                r = _fit_curve(m, xb, yb, xv, yv, p["steps"], seed, p["points"], setup_seconds=time.perf_counter() - t0)
                r["val_acc"] = r["curve"][-1]["acc"]  # the final model's, the one scored on test
                runs[method], fitted[method] = r, ("net", m)
            for method, (kind, feats) in CLASSICAL.items():
                t0 = time.perf_counter()  # training = features of the labelled images + the fit (evaluation excluded)
                head = classical_head(kind, _features(source, xb, feats).numpy(), yb.numpy(), seed)
                sec = time.perf_counter() - t0
                runs[method] = {
                    "seconds": sec,
                    "val_acc": float(head.score(_features(source, xv, feats).numpy(), yv.numpy())),
                }
                fitted[method] = (feats, head)
            out["runs"][(b, seed)] = runs
            out["_fitted"][(b, seed)] = fitted
    return out


def _score_on_test(key: str, out: dict, p: dict, ctx: StudyContext, res: StudyResult) -> None:
    """Read setting ``key``'s test splits (after every choice): the source's test accuracy, every fitted model's
    ``test_acc``, and the t-SNE of the frozen source features of target test images."""
    s = SETTINGS[key]
    source, src_d, d = out.pop("_data")
    out["source"]["test_acc"] = accuracy(source, *ctx.read_test(src_d))
    x_te, y_te = ctx.read_test(d)
    feats_te = {f: _features(source, x_te, f).numpy() for f in {f for _, f in CLASSICAL.values()}}
    for (b, seed), fitted in out.pop("_fitted").items():
        for method, (kind, model) in fitted.items():
            acc = accuracy(model, x_te, y_te) if kind == "net" else float(model.score(feats_te[kind], y_te.numpy()))
            out["runs"][(b, seed)][method]["test_acc"] = acc
    # t-SNE of the frozen source features of target test images
    from sklearn.manifold import TSNE

    n = min(p["n_tsne"], len(x_te))
    z = TSNE(2, perplexity=min(30, n // 4), init="pca", random_state=0).fit_transform(source.features(x_te[:n]).numpy())
    fig = f"tsne_{key}.png"
    scatter_2d(z, y_te[:n].numpy(), ctx.path(fig), f"{s['title']}: frozen source features of {d.name}", d.classes)
    res.figures.append(
        Figure(
            fig,
            f"t-SNE of the frozen {s['source']} backbone's features of {n} {d.name} test images, coloured by target "
            "class.",
        )
    )


def _cells(out: dict, method: str, b: int, seeds, what: str = "test_acc") -> list[float]:
    return [out["runs"][(b, s)][method][what] for s in seeds]


def _paired_win(a: list[float], b: list[float]) -> bool:
    """a beats b: the mean paired difference is positive and over 2 standard errors (one seed: just positive)."""
    d = np.asarray(a) - np.asarray(b)
    if len(d) == 1:
        return bool(d[0] > 0)
    return bool(d.mean() > 0 and d.mean() > 2 * d.std(ddof=1) / math.sqrt(len(d)))


@register_study("transfer", "Transfer learning: feature extraction vs fine-tuning vs scratch", order=40)
def run(ctx: StudyContext) -> StudyResult:
    p = PRESETS[ctx.preset]
    res = StudyResult(
        "transfer",
        "Transfer learning: feature extraction vs fine-tuning vs scratch",
        "Transfer learning cuts training time, improves accuracy and needs less data; feature extraction suits a "
        "target similar to the source, fine-tuning one that differs.",
        ctx.preset,
        f"reprlab study transfer --preset {ctx.preset}",
    )
    seeds = ctx.seeds
    results = {k: _run_setting(k, p, ctx, res) for k in SETTINGS}
    # every choice on validation accuracy (the final models', mean over seeds); the test split is read after
    chosen: dict[tuple[str, int], dict[str, str]] = {}
    by = "accuracy of the final model, mean over seeds, higher is better"
    for key, out in results.items():
        split = f"validation ({out['n_val']} images held out of {out['target']}'s training split)"
        for b in out["budgets"]:
            where = f"{SETTINGS[key]['title']}, {b} labels/class"

            def on_val(methods) -> dict[str, float]:
                return {m: mean_std(_cells(out, m, b, seeds, "val_acc"))[0] for m in methods}

            chosen[(key, b)] = {
                "best": ctx.choose(f"{where}: best transfer method", on_val(METHODS[1:]), split=split, by=by),
                "fe": ctx.choose(
                    f"{where}: best feature-extraction method",
                    on_val(("frozen + linear", *CLASSICAL)),
                    split=split,
                    by=by,
                ),
                "ft": ctx.choose(
                    f"{where}: best fine-tuning method",
                    on_val(("fine-tune last-k", "fine-tune all")),
                    split=split,
                    by=by,
                ),
            }
    for key, out in results.items():
        _score_on_test(key, out, p, ctx, res)

    acc_win, faster, less_data, similar, differ, targets = [], [], [], [], [], []
    for key, out in results.items():
        s, budgets = SETTINGS[key], out["budgets"]
        src = out["source"]
        rows = [[m] + [fmt(_cells(out, m, b, seeds)) for b in budgets] for m in METHODS]
        vrows = [
            [m] + [fmt(_cells(out, m, b, seeds, "val_acc")) + (" (chosen)" if chosen[(key, b)]["best"] == m else "")
                   for b in budgets]
            for m in METHODS
        ]  # fmt: skip
        res.tables.append(
            Table(
                f"{s['title']}: test accuracy on {out['target']} (mean ± std, {len(seeds)} seeds)",
                ["method"] + [f"{b} labels/class" for b in budgets],
                rows,
                f"Source: small CNN (width {p['width']}) trained on {src['n']} {src['name']} images for "
                f"{p['src_epochs']} epochs "
                f"at lr {SOURCE_LR} (source test accuracy {src['test_acc']:.3f}, {src['seconds']:.0f}s). Every network "
                f"method: {p['steps']} Adam steps, "
                f"lr {LR} with cosine decay, batch {BATCH}; fine-tuning trains the backbone at lr x "
                f"{BACKBONE_LR_MULT}; last-k unfreezes the last block; "
                "transferred heads see features standardized on the labelled target images and "
                + (
                    "start as a logistic-regression probe on them (LP-FT; scratch's head starts at random). "
                    if LP_FT
                    else "start at random. "
                )
                + "SVM: RBF, C=10; logreg: multinomial logistic regression; both on standardized frozen features "
                "(globally pooled, as the linear head sees them; 'spatial': the last two blocks average-pooled to "
                f"{SPATIAL_GRID}x{SPATIAL_GRID}).",
            )
        )
        res.tables.append(
            Table(
                f"{s['title']}: validation accuracy on {out['target']} (mean ± std, {len(seeds)} seeds)",
                ["method"] + [f"{b} labels/class" for b in budgets],
                vrows,
                f"The final models on {out['n_val']} validation images held out of {out['target']}'s training split. "
                "The best transfer method at each budget is chosen here (marked), and only its test accuracy "
                "enters the findings and the targets.",
            )
        )
        # time to reach scratch's final validation accuracy
        trows = []
        for b in budgets:
            for m in ("scratch", "frozen + linear", "fine-tune last-k", "fine-tune all", *CLASSICAL):
                secs, eps, ratios, hit = [], [], [], 0
                for sd in seeds:
                    runs = out["runs"][(b, sd)]
                    goal = runs["scratch"]["curve"][-1]["acc"]
                    if m in CLASSICAL:
                        if runs[m]["val_acc"] >= goal:
                            hit += 1
                            secs.append(runs[m]["seconds"])
                            ratios.append(runs[m]["seconds"] / runs["scratch"]["seconds"])
                        continue
                    c = _reach(runs[m]["curve"], goal)
                    if c is not None:
                        hit += 1
                        secs.append(c["seconds"])
                        eps.append(c["epoch"])
                        ratios.append(c["seconds"] / runs["scratch"]["seconds"])
                out.setdefault("reach", {})[(b, m)] = {"hit": hit, "ratios": ratios, "seconds": secs}
                trows.append(
                    [
                        b,
                        m,
                        f"{hit}/{len(seeds)}",
                        fmt(secs, 3) if secs else "-",
                        fmt(eps, 3) if eps else "-",
                        fmt(ratios, 2) if ratios else "-",
                    ]
                )
        res.tables.append(
            Table(
                f"{s['title']}: training time to reach the scratch model's final validation accuracy",
                ["labels/class", "method", "seeds reaching it", "train seconds", "epochs", "time / scratch's time"],
                trows,
                "Seconds of training (evaluation excluded), measured at the validation checkpoints; scratch's own row "
                "is its full run. "
                "SVM / logreg: feature extraction of the labelled images + fit time (no optimizer steps, so no "
                "epochs), counted if their "
                "validation accuracy reaches the goal. The one-off source pre-training is not included (its time is in "
                "the accuracy table's note).",
            )
        )
        # findings per budget
        for i, b in enumerate(budgets):
            scratch = _cells(out, "scratch", b, seeds)
            best = chosen[(key, b)]["best"]  # chosen on validation; its test accuracy is compared to scratch's
            acc_win.append(
                (
                    key,
                    b,
                    best,
                    _paired_win(_cells(out, best, b, seeds), scratch),
                    mean_std(_cells(out, best, b, seeds))[0] - mean_std(scratch)[0],
                    _paired_win(scratch, _cells(out, best, b, seeds)),
                )
            )
            fast = [out["reach"][(b, m)] for m in ("fine-tune last-k", "fine-tune all")]
            ratio = min((float(np.median(f["ratios"])) for f in fast if f["hit"] == len(seeds)), default=float("inf"))
            faster.append((key, b, ratio))
            if i + 1 < len(budgets):
                nxt = mean_std(_cells(out, "scratch", budgets[i + 1], seeds))[0]
                less_data.append((key, b, budgets[i + 1], mean_std(_cells(out, best, b, seeds))[0], nxt))
            fe = mean_std(_cells(out, chosen[(key, b)]["fe"], b, seeds))[0]
            ft = mean_std(_cells(out, chosen[(key, b)]["ft"], b, seeds))[0]
            (similar if key == "a" else differ).append((b, fe, ft, chosen[(key, b)]["fe"], chosen[(key, b)]["ft"]))
        if key == "a" and 10 in budgets:
            gain = [x for x in acc_win if x[0] == "a" and x[1] == 10][0]  # (setting, budget, method, win, gain, lose)
            r = [x for x in faster if x[0] == "a" and x[1] == 10][0][2]
            targets = [
                [
                    "best transfer beats scratch by >= 10 points at 10 labels/class in (a)",
                    f"{100 * gain[4]:+.1f} points on test ({gain[2]}, the best on validation)",
                    "met" if gain[4] >= 0.10 else "not met",
                ],
                [
                    "fine-tuning reaches scratch's final accuracy in <= 1/5 of scratch's time in (a) (10 labels/class)",
                    ("not reached in every seed" if r == float("inf") else f"{r:.2f} of scratch's time")
                    + f" (the one-off source pre-training, {src['seconds']:.0f}s, not counted)",
                    "met" if r <= 0.2 else "not met",
                ],
            ]
            fx = out["reach"][(10, "frozen + SVM, spatial")]
            targets.append(
                [
                    "(for comparison, not a target) feature extraction (frozen + SVM, spatial) reaches it in (a) (10 "
                    "labels/class)",
                    f"{fx['hit']}/{len(seeds)} seeds"
                    + (f", {float(np.median(fx['ratios'])):.3f} of scratch's time" if fx["ratios"] else ""),
                    "-",
                ]
            )

    res.findings.append(
        Finding(
            "Transfer reduces training time: fine-tuning reaches the scratch model's final accuracy in at most half "
            "its training time.",
            verdict_of([r <= 0.5 for _, _, r in faster]),
            "; ".join(
                f"({k}) {b}/class: {'not reached in every seed' if r == float('inf') else f'{r:.2f} of scratch time'}"
                for k, b, r in faster
            ),
        )
    )
    res.findings.append(
        Finding(
            "Transfer improves accuracy: the best transfer method (chosen on validation) beats scratch on test (paired "
            "over seeds, > 2 standard errors).",
            verdict_of([w for _, _, _, w, _, _ in acc_win]),
            "; ".join(
                f"({k}) {b}/class: {m} {100 * g:+.1f} points"
                + ("" if w else " (scratch significantly better)" if lose else " (not significant)")
                for k, b, m, w, g, lose in acc_win
            ),
        )
    )
    res.findings.append(
        Finding(
            "Transfer needs less data: the best transfer method with N labels per class is at least as accurate as "
            "scratch with 10x more.",
            verdict_of([t >= s for _, _, _, t, s in less_data]),
            "; ".join(f"({k}) transfer@{b} {t:.3f} vs scratch@{nb} {s:.3f}" for k, b, nb, t, s in less_data)
            or "needs two label budgets",
        )
    )
    flags = [ft - fe <= 0.02 for _, fe, ft, _, _ in similar] + [ft - fe > 0.02 for _, fe, ft, _, _ in differ]
    res.findings.append(
        Finding(
            "Feature extraction is enough when the target is similar (a: frozen within 2 points of fine-tuning), "
            "while fine-tuning wins when it differs (b: fine-tuning ahead by more than 2 points).",
            verdict_of(flags),
            "; ".join(
                f"({k}) {b}/class: frozen {fe:.3f} ({mfe}) vs fine-tuned {ft:.3f} ({mft})"
                for k, rows in (("a", similar), ("b", differ))
                for b, fe, ft, mfe, mft in rows
            )
            + " (the methods compared are each family's best on validation; test accuracy shown)",
        )
    )
    if targets:
        res.tables.append(Table("Targets of the issue", ["target", "measured", "status"], targets))
    early = []
    for key, out in results.items():
        for b in out["budgets"]:

            def first_fifth(m: str) -> float:
                accs = [
                    next(c["acc"] for c in out["runs"][(b, sd)][m]["curve"] if c["step"] >= p["steps"] / 5)
                    for sd in seeds
                ]
                return mean_std(accs)[0]

            early.append(
                f"({key}) {b}/class: fine-tune all {first_fifth('fine-tune all'):.3f} vs scratch "
                f"{first_fifth('scratch'):.3f}"
            )
    res.notes.append("Validation accuracy after the first fifth of the steps: " + "; ".join(early) + ".")

    # accuracy against label budget, and validation curves at the smallest budget
    for key, out in results.items():
        budgets = out["budgets"]
        line_plot(
            budgets,
            {
                m: (
                    [mean_std(_cells(out, m, b, seeds))[0] for b in budgets],
                    [mean_std(_cells(out, m, b, seeds))[1] for b in budgets],
                )
                for m in METHODS
            },
            ctx.path(f"acc_vs_labels_{key}.png"),
            "labels per class",
            "test accuracy",
            f"{SETTINGS[key]['title']}: accuracy against labels",
            logx=True,
        )
        res.figures.append(
            Figure(
                f"acc_vs_labels_{key}.png",
                f"{SETTINGS[key]['title']}: test accuracy against labels per class (band: ±1 std).",
            )
        )
        b = budgets[0]
        steps = [c["step"] for c in out["runs"][(b, seeds[0])]["scratch"]["curve"]]
        series = {}
        for m in NETS:
            accs = np.array([[c["acc"] for c in out["runs"][(b, sd)][m]["curve"]] for sd in seeds])
            series[m] = (accs.mean(0).tolist(), accs.std(0).tolist())
        line_plot(
            steps,
            series,
            ctx.path(f"curves_{key}.png"),
            "optimizer steps",
            "validation accuracy",
            f"{SETTINGS[key]['title']}, {b} labels/class",
        )
        res.figures.append(
            Figure(
                f"curves_{key}.png",
                f"{SETTINGS[key]['title']}: validation accuracy during training at {b} labels per class.",
            )
        )

    res.data = {
        k: {
            "source": v["source"],
            "budgets": v["budgets"],
            "runs": {f"{b}/{sd}": r for (b, sd), r in v["runs"].items()},
        }
        for k, v in results.items()
    }
    if ctx.preset != "full":
        res.notes.append(
            f"The {ctx.preset} preset uses a width-{p['width']} CNN, a source of {p['src_n']} images and {p['steps']} "
            "steps per target run; "
            "the full preset uses width 32, all source images for 10 epochs, 400 steps and budgets up to 1000 labels "
            "per class."
        )
    res.notes.append(
        f"Constants chosen on validation by experiments/transfer_choices.py ((a) at 10 labels/class, 3 seeds, "
        f"never the test split): lr {LR}, backbone lr x {BACKBONE_LR_MULT}, "
        f"{'probe-initialized (LP-FT)' if LP_FT else 'random'} transferred heads, spatial pooling "
        f"{SPATIAL_GRID}x{SPATIAL_GRID}. The best transfer method at each budget, and the best feature-extraction and "
        "fine-tuning methods the last finding compares, are chosen on the validation images (see 'How choices were "
        "made'); the test split is read once, after those choices, to report."
    )
    res.notes.append(
        "Times are wall-clock seconds on whatever else the machine was running; compare them within one run of the "
        "study."
    )
    res.notes.append(
        "One source model per setting (seed 0); the seeds vary the labelled subset, the head's initialization and the "
        "batch order."
    )
    return res
