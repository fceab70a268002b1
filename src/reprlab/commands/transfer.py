"""reprlab transfer: reuse a pre-trained backbone on a target dataset, by feature extraction or fine-tuning."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import CheckpointError, ConfigError, DataError
from ._common import add_data_dir, add_trainer_flags, positive_int, resolve_config, saved_sections

HEADS = ("linear", "svm", "logreg")


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
        choices=["small_cnn", "resnet18"],
        help="backbone for --weights or scratch (default resnet18 with --weights)",
    )
    src.add_argument("--width", type=positive_int, help="small_cnn width for --weights or scratch (default 32)")
    src.add_argument(
        "--strict",
        type=_bool,
        default=True,
        metavar="true|false",
        help="with false, load the backbone tensors that match and list the rest (default true)",
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
        "(the last two blocks average-pooled to 2x2, which keeps coarse layout)",
    )
    p.add_argument("--out", help="run directory to create (default runs/transfer-TARGET-MODE-seedN)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    add_trainer_flags(p)
    p.set_defaults(func=run, accepts_overrides=True)


# ---------------------------------------------------------------------------- library functions
def target_model(
    source,
    num_classes: int,
    mode: str,
    unfreeze: int = 1,
    backbone_lr_mult: float = 0.1,
    standardize_on: Tensor | None = None,
    probe_on: tuple[Tensor, Tensor] | None = None,
    **config: Any,
):
    """A classifier for ``num_classes`` classes in ``mode``, with ``source``'s backbone weights (None: random init).

    ``source`` is a trained :class:`~reprlab.models.classifier.Classifier`; ``config`` sets other fields
    (backbone, width, input_shape) when there is no source. ``standardize_on``: target training images
    whose pre-trained features set the head's input standardization (not in mode scratch).
    ``probe_on``: labelled target images (x, y); the new head starts as a logistic regression fit on their
    (standardized) pre-trained features instead of at random - "linear probe, then fine-tune" (LP-FT), so
    the first steps of fine-tuning do not push a random head's errors into the backbone. Not in mode scratch.
    """
    from ..registry import build_config, create_model

    values = dict(config)
    if source is not None:
        values = {**dataclasses.asdict(source.config), **values}
    values.update(num_classes=num_classes, mode=mode, unfreeze=unfreeze, backbone_lr_mult=backbone_lr_mult)
    build_config("classifier", values)  # checks ranges (unfreeze against the blocks) before building
    model = create_model("classifier", **values)
    if source is not None and mode != "scratch":
        model.backbone.load_state_dict(source.backbone.state_dict())
        if standardize_on is not None:
            model.standardize_features(standardize_on)
        if probe_on is not None:
            probe_head(model, *probe_on)
    return model


def probe_head(model, x: Tensor, y: Tensor) -> None:
    """Set ``model``'s head to a multinomial logistic regression (C=1) fit on what the head sees of images x, labels y."""
    from sklearn.linear_model import LogisticRegression

    f = ((model.features(x) - model.feature_mean) / model.feature_std).numpy()
    lr = LogisticRegression(max_iter=1000).fit(f, y.numpy())
    coef, bias = torch.as_tensor(lr.coef_, dtype=torch.float32), torch.as_tensor(lr.intercept_, dtype=torch.float32)
    if coef.shape[0] == 1:  # two classes: scikit-learn keeps one row (the logit of class 1)
        coef, bias = torch.cat([-coef / 2, coef / 2]), torch.cat([-bias / 2, bias / 2])
    if coef.shape != model.head.weight.shape:
        raise DataError(
            f"the labelled images hold {coef.shape[0]} of the {model.head.weight.shape[0]} classes; "
            "a probe head needs every class"
        )
    with torch.no_grad():
        model.head.weight.copy_(coef)
        model.head.bias.copy_(bias)


def classical_head(kind: str, f_tr: np.ndarray, y_tr: np.ndarray, seed: int = 0):
    """A scikit-learn SVM (RBF, C=10) or logistic regression, fit on standardized features (a fitted pipeline)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    clf = (
        SVC(C=10.0, gamma="scale", random_state=seed)
        if kind == "svm"
        else LogisticRegression(max_iter=1000, random_state=seed)
    )
    return make_pipeline(StandardScaler(), clf).fit(f_tr, y_tr)


def classical_head_accuracy(
    kind: str, f_tr: np.ndarray, y_tr: np.ndarray, f_te: np.ndarray, y_te: np.ndarray, seed: int = 0
) -> float:
    """Test accuracy of a scikit-learn SVM (RBF) or logistic regression fit on standardized features."""
    return float(classical_head(kind, f_tr, y_tr, seed).score(f_te, y_te))


def accuracy(model, x: Tensor, y: Tensor) -> float:
    return float((model.predict(x) == y).float().mean())


# ---------------------------------------------------------------------------- CLI
def _source_model(args, in_shape: tuple[int, ...]):
    """(source classifier or None, model config values when there is no source, a line saying what was loaded)."""
    from ..models.pretrained import imagenet_resnet18_state_dict, load_backbone_weights, read_state_dict
    from ..registry import create_model
    from ..train.checkpoint import load_run, read_run_config

    if args.source and args.weights:
        raise ConfigError("give --source RUN or --weights PATH, not both")
    if args.source:
        saved = read_run_config(args.source)
        if saved["model"] != "classifier":
            raise CheckpointError(
                f"{args.source} holds a {saved['model']} run; --source needs a run of 'reprlab train classifier'"
            )
        if args.backbone or args.width:
            raise ConfigError("--backbone/--width come from the --source run; drop them")
        backbone = saved_sections(saved, Path(args.source) / "config.json")["model"].get("backbone")
        return load_run(args.source), {}, f"backbone: {backbone} from {args.source}"
    values = {"backbone": args.backbone or ("resnet18" if args.weights else "small_cnn"), "input_shape": in_shape}
    if args.width:
        values["width"] = args.width
    if not args.weights:
        if args.mode != "scratch":
            raise ConfigError(
                f"mode {args.mode} needs a pre-trained backbone: pass --source RUN or --weights PATH (or use --mode scratch)"
            )
        return None, values, f"backbone: {values['backbone']}, random init"
    src = create_model("classifier", **values)
    if args.weights == "imagenet":
        if values["backbone"] != "resnet18":
            raise ConfigError("--weights imagenet is torchvision's ResNet-18; use --backbone resnet18")
        state, where = imagenet_resnet18_state_dict(), "torchvision ImageNet ResNet-18"
    else:
        state, where = read_state_dict(args.weights), args.weights
    rep = load_backbone_weights(src, state, strict=args.strict, where=where)
    return src, {}, f"weights from {where}: {rep.summary()}"


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ..config import build, to_dict, TrainerConfig
    from ..data import load_images
    from ..data.batches import TensorBatches
    from ..data.transfer import fit_input, label_budget
    from ..io import atomic_write_text
    from ..train.engine import Trainer, seed_everything
    from ..train.rundir import OpenRun, check_new_run

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

    d = load_images(args.target, args.data_dir)
    source, values, loaded = _source_model(args, tuple(d.input_shape))
    want = tuple(source.config.input_shape) if source is not None else tuple(values["input_shape"])
    x_tr, y_tr = fit_input(d.train[0], want, args.resize, d.name), d.train[1]
    x_va = fit_input(d.val[0], want, args.resize, d.name) if len(d.val[0]) else None
    x_te = fit_input(d.test[0], want, args.resize, d.name)
    if args.labels_per_class:
        x_tr, y_tr = label_budget(x_tr, y_tr, args.labels_per_class, trainer_cfg.seed, d.num_classes, d.classes)
    seed_everything(trainer_cfg.seed)
    model = target_model(
        source,
        d.num_classes,
        args.mode,
        args.unfreeze,
        args.backbone_lr_mult,
        standardize_on=x_tr,
        probe_on=(x_tr, y_tr) if args.head_init == "probe" else None,
        **values,
    )
    print(loaded)
    print(f"target: {d.name}, {len(x_tr)} labelled training images, {len(x_te)} test images, {d.num_classes} classes")
    t0 = time.perf_counter()
    if args.head != "linear":
        f_tr, f_te = model.features(x_tr, kind=args.features).numpy(), model.features(x_te, kind=args.features).numpy()
        acc = classical_head_accuracy(args.head, f_tr, y_tr.numpy(), f_te, d.test[1].numpy(), trainer_cfg.seed)
        result = {
            "test/acc": acc,
            "wall_seconds": time.perf_counter() - t0,
            "head": args.head,
            "features": args.features,
            "train_size": len(x_tr),
        }
        run = OpenRun(out, overwrite=args.overwrite)
        try:  # a run of its own: config.json names the model whose frozen features the head was fit on
            config = {"model": "classifier", "model_config": to_dict(model.config), "transfer": {"head": args.head}}
            atomic_write_text(out / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
            atomic_write_text(out / "final_metrics.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
            run.commit()
        finally:
            run.close()
        print(f"run: {out}")
        print("metrics: " + json.dumps({"test/acc": round(acc, 5)}))
        return 0

    run_config = {
        "model": "classifier",
        "model_config": to_dict(model.config),
        "trainer": to_dict(trainer_cfg),
        "data": {"name": d.name, "data_dir": args.data_dir, "val_size": len(d.val[0]) or 0},
        "transfer": {
            "source": args.source,
            "weights": args.weights,
            "mode": args.mode,
            "labels_per_class": args.labels_per_class,
            "resize": args.resize,
            "loaded": loaded,
        },
    }
    bs = trainer_cfg.batch_size
    train = TensorBatches({"x": x_tr, "y": y_tr}, bs, shuffle=True, seed=trainer_cfg.seed)
    val = TensorBatches({"x": x_va, "y": d.val[1]}, 1024, shuffle=False) if x_va is not None else None
    with Trainer(
        trainer_cfg, out, run_config, overwrite=args.overwrite, description=f"transfer {args.mode}"
    ) as trainer:
        metrics = trainer.fit(model, train, val)
        test = trainer.evaluate(model, TensorBatches({"x": x_te, "y": d.test[1]}, 1024, shuffle=False))
        result = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        result.update({f"test/{k}": v for k, v in test.items()})
        result["wall_seconds"] = time.perf_counter() - t0
        atomic_write_text(out / "final_metrics.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"run: {out}")
    print("metrics: " + json.dumps({k: round(v, 5) for k, v in result.items() if k.startswith(("test/", "val/"))}))
    return 0
