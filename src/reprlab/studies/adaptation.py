"""Study `adaptation`: does aligning feature distributions let one classifier work in both domains?

For each method (source-only, MMD, CORAL, DANN, pseudo-label) and the train-on-target oracle,
trains on Fashion-MNIST → Fashion-M and on two moons → rotated moons over several seeds, and
reports target test accuracy, the fraction of the source-only → oracle gap each method closes,
the proxy A-distance between source and target features, a t-SNE of the features before and
after adaptation, and the decision boundaries on the moons.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from ..data.domains import accuracy_by_photo, fashion_m_photo_names, load_domain_pair
from ..metrics.domain import proxy_a_distance
from ..metrics.validators import VALIDATORS, score_validators
from ..models.adaptation import METHODS
from ..recipes.adaptation import accuracy, correct, train_method
from .base import Figure, Finding, StudyContext, StudyResult, Table, fmt, mean_std, register_study

ADAPT = ("mmd", "coral", "dann", "pseudo-label")
SELECTED = ("source-only", *ADAPT)  # the methods selected without target labels
# per pair: training examples per domain (0 = all), epochs, batch size (per domain), optimizer, the learning rates
# each method is trained with (the lr grid), schedule, model settings, every how many epochs a checkpoint is kept
# and scored (the last epoch always is), and how many source-validation and target images the validators read.
# The Fashion CNN is the DANN paper's MNIST network at half width (16 and 32 channels; about 2.5x fewer
# convolution multiply-adds)
# behind per-image, per-channel input standardization, trained with SGD + momentum 0.9 and a cosine-decayed rate,
# as the DANN paper trains with SGD + momentum and a decaying rate.
_FASHION_MODEL = dict(channels=(16, 32), standardize="channel")
PRESETS = {
    "smoke": {
        "moons": dict(
            limit=0,
            epochs=20,
            batch=64,
            optimizer="adam",
            lrs=(1e-3, 3e-3),
            lr_schedule="constant",
            model={},
            every=5,
            n_val=150,
        )
    },
    "quick": {
        "moons": dict(
            limit=0,
            epochs=60,
            batch=128,
            optimizer="adam",
            lrs=(1e-3, 3e-3),
            lr_schedule="constant",
            model={},
            every=20,
            n_val=150,
        ),
        # quick scores on the first 5,000 test images of each domain (evaluation was a third of its time)
        "fashion": dict(
            limit=2000,
            epochs=3,
            batch=64,
            optimizer="sgd",
            lrs=(1e-2, 3e-2),
            lr_schedule="cosine",
            model=_FASHION_MODEL,
            test_limit=5000,
            every=1,
            n_val=500,
        ),
    },
    "full": {
        "moons": dict(
            limit=0,
            epochs=100,
            batch=64,
            optimizer="adam",
            lrs=(1e-3, 3e-3),
            lr_schedule="constant",
            model={},
            every=10,
            n_val=150,
        ),
        "fashion": dict(
            limit=8000,
            epochs=4,
            batch=64,
            optimizer="sgd",
            lrs=(1e-2, 3e-2),
            lr_schedule="cosine",
            model=_FASHION_MODEL,
            every=1,
            n_val=2000,
        ),
    },
}
PAIRS = {"moons": ("moons", "moons-rotated"), "fashion": ("fashion-mnist", "fashion-m")}
# the validator that selects the lr and epoch the study reports (the others are shown beside it): information
# maximisation, one of the validators Musgrave et al. (2022) benchmark (their ClassAMI and BNM are not implemented
# here), chosen by reasoning, not by a score: source-validation accuracy ignores the target entirely, the entropy
# alone rewards a collapsed, confident model, and DEV's importance weights are noisy on small validation sets
PRIMARY = "im"
VALIDATOR_TEXT = {
    "source-acc": "source-validation accuracy",
    "entropy": "minus the target predictions' mean entropy",
    "im": "information maximisation of the target predictions",
    "dev": "minus DEV (importance-weighted source-validation loss)",
}
SELECTION_SPLIT = "validation: source labels + unlabelled target"
ORACLE_SPLIT = "validation: labelled target images held out of the target's training split (the ceiling only)"
TSNE_POINTS = {"smoke": 150, "quick": 400, "full": 1000}


def _features(model, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([model.encode(x[i : i + 2048]) for i in range(0, len(x), 2048)]).numpy()


def gap_closed(acc: dict[str, list[float]], method: str) -> list[float]:
    """Per seed, (method − source-only) / (oracle − source-only)."""
    out = []
    for a, lo, hi in zip(acc[method], acc["source-only"], acc["target-oracle"]):
        out.append((a - lo) / (hi - lo) if hi - lo > 1e-9 else float("nan"))
    return out


def beats(acc: dict[str, list[float]], method: str) -> bool:
    """Mean above source-only's by more than 2 standard deviations (the larger of the two) of the seeds."""
    m, s = mean_std(acc[method])
    m0, s0 = mean_std(acc["source-only"])
    return m - m0 > 2 * max(s, s0)


def _tsne_figure(path, panels, n: int, seed: int) -> None:
    import matplotlib.pyplot as plt

    from ..plots import save_figure
    from sklearn.manifold import TSNE

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2))
    for ax, (title, fs, ft) in zip(np.atleast_1d(axes), panels):
        z = TSNE(2, init="pca", random_state=seed, perplexity=min(30, n // 4)).fit_transform(
            np.concatenate([fs[:n], ft[:n]])
        )
        ax.scatter(z[:n, 0], z[:n, 1], s=3, alpha=0.6, label="source", c="tab:blue")
        ax.scatter(z[n:, 0], z[n:, 1], s=3, alpha=0.6, label="target", c="tab:orange")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
        ax.legend(fontsize=7, markerscale=3)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def _boundary_figure(path, models: dict, source_test, target_test) -> None:
    import matplotlib.pyplot as plt

    from ..plots import save_figure

    xs, ys = source_test
    xt, yt = target_test
    both = torch.cat([xs, xt])
    lo, hi = both.min(0).values - 0.5, both.max(0).values + 0.5
    gx, gy = torch.meshgrid(
        torch.linspace(float(lo[0]), float(hi[0]), 200), torch.linspace(float(lo[1]), float(hi[1]), 200), indexing="xy"
    )
    grid = torch.stack([gx.flatten(), gy.flatten()], 1)
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.8))
    for ax, (name, m) in zip(np.atleast_1d(axes), models.items()):
        p = m.predict_proba(grid)[:, 1].view(200, 200).numpy()
        ax.contourf(gx.numpy(), gy.numpy(), p, levels=[0, 0.5, 1], colors=["#dde8f5", "#f7e3d3"], alpha=0.8)
        ax.scatter(xs[:, 0], xs[:, 1], c=ys, cmap="coolwarm", s=4, marker="o", alpha=0.5, label="source")
        ax.scatter(xt[:, 0], xt[:, 1], c=yt, cmap="coolwarm", s=8, marker="x", alpha=0.7, label="target")
        ax.set_title(f"{name}: target acc {accuracy(m, xt, yt):.2f}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def _gap_figure(path, gaps: dict[str, dict[str, list[float]]]) -> None:
    import matplotlib.pyplot as plt

    from ..plots import save_figure

    fig, ax = plt.subplots(figsize=(6, 3.6))
    width = 0.8 / max(len(gaps), 1)
    for k, (pair, per) in enumerate(gaps.items()):
        means = [np.nanmean(per[m]) for m in ADAPT]
        stds = [np.nanstd(per[m], ddof=1) if len(per[m]) > 1 else 0 for m in ADAPT]
        ax.bar(np.arange(len(ADAPT)) + k * width, means, width, yerr=stds, label=pair, capsize=3)
    ax.axhline(0, color="k", lw=0.8)
    ax.axhline(1, color="gray", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(ADAPT)) + width * (len(gaps) - 1) / 2, ADAPT)
    ax.set_ylabel("fraction of the gap closed")
    ax.set_title("Source-only (0) to train-on-target oracle (1)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


TRAIN_PHOTOS_HELD_OUT = "training photos, held-out images"


def _photo_table(by_image: dict[str, list[dict[str, float]]], n_val: int) -> Table:
    """Fashion-M target accuracy by photo (mean over seeds), and the share of the gap DANN closes on each."""
    groups = list(by_image["source-only"][0])
    rows = []
    for grp in groups:
        acc = {m: [a[grp] for a in by_image[m]] for m in METHODS}
        gap = gap_closed(acc, "dann")
        undefined = sum(math.isnan(g) for g in gap)  # the oracle not above source-only: no gap to close
        rows.append(
            [
                grp if grp == TRAIN_PHOTOS_HELD_OUT else f"test photo {grp}",
                *(f"{mean_std(acc[m])[0]:.3f}" for m in METHODS),
                f"n/a (oracle not above source-only in {undefined} of {len(gap)} seeds)" if undefined else fmt(gap, 3),
            ]
        )
    return Table(
        "fashion-mnist → fashion-m: target accuracy by photo (mean over seeds)",
        ["images", *METHODS, "gap DANN closes"],
        rows,
        f"Fashion-M's training and test images are blended from different photos. The first row scores {n_val} target "
        "images blended from the training photos that no method trains on: new garments and new crops, the setting of "
        "the "
        "widely used MNIST-M script (pumpikano/tf-dann's create_mnistm.py blends training and test digits alike with "
        "BSDS500's training photos). The other rows split the test set by photo.",
    )


def _describe_training(p: dict) -> str:
    opt = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD + momentum 0.9"}[p["optimizer"]]
    text = f"{opt}, lr {' or '.join(f'{lr:g}' for lr in p['lrs'])}"
    text += " cosine-decayed to 0" if p["lr_schedule"] == "cosine" else ""
    m = p["model"]
    if "channels" in m:
        text += f", CNN channels {'-'.join(map(str, m['channels']))}"
    if m.get("standardize", "none") != "none":
        text += f", inputs standardized per {m['standardize']}"
    return text


def _key(lr: float, epoch: int) -> str:
    return f"lr {lr:g}, epoch {epoch}"


@dataclasses.dataclass
class _Runs:
    """One method on one pair: per (lr, seed) the trained model, per (lr, epoch, seed) the kept weights and the
    validators' scores (no target label in them; the ceiling adds its labelled target-validation accuracy)."""

    models: dict = dataclasses.field(default_factory=dict)
    states: dict = dataclasses.field(default_factory=dict)
    scores: dict = dataclasses.field(default_factory=dict)

    def candidates(self) -> list[tuple[float, int]]:
        return sorted({(lr, e) for lr, e, _ in self.states})

    def mean_score(self, name: str) -> dict[str, float]:
        """Each candidate's score by ``name``, averaged over the seeds (NaN, e.g. a diverged run, ranks last)."""
        out = {}
        for lr, e in self.candidates():
            v = float(np.mean([sc[name] for (lr2, e2, _), sc in self.scores.items() if (lr2, e2) == (lr, e)]))
            out[_key(lr, e)] = v if math.isfinite(v) else -math.inf
        return out

    def load(self, lr: float, epoch: int, seed: int):
        m = self.models[(lr, seed)]
        m.load_state_dict(self.states[(lr, epoch, seed)])
        return m.eval()


def _train_runs(method, source, target, val_s, val_t, seeds, p, progress) -> _Runs:
    """Train ``method`` at each lr and seed; after each kept epoch, copy the weights and score them with every
    validator on the labelled source validation set ``val_s`` and the target validation images ``val_t[0]``.
    The target-validation labels ``val_t[1]`` are read only for the train-on-target ceiling."""
    runs = _Runs()
    for lr in p["lrs"]:
        for seed in seeds:

            def keep(epoch: int, model, lr=lr, seed=seed) -> None:
                e = epoch + 1
                if e % p["every"] and e != p["epochs"]:
                    return None
                runs.states[(lr, e, seed)] = {k: v.detach().clone() for k, v in model.state_dict().items()}
                sc = score_validators(model, val_s, val_t[0])
                if method == "target-oracle":
                    sc["target-val-acc"] = accuracy(model, *val_t)
                runs.scores[(lr, e, seed)] = sc
                return None

            # one thread, like the other studies: on a shared CPU more threads mostly add contention
            runs.models[(lr, seed)] = train_method(
                method,
                source,
                target,
                seed,
                p["epochs"],
                p["batch"],
                lr,
                progress,
                threads=1,
                optimizer=p["optimizer"],
                lr_schedule=p["lr_schedule"],
                callbacks=[keep],
                **p["model"],
            )
    return runs


def _choose(ctx: StudyContext, pair: str, runs: dict[str, _Runs]) -> dict[str, dict[str, tuple[float, int]]]:
    """Per method, the (lr, epoch) each validator selects (``ctx.choose``, recorded); the ceiling's by its
    labelled target-validation accuracy."""
    picks: dict[str, dict[str, tuple[float, int]]] = {}
    for method in SELECTED:
        back = {_key(lr, e): (lr, e) for lr, e in runs[method].candidates()}
        picks[method] = {
            v: back[
                ctx.choose(
                    f"{pair}: {method}'s lr and epoch, by {v}" + (" (the study's selector)" if v == PRIMARY else ""),
                    runs[method].mean_score(v),
                    split=SELECTION_SPLIT,
                    by=f"{VALIDATOR_TEXT[v]} (mean over seeds), higher is better",
                )
            ]
            for v in VALIDATORS
        }
    oracle = runs["target-oracle"]
    back = {_key(lr, e): (lr, e) for lr, e in oracle.candidates()}
    pick = ctx.choose(
        f"{pair}: target-oracle (ceiling)'s lr and epoch",
        oracle.mean_score("target-val-acc"),
        split=ORACLE_SPLIT,
        by="target-validation accuracy (mean over seeds), higher is better",
    )
    picks["target-oracle"] = {PRIMARY: back[pick]}
    return picks


def _validator_table(
    pair_title: str, test_acc: dict[str, dict[tuple[float, int], list[float]]], picks: dict, n_seeds: int
) -> tuple[Table, dict[str, float]]:
    """Target test accuracy each validator's selection reaches, per method, beside the best any selection among
    the candidates could reach (the oracle, an upper bound read off the test labels after every choice)."""
    rows, short = [], {v: [] for v in VALIDATORS}
    for method in SELECTED:
        acc = {c: float(np.mean(a)) for c, a in test_acc[method].items()}
        best = max(acc, key=lambda c: acc[c])
        row = [method]
        for v in VALIDATORS:
            c = picks[method][v]
            short[v].append(acc[best] - acc[c])
            row.append(f"{acc[c]:.3f} ({_key(*c)})")
        rows.append([*row, f"{acc[best]:.3f} ({_key(*best)})"])
    mean_short = {v: float(np.mean(x)) for v, x in short.items()}
    rows.append(["mean shortfall from the oracle", *(f"{mean_short[v]:.3f}" for v in VALIDATORS), "0"])
    table = Table(
        f"{pair_title}: target test accuracy reached by each validator's selection",
        ["method", *(v + (" (selector)" if v == PRIMARY else "") for v in VALIDATORS), "oracle (upper bound)"],
        rows,
        "Each method is trained at each lr and scored after every kept epoch; each validator picks one (lr, epoch) "
        "per method from source-validation labels and unlabelled target-validation images, its score averaged over "
        f"{n_seeds} seed{'s' * (n_seeds > 1)}. The cells give the target test accuracy (mean over seeds) the pick "
        "reaches. The oracle column reads the target test labels of every candidate after all choices were made: "
        "it is the best any selection could do, an upper bound shown for comparison, and chose nothing. "
        f"The study reports the {PRIMARY} selection everywhere else.",
    )
    return table, mean_short


@register_study("adaptation", "Domain adaptation: MMD, CORAL, DANN and pseudo-labels", order=50)
def run(ctx: StudyContext) -> StudyResult:
    preset = PRESETS[ctx.preset]
    res = StudyResult(
        "adaptation",
        "Domain adaptation: MMD, CORAL, DANN and pseudo-labels",
        "Aligning the feature distributions of a labelled source domain and an unlabelled target domain "
        "lets one model work in both: target accuracy rises from the source-only floor toward the train-on-target "
        "ceiling.",
        ctx.preset,
        f"reprlab study adaptation --preset {ctx.preset}",
    )
    seeds = list(ctx.seeds)
    # 1. train and select, every pair: no test split and no target label (but the ceiling's) is read here
    trained = {}
    for pair, p in preset.items():
        s_name, t_name = PAIRS[pair]
        source, target = load_domain_pair(s_name, t_name, ctx.data_dir, val_size=5000, limit=p["limit"])
        # the validators read held-out source images with their labels, and target images held out of the target's
        # training split without theirs; the rest of the target's validation split (images blended from the
        # training photos) is scored, with labels, only in the report
        n = p["n_val"]
        val_s = (source.val[0][:n], source.val[1][:n])
        val_t = (target.val[0][:n], target.val[1][:n])
        runs = {m: _train_runs(m, source, target, val_s, val_t, seeds, p, ctx.progress) for m in METHODS}
        trained[pair] = (source, target, runs, _choose(ctx, pair, runs))
    # 2. every choice is made: read the test splits and report
    gaps: dict[str, dict[str, list[float]]] = {}
    for pair, p in preset.items():
        s_name, t_name = PAIRS[pair]
        source, target, runs, picks = trained[pair]
        s_test, t_test = ctx.read_test(source), ctx.read_test(target)
        if p.get("test_limit"):
            s_test = tuple(t[: p["test_limit"]] for t in s_test)
            t_test = tuple(t[: p["test_limit"]] for t in t_test)
        photos = fashion_m_photo_names("test", len(t_test[0])) if t_name == "fashion-m" else None
        test_acc = {
            m: {c: [accuracy(runs[m].load(*c, seed), *t_test) for seed in seeds] for c in runs[m].candidates()}
            for m in METHODS
        }
        sel = {m: picks[m][PRIMARY] for m in METHODS}
        acc_t = {m: test_acc[m][sel[m]] for m in METHODS}
        acc_s: dict[str, list[float]] = {m: [] for m in METHODS}
        by_image: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}  # Fashion-M: per group of images
        first: dict[str, object] = {}
        held_out = (target.val[0][p["n_val"] :], target.val[1][p["n_val"] :])
        for method in METHODS:
            for seed in seeds:
                m = runs[method].load(*sel[method], seed)
                acc_s[method].append(accuracy(m, *s_test))
                if photos:
                    right = correct(m, *t_test)
                    by_image[method].append(
                        {TRAIN_PHOTOS_HELD_OUT: accuracy(m, *held_out), **accuracy_by_photo(right, photos)}
                    )
            first[method] = runs[method].load(*sel[method], seeds[0])
        gaps[pair] = {m: gap_closed(acc_t, m) for m in ADAPT}
        n = min(2000, len(s_test[0]), len(t_test[0]))
        feats = {m: (_features(first[m], s_test[0][:n]), _features(first[m], t_test[0][:n])) for m in METHODS}
        pad = {m: proxy_a_distance(*feats[m], seed=seeds[0]) for m in METHODS}
        rows = []
        for method in METHODS:
            g = "—" if method in ("source-only", "target-oracle") else fmt(gaps[pair][method], 3)
            win = "—" if method in ("source-only", "target-oracle") else ("yes" if beats(acc_t, method) else "no")
            rows.append(
                [
                    method + (" (ceiling)" if method == "target-oracle" else ""),
                    _key(*sel[method]),
                    fmt(acc_t[method], 3),
                    fmt(acc_s[method], 3),
                    g,
                    win,
                    f"{pad[method]:.2f}",
                ]
            )
        res.tables.append(
            Table(
                f"{s_name} → {t_name}: target test accuracy ({len(seeds)} seed{'s' * (len(seeds) > 1)})",
                [
                    "method",
                    "selected",
                    "target acc",
                    "source acc",
                    "gap closed",
                    "beats source-only (2σ)",
                    "proxy A-distance",
                ],
                rows,
                f"{len(source.train[0])} labelled source and {len(target.train[0])} unlabelled target training "
                f"examples (scored on {len(t_test[0])} target and {len(s_test[0])} source test images), up to "
                f"{p['epochs']} epochs, batch {p['batch']} per domain, {_describe_training(p)}. Each method's lr and "
                f"epoch were selected by {PRIMARY} ({VALIDATOR_TEXT[PRIMARY]}) on {p['n_val']} source-validation "
                f"images and {p['n_val']} unlabelled target images held out of the target's training split; the "
                "train-on-target ceiling's by its labelled target-validation accuracy. Gap closed = (method − "
                "source-only) / (oracle − source-only) per seed. Proxy A-distance = 2(1 − 2ε) of a linear SVM on the "
                "first seed's features of source and target test images (0: indistinguishable, 2: separable).",
            )
        )
        vtable, shortfall = _validator_table(f"{s_name} → {t_name}", test_acc, picks, len(seeds))
        res.tables.append(vtable)
        res.data[pair] = {
            "target_acc": acc_t,
            "source_acc": acc_s,
            "gap_closed": gaps[pair],
            "proxy_a_distance": pad,
            "selected": {m: {v: list(c) for v, c in picks[m].items()} for m in METHODS},
            "selector": PRIMARY,
            "candidate_target_acc": {m: {_key(*c): a for c, a in test_acc[m].items()} for m in METHODS},
            "validator_scores": {
                m: {f"{_key(lr, e)}, seed {s}": sc for (lr, e, s), sc in runs[m].scores.items()} for m in METHODS
            },
            "oracle_shortfall": shortfall,
            "n_source": len(source.train[0]),
            "n_target": len(target.train[0]),
            "n_test": len(t_test[0]),
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items() if k != "model"},
            "model": {k: list(v) if isinstance(v, tuple) else v for k, v in p["model"].items()},
        }

        if photos:
            res.tables.append(_photo_table(by_image, len(held_out[0])))
            res.data[pair]["by_photo"] = by_image
        k = TSNE_POINTS[ctx.preset]
        _tsne_figure(
            ctx.path(f"tsne_{pair}.png"),
            [
                (f"source-only (PAD {pad['source-only']:.2f})", *feats["source-only"]),
                (f"DANN (PAD {pad['dann']:.2f})", *feats["dann"]),
                (f"MMD (PAD {pad['mmd']:.2f})", *feats["mmd"]),
            ],
            min(k, n),
            seeds[0],
        )
        res.figures.append(
            Figure(
                f"tsne_{pair}.png",
                f"t-SNE of source (blue) and target (orange) test features, {s_name} → {t_name}, before (source-only) "
                "and after adaptation.",
            )
        )
        if pair == "moons":
            _boundary_figure(
                ctx.path("moons_boundaries.png"),
                {"source-only": first["source-only"], "DANN": first["dann"], "oracle": first["target-oracle"]},
                s_test,
                t_test,
            )
            res.figures.append(
                Figure(
                    "moons_boundaries.png",
                    "Decision regions on two moons: source (dots) and rotated target (crosses), coloured by class.",
                )
            )

        won = [m for m in ADAPT if beats(acc_t, m)]
        res.findings.append(
            Finding(
                f"On {s_name} → {t_name}, each of MMD, CORAL, DANN and pseudo-labels beats source-only on the target "
                "by more than 2 std of the seeds (each method's lr and epoch selected without target labels).",
                "supported" if len(won) == len(ADAPT) else ("not supported" if not won else "mixed"),
                f"beat it: {won or 'none'}; target acc: "
                + ", ".join(f"{m} {mean_std(acc_t[m])[0]:.3f}" for m in METHODS),
            )
        )
        # the claim itself: features closer across domains (PAD down) and the model still works on the source
        aligned = [m for m in ADAPT if pad[m] < pad["source-only"] - 0.05]
        kept = [m for m in ADAPT if mean_std(acc_s[m])[0] >= mean_std(acc_s["source-only"])[0] - 0.03]
        both = [m for m in aligned if m in kept and m in won]
        res.findings.append(
            Finding(
                f"On {s_name} → {t_name}, aligning the features (lower proxy A-distance) gives one model that works in "
                "both domains "
                "(target accuracy up, source accuracy within 3 points of source-only).",
                "supported" if len(both) >= 2 else ("mixed" if both or won else "not supported"),
                f"PAD lower than source-only's {pad['source-only']:.2f}: {aligned or 'none'}; source accuracy kept: "
                f"{kept or 'none'}; "
                f"all three: {both or 'none'}",
            )
        )
        closest = min(shortfall, key=lambda v: shortfall[v])
        res.findings.append(
            Finding(
                f"On {s_name} → {t_name}, selecting each method's lr and epoch without target labels ({PRIMARY}) "
                "costs at most 2 points of target accuracy against the oracle selection that reads the target test "
                "labels (mean over the methods).",
                "supported" if shortfall[PRIMARY] <= 0.02 else "not supported",
                "mean shortfall from the oracle: "
                + ", ".join(f"{v} {shortfall[v]:.3f}" for v in VALIDATORS)
                + f"; closest after the fact: {closest} (reported, not used to choose)",
            )
        )
        if pair == "fashion":
            g = np.nanmean(gaps[pair]["dann"])
            same = gap_closed({m: [a[TRAIN_PHOTOS_HELD_OUT] for a in by_image[m]] for m in METHODS}, "dann")
            res.findings.append(
                Finding(
                    "DANN closes at least 60% of the source-only → oracle gap on Fashion → Fashion-M (the DANN paper "
                    "closes about 56% on MNIST → MNIST-M).",
                    "supported" if g >= 0.6 else "not supported",
                    f"DANN closes {fmt(gaps[pair]['dann'], 3)} of the gap on the test photos (source-only "
                    f"{mean_std(acc_t['source-only'])[0]:.3f}, "
                    f"DANN {mean_std(acc_t['dann'])[0]:.3f}, oracle {mean_std(acc_t['target-oracle'])[0]:.3f}); on "
                    "held-out images of the "
                    f"photos it adapted to, {fmt(same, 3)}",
                )
            )
    _gap_figure(ctx.path("gap_closed.png"), gaps)
    res.figures.insert(
        0,
        Figure(
            "gap_closed.png", "Fraction of the source-only → oracle gap each method closes (mean ± std over seeds)."
        ),
    )
    res.notes.append(
        "Fashion-M is the MNIST-M construction (|colour photo crop − image|) applied to Fashion-MNIST with "
        "scikit-image's "
        "bundled photos, not the original MNIST-M; train and test use different photos. Source and target training "
        "images come from disjoint halves of Fashion-MNIST's training set. Anchor: Ganin et al. (JMLR 2016, Table 2), "
        "MNIST → MNIST-M: source-only 52.25%, DANN 76.66%, train-on-target 95.96%."
    )
    res.notes.append(
        "No target label trains or selects an adaptation method: the training batches hold the target's images only, "
        "and each method's lr and epoch are chosen by an unsupervised validator (Musgrave, Belongie & Lim, 2022) "
        f"on source-validation labels and unlabelled target images. The study's selector is {PRIMARY}; the validator "
        "tables show what the others would have picked. The train-on-target ceiling trains on target labels by "
        "definition, and is selected on a labelled target-validation split, never on the test split."
    )
    if "fashion" not in preset:
        res.notes.append(
            f"The {ctx.preset} preset runs only the two-moons pair; quick and full add Fashion → Fashion-M."
        )
    elif ctx.preset != "full":
        p, f = preset["fashion"], PRESETS["full"]["fashion"]
        res.notes.append(
            f"The {ctx.preset} preset trains on {p['limit']} images per domain for {p['epochs']} epochs; "
            f"the full preset uses {f['limit']} per domain for {f['epochs']} epochs. Verdicts at this budget are about "
            "this budget."
        )
    return res
