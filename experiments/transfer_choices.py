"""Choose the transfer study's constants on validation images, never on the test split (issue 19).

The study (src/reprlab/studies/transfer.py) fixes LR, BACKBONE_LR_MULT, LP_FT and SPATIAL_GRID; this script
chooses them on setting (a) (source: Fashion-MNIST classes 0-4, target: classes 5-9) at 10 labels per class,
with the quick preset's source and steps, over 3 seeds, scoring each candidate by its final model's accuracy on
the validation images held out of the target's training split (load_images' 5,000; the test split is never
loaded). In order, each choice fixing the ones before it:

1. LR: scratch (the baseline) at each candidate; the best for scratch, so transfer is not compared with a
   baseline trained at a rate that suits it badly;
2. BACKBONE_LR_MULT: fine-tune all (probe-initialized head) at LR;
3. LP_FT: fine-tune all at LR and that multiplier, with the head started as a logistic-regression probe or at
   random;
4. SPATIAL_GRID: frozen + SVM on the last two blocks average-pooled to g x g (needs no training).

    PYTHONPATH=src python experiments/transfer_choices.py        # ~5 minutes on one core
Writes experiments/out/transfer_choices.json (every score, per seed) and transfer_choices.txt (the table).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from reprlab.data import load_images
from reprlab.data.transfer import label_budget
from reprlab.recipes.training import seed_everything
from reprlab.recipes.transfer import classical_head, target_model
from reprlab.studies import transfer as study

LRS = (3e-3, 1e-2, 3e-2)
MULTS = (0.1, 0.3, 1.0)
GRIDS = (1, 2, 3, 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--budget", type=int, default=10, help="labels per class")
    ap.add_argument("--out", default=str(Path(__file__).parent / "out"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    p, s = study.PRESETS["quick"], study.SETTINGS["a"]
    source, _, src_n, src_sec = study._train_source(s["source"], p, None, 0)
    d = load_images(s["target"])
    x_tr, y_tr = d.train
    xv, yv = d.val  # held out of the target's training split
    budgets = {sd: label_budget(x_tr, y_tr, args.budget, sd, d.num_classes) for sd in args.seeds}

    def net(mode: str, lr: float, mult: float, probe: bool) -> list[float]:
        accs = []
        for sd, (xb, yb) in budgets.items():
            seed_everything(sd)
            m = target_model(
                source,
                d.num_classes,
                mode,
                unfreeze=1,
                backbone_lr_mult=mult,
                standardize_on=xb,
                probe_on=(xb, yb) if probe and mode != "scratch" else None,
            )
            accs.append(study._fit_curve(m, xb, yb, xv, yv, p["steps"], sd, 1, lr=lr)["curve"][-1]["acc"])
        return accs

    steps: list[dict] = []

    def choose(what: str, method: str, per_seed: dict) -> object:
        means = {k: float(np.mean(v)) for k, v in per_seed.items()}
        pick = max(means, key=means.get)
        steps.append(
            {
                "what": what,
                "method": method,
                "chosen": pick,
                "scores": {
                    str(k): {"mean": means[k], "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, "per_seed": v}
                    for k, v in per_seed.items()
                },  # fmt: skip
            }
        )
        print(f"{what}: {pick}  " + "  ".join(f"{k}={means[k]:.4f}" for k in per_seed), flush=True)
        return pick

    lr = choose("LR", "scratch", {c: net("scratch", c, 1.0, False) for c in LRS})
    mult = choose(
        "BACKBONE_LR_MULT", f"fine-tune all, LP-FT head, lr {lr}", {c: net("all", lr, c, True) for c in MULTS}
    )
    probe_scores = {True: steps[-1]["scores"][str(mult)]["per_seed"], False: net("all", lr, mult, False)}
    lp_ft = choose("LP_FT", f"fine-tune all, lr {lr}, backbone lr x {mult}", probe_scores)
    grid_scores = {}
    for g in GRIDS:
        accs = []
        for sd, (xb, yb) in budgets.items():
            head = classical_head("svm", study._features(source, xb, "spatial", g).numpy(), yb.numpy(), sd)
            accs.append(float(head.score(study._features(source, xv, "spatial", g).numpy(), yv.numpy())))
        grid_scores[g] = accs
    grid = choose("SPATIAL_GRID", "frozen + SVM, spatial", grid_scores)
    result = {
        "script": "experiments/transfer_choices.py",
        "setting": f"{s['title']}: source {s['source']} ({src_n} images, width {p['width']}, {p['src_epochs']} "
        f"epochs, {src_sec:.0f}s), target {d.name}",
        "labels_per_class": args.budget,
        "seeds": args.seeds,
        "split": f"validation ({len(yv)} images held out of {d.name}'s training split; the test split is never read)",
        "by": "accuracy of the final model, mean over seeds, higher is better",
        "steps_per_run": p["steps"],
        "choices": steps,
        "chosen": {"LR": lr, "BACKBONE_LR_MULT": mult, "LP_FT": lp_ft, "SPATIAL_GRID": grid},
        "seconds": time.perf_counter() - t_start,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "transfer_choices.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"Transfer constants chosen on validation: {result['setting']}, {args.budget} labels/class, seeds {args.seeds}",
        f"split: {result['split']}; score: {result['by']}",
        "",
        f"{'constant':<18} {'method':<42} {'candidate':>9} {'val acc (mean ± std)':>22}",
    ]
    for st in steps:
        for k, v in st["scores"].items():
            mark = "  <- chosen" if k == str(st["chosen"]) else ""
            lines.append(f"{st['what']:<18} {st['method']:<42} {k:>9} {v['mean']:>13.4f} ± {v['std']:.4f}{mark}")
    lines.append(f"\n{result['seconds']:.0f} s wall time")
    (out / "transfer_choices.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
