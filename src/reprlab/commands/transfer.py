"""reprlab transfer: reuse a pre-trained backbone on a target dataset, by feature extraction or fine-tuning."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ConfigError
from ..recipes.transfer import HEADS
from ._common import add_data_dir, add_trainer_flags, positive_int, resolve_config, shown_metrics


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes", "on"):
        return True
    if text.lower() in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def register(sub) -> None:
    p = sub.add_parser(
        "transfer",
        help="reuse a pre-trained backbone on a target dataset (feature extraction or fine-tuning)",
        description=(
            "Build a classifier for --target from a pre-trained backbone (--source RUN, a run of "
            "'reprlab train classifier', or --weights FILE, a torchvision-format state dict) and train it "
            "in one of four modes: scratch (no pre-training, the baseline), frozen (feature extraction: only "
            "a new head trains), last-k (the last --unfreeze blocks and the head train) or all (everything "
            "trains, the backbone at --backbone-lr-mult times the lr). --head svm/logreg fits a scikit-learn "
            "classifier on the frozen features instead of a linear layer."
        ),
        epilog=(
            "example: reprlab train classifier --data fashion-mnist-0-4 --epochs 3 --out runs/src && "
            "reprlab transfer --source runs/src --target fashion-mnist-5-9 --mode last-k --unfreeze 1 "
            "--labels-per-class 10 --out runs/tgt"
        ),
    )
    src = p.add_argument_group("pre-trained backbone")
    src.add_argument("--source", metavar="RUN", help="run directory of a trained classifier")
    src.add_argument(
        "--weights",
        metavar="PATH",
        help="torchvision-format state dict (.pth/.pt via torch.save, or .safetensors); "
        "'imagenet' reads torchvision's ImageNet ResNet-18 from the torch hub cache ($TORCH_HOME/hub/checkpoints/"
        "resnet18-f37072fd.pth), hash-checked; nothing is downloaded",
    )
    src.add_argument(
        "--backbone",
        metavar="small_cnn|resnet18|timm:NAME",
        help="backbone for --weights or scratch (default resnet18 with --weights); timm:NAME is any timm model",
    )
    src.add_argument("--width", type=positive_int, help="small_cnn width for --weights or scratch (default 32)")
    src.add_argument(
        "--strict",
        type=_bool,
        default=True,
        metavar="true|false",
        help="with false, load the backbone tensors that match and list the rest (default true)",
    )
    src.add_argument(
        "--weights-min-match",
        type=float,
        default=0.9,
        metavar="FRACTION",
        help="refuse a --weights file that matches fewer than this share of the backbone's tensors (default 0.9)",
    )
    tgt = p.add_argument_group("target")
    tgt.add_argument("--target", required=True, help="target dataset (see 'reprlab datasets')")
    add_data_dir(tgt, "folder with the dataset files")
    tgt.add_argument(
        "--labels-per-class", type=positive_int, help="train on this many labelled examples of each class (default all)"
    )
    tgt.add_argument(
        "--resize",
        action="store_true",
        help="resample target images (and convert channels) to the backbone's input shape",
    )
    how = p.add_argument_group("method")
    how.add_argument("--mode", required=True, choices=["scratch", "frozen", "last-k", "all"])
    how.add_argument(
        "--unfreeze",
        type=positive_int,
        default=1,
        help="blocks to train in mode last-k, counted from the last (default 1)",
    )
    how.add_argument(
        "--backbone-lr-mult",
        type=float,
        default=0.1,
        help="backbone lr = lr * this, in modes last-k and all (default 0.1)",
    )
    how.add_argument(
        "--lr-schedule",
        choices=["constant", "cosine"],
        help="cosine decays every lr to 0 over the run (the same as --trainer.lr_schedule)",
    )
    how.add_argument(
        "--head-init",
        choices=["random", "probe"],
        default="random",
        help="probe: start the new head as a logistic regression on the frozen features (LP-FT); "
        "modes frozen, last-k, all (default random)",
    )
    how.add_argument(
        "--head", choices=HEADS, default="linear", help="linear (a trained layer), or svm / logreg on frozen features"
    )
    how.add_argument(
        "--features",
        choices=["pooled", "spatial"],
        default="pooled",
        help="frozen features for --head svm/logreg: pooled (globally average-pooled, default) or spatial "
        "(the last two blocks average-pooled to 3x3, which keeps coarse layout)",
    )
    p.add_argument("--out", help="run directory to create (default runs/transfer-TARGET-MODE-seedN)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    add_trainer_flags(p)
    p.set_defaults(func=run, accepts_overrides=True)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ..config import TrainerConfig, build
    from ..recipes.transfer import prepare_transfer, run_transfer
    from ..train.rundir import check_new_run

    tree = resolve_config(args, extra)
    tree["data"].pop("data_dir", None)  # --data-dir is ours; resolve_config files it under data
    if tree["model"] or tree["data"]:
        raise ConfigError(
            "reprlab transfer takes --trainer.KEY=VALUE overrides only; the model and data come from its own flags"
        )
    if args.lr_schedule:
        tree["trainer"]["lr_schedule"] = args.lr_schedule
    trainer_cfg = build(TrainerConfig, tree["trainer"], "trainer")
    if args.head != "linear" and args.mode != "frozen":
        raise ConfigError(f"--head {args.head} is fit on frozen features; use it with --mode frozen")
    if args.head_init == "probe" and (args.mode == "scratch" or args.head != "linear"):
        raise ConfigError(
            "--head-init probe starts a trained linear head from pre-trained features; use it with --mode frozen, "
            "last-k or all and --head linear"
        )
    if args.features != "pooled" and args.head == "linear":
        raise ConfigError(
            f"--features {args.features} is for a classical head on frozen features; add --head svm or --head logreg"
        )
    if args.backbone_lr_mult <= 0:
        raise ConfigError(f"--backbone-lr-mult must be > 0, got {args.backbone_lr_mult}")
    out = Path(args.out) if args.out else Path("runs") / f"transfer-{args.target}-{args.mode}-seed{trainer_cfg.seed}"
    check_new_run(out, args.overwrite)

    setup = prepare_transfer(
        args.target,
        args.data_dir,
        args.mode,
        trainer_cfg.seed,
        source=args.source,
        weights=args.weights,
        backbone=args.backbone,
        width=args.width,
        strict=args.strict,
        min_match=args.weights_min_match,
        unfreeze=args.unfreeze,
        backbone_lr_mult=args.backbone_lr_mult,
        labels_per_class=args.labels_per_class,
        resize=args.resize,
        probe=args.head_init == "probe",
    )
    print(setup.loaded)
    print(setup.describe())
    result = run_transfer(setup, trainer_cfg, out, args.overwrite, args.head, args.features)
    if result is not None:  # None: another DDP process; global rank 0 wrote and reports the run
        print(f"run: {out}")
        print("metrics: " + json.dumps(shown_metrics(result)))
    return 0
