"""reprlab adapt --source S --target T --method M: train a classifier on S that must work on T."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ConfigError
from ._common import add_data_dir, add_no_progress, seed_value


def register(sub) -> None:
    from ..models.adaptation import METHODS

    p = sub.add_parser(
        "adapt",
        help="domain adaptation: train on a labelled source, test on an unlabelled target",
        description=(
            "Train a classifier on labelled SOURCE data and unlabelled TARGET data, and report its accuracy on "
            f"the target test set. Methods: {', '.join(METHODS)} (target-oracle reads the target labels: it is "
            "the ceiling, not an adaptation method). Any model/trainer value can be set with --model.KEY=VALUE "
            "or --trainer.KEY=VALUE."
        ),
        epilog="example: reprlab adapt --source fashion-mnist --target fashion-m --method dann --epochs 10 --out "
        "runs/dann; your own pair: reprlab adapt --source photos/ --target sketches/ --data.size=32 "
        "--data.channels=3 --method coral",
    )
    p.add_argument(
        "--source",
        default="fashion-mnist",
        help="labelled source: a built-in dataset (default fashion-mnist; also: moons) or your own data (an image "
        "folder with class sub-folders, an .npz with x and y, a .csv with --data.label=COLUMN)",
    )
    p.add_argument(
        "--target",
        default=None,
        help="target: a built-in dataset (default: fashion-m for fashion-mnist, moons-rotated for moons) or your "
        "own data with the same classes and shape; its labels, if any, are read only to score the final test",
    )
    p.add_argument("--method", default="dann", help=f"one of: {', '.join(METHODS)} (default dann)")
    p.add_argument("--weight", type=float, help="weight of the adaptation loss (--model.weight)")
    p.add_argument("--threshold", type=float, help="pseudo-label confidence threshold in (0, 1) (--model.threshold)")
    p.add_argument("--out", help="run directory to create (default runs/adapt-METHOD-seedN)")
    p.add_argument("--config", help="YAML file with model/trainer/data sections")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    add_data_dir(p, "folder with the Fashion-MNIST files")
    p.add_argument("--limit", type=int, help="use only the first N training examples of each domain")
    g = p.add_argument_group("training (shortcuts for --trainer.KEY=VALUE)")
    g.add_argument("--epochs", type=int, help="passes over the source training data")
    g.add_argument("--batch-size", type=int, help="examples per domain per step")
    g.add_argument("--lr", type=float, help="learning rate")
    g.add_argument("--seed", type=seed_value, help="random seed, 0 .. 2**63-1")
    add_no_progress(g, "hide progress bars")
    p.set_defaults(func=run, accepts_overrides=True)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ..data.domains import DEFAULT_TARGET, pair_name
    from ..models.adaptation import model_name
    from ..recipes.adaptation import run_adaptation
    from ._common import resolve_config

    model_name(args.method)  # an unknown method is refused before anything else
    target = args.target or DEFAULT_TARGET.get(args.source)
    if target is None:
        raise ConfigError(
            f"name a --target for source {args.source!r} (known pairs: "
            + ", ".join(f"{s} -> {t}" for s, t in DEFAULT_TARGET.items())
            + "; or two paths of your own)"
        )
    if args.threshold is not None and args.method != "pseudo-label":
        raise ConfigError(f"--threshold applies to --method pseudo-label, not {args.method}")
    if args.weight is not None and args.method in ("source-only", "target-oracle"):
        raise ConfigError(f"--weight weighs an adaptation loss; --method {args.method} has none")
    tree = resolve_config(args, extra)
    if "name" in tree["data"]:
        raise ConfigError("set the domains with --source and --target, not --data.name")
    tree["data"]["name"] = pair_name(args.source, target)
    if args.threshold is not None:
        tree["model"]["threshold"] = args.threshold
    if args.weight is not None:
        tree["model"]["weight"] = args.weight
    seed = tree["trainer"].get("seed", 0)
    out = Path(args.out) if args.out else Path("runs") / f"adapt-{args.method}-seed{seed}"
    result = run_adaptation(args.method, args.source, target, tree, out, overwrite=args.overwrite)
    by_photo = {k.split("/", 2)[2]: v for k, v in result.items() if k.startswith("target/test_acc/")}
    print(f"run: {out}")
    shown = [
        f"{side} test accuracy {result[key]:.4f}"
        for side, key in (("target", "target/test_acc"), ("source", "source/test_acc"))
        if key in result
    ]
    if "target/test_acc" not in result:
        shown.insert(0, "no target test accuracy (the target has no labels)")
    print(f"{args.method}: {', '.join(shown)} ({args.source} -> {target}, {result['wall_seconds']:.0f}s)")
    if by_photo:
        print("target test accuracy by photo: " + ", ".join(f"{p} {a:.4f}" for p, a in by_photo.items()))
    if "val/acc" in result:
        print(f"source validation accuracy {result['val/acc']:.4f} (no target label is read to validate)")
    if "target/val_acc" in result:
        held_out = " (held-out images blended from the training photos)" if target == "fashion-m" else ""
        print(f"target validation accuracy {result['target/val_acc']:.4f}{held_out}, read once with the test")
    if args.method == "target-oracle":
        print(
            "note: target-oracle trained on the target labels; it is the ceiling, not an adaptation result",
            file=sys.stderr,
        )
    return 0
