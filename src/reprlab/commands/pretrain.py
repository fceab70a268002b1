"""reprlab pretrain / reprlab finetune: greedy layer-wise pre-training, then fine-tuning on a label budget."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..errors import CheckpointError, ConfigError
from ._common import add_data_flags, add_trainer_flags, build_trainer_and_data, resolve_config, shown_metrics

RBM_DEFAULT_LR = 1e-2  # CD updates are small; Adam at 1e-3 barely moves an RBM in a few epochs


def register(sub) -> None:
    p = sub.add_parser(
        "pretrain",
        help="greedy layer-wise pre-training of a stack of AE, DAE or RBM layers",
        description=(
            "Train the layers of a stack one at a time, each on the codes of the frozen layers below it, "
            "on all the (unlabelled) training images or table rows (--data my.csv: the first layer then gets Gaussian "
            "RBM units or a linear AE reconstruction). Each layer is its own run directory inside OUT, so an "
            "interrupted run continues at its layer with --resume OUT. --epochs counts per layer."
        ),
        epilog="example: reprlab pretrain --layers 500,500,2000 --layer-type dae --data fashion-mnist --epochs 10 "
        "--out runs/sdae",
    )
    p.add_argument("--layers", help="hidden layer sizes, bottom first, e.g. 500,500,2000")
    p.add_argument("--layer-type", default=None, help="per-layer learner: ae, dae (default) or rbm (a DBN)")
    p.add_argument("--corruption", type=float, help="DAE masking fraction (default 0.25)")
    p.add_argument("--k", type=int, help="RBM Gibbs steps per update, CD-k (default 1)")
    p.add_argument("--persistent", action="store_true", help="RBM: persistent contrastive divergence (PCD)")
    p.add_argument("--out", help="stack directory to create (default runs/stack-TYPE-seedN)")
    p.add_argument("--resume", metavar="OUT", help="continue an interrupted pre-training in OUT")
    p.add_argument("--overwrite", action="store_true", help="replace an existing directory")
    add_trainer_flags(p)
    add_data_flags(p)
    p.set_defaults(func=run_pretrain, accepts_overrides=True)

    f = sub.add_parser(
        "finetune",
        help="fine-tune a deep classifier initialized from a pre-trained stack",
        description=(
            "Build a classifier from the stack's layers (exactly), add a softmax head and train the whole "
            "network on LABELS labelled training images (stratified, drawn with --seed). --random-init trains "
            "the same architecture from random weights: the baseline. Writes an ordinary run directory."
        ),
        epilog="example: reprlab finetune runs/sdae --labels 1000 --epochs 30 --out runs/sdae-ft1000",
    )
    f.add_argument("stack", nargs="?", help="a finished stack directory from 'reprlab pretrain'")
    f.add_argument("--labels", type=int, help="labelled examples to fine-tune on (default: all)")
    f.add_argument("--depth", type=int, help="use only the first DEPTH layers of the stack")
    f.add_argument("--random-init", action="store_true", help="baseline: the same architecture from random init")
    f.add_argument("--out", help="run directory to create (default STACK/finetune-LABELS-seedN)")
    f.add_argument("--resume", metavar="RUN", help="continue an interrupted fine-tuning run")
    f.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    add_trainer_flags(f)
    f.set_defaults(func=run_finetune, accepts_overrides=True)


def run_pretrain(args: argparse.Namespace, extra: list[str]) -> int:
    from ..recipes.pretraining import StackSpec, data_record, load_stack_data, parse_layers, pretrain_stack
    from ..recipes.pretraining import check_same_data, read_stack_json
    from ..train.rundir import check_new_run

    if args.resume:
        out = Path(args.resume)
        if args.out and Path(args.out) != out:
            raise ConfigError("--resume continues in the stack's own directory; drop --out")
        meta = read_stack_json(out)
        if meta.get("status") == "finished":
            raise CheckpointError(f"{out} is already a finished stack; fine-tune it with 'reprlab finetune {out}'")
        if any(v is not None for v in (args.layers, args.layer_type, args.corruption, args.k)) or args.persistent:
            raise ConfigError(
                "--resume continues the stack as it was started; drop "
                "--layers/--layer-type/--corruption/--k/--persistent"
            )
        spec = StackSpec(tuple(meta["layers"]), meta["layer_type"], meta["corruption"], meta["k"], meta["persistent"])
        saved = {"model_config": {}, "trainer": meta["trainer"], "data": meta["data"]}
        tree = resolve_config(args, extra, saved)
    else:
        if args.layers is None:
            raise ConfigError("--layers is required, e.g. --layers 500,500,2000")
        layers = parse_layers(args.layers)
        spec = StackSpec(
            layers,
            args.layer_type or "dae",
            0.25 if args.corruption is None else args.corruption,
            args.k or 1,
            args.persistent,
        )
        if args.k is not None and args.k < 1:
            raise ConfigError(f"--k must be >= 1, got {args.k}")
        if not 0 <= spec.corruption < 1:
            raise ConfigError(f"--corruption must be in [0, 1), got {spec.corruption}")
        tree = resolve_config(args, extra)
        if spec.layer_type == "rbm" and "lr" not in tree["trainer"]:
            tree["trainer"]["lr"] = RBM_DEFAULT_LR
        seed = tree["trainer"].get("seed", 0)
        out = Path(args.out) if args.out else Path("runs") / f"stack-{spec.layer_type}-seed{seed}"
    if tree["model"]:
        raise ConfigError(
            "pretrain takes no --model.* options; use --layers, --layer-type, --corruption, --k, --persistent"
        )
    trainer_cfg, data_cfg = build_trainer_and_data(tree)
    if not args.resume:
        check_new_run(out, args.overwrite)
    data = load_stack_data(data_cfg, progress=trainer_cfg.progress)
    if args.resume:
        check_same_data(data, meta.get("data_source"), out)
    what = "images" if len(data.input_shape) == 3 else "rows"
    print(
        f"data: {data.name}: pre-training {spec.layer_type} layers {list(spec.layers)} on {len(data.train[0])} "
        f"unlabelled {what}",
    )
    from ..config import to_dict

    extra_meta = {"data": to_dict(data_cfg)}
    if data_record(data) is not None:
        extra_meta["data_source"] = data_record(data)
    t0 = time.perf_counter()
    stack = pretrain_stack(
        data.train[0],
        spec,
        trainer_cfg,
        out,
        resume=bool(args.resume),
        overwrite=args.overwrite,
        x_eval=data.val[0] if len(data.val[0]) else None,
        extra_meta=extra_meta,
    )
    for s in stack.scores:
        shown = {k: round(v, 5) for k, v in s.items() if isinstance(v, float) and k.endswith(("recon", "bce"))}
        print(f"layer {s['layer']} ({s['type']} {s['size']}): " + json.dumps(shown))
    print(f"stack: {out} ({time.perf_counter() - t0:.0f}s); next: reprlab finetune {out} --labels 1000")
    return 0


def run_finetune(args: argparse.Namespace, extra: list[str]) -> int:
    from ..recipes.pretraining import finetune_model, load_stack, prepare_finetune, run_finetune
    from ..train.checkpoint import read_run_config
    from ..train.rundir import check_new_run

    if args.resume:
        saved = read_run_config(args.resume)
        if "finetune" not in saved:
            raise CheckpointError(f"{args.resume} is not a fine-tuning run (made by 'reprlab finetune')")
        ft = saved["finetune"]
        if args.stack and Path(args.stack) != Path(ft["stack"]):
            raise ConfigError(f"{args.resume} fine-tunes {ft['stack']}, not {args.stack}")
        stack_dir, labels, depth, random_init = Path(ft["stack"]), ft["labels"], ft["depth"], ft["random_init"]
        out = Path(args.resume)
        tree = resolve_config(args, extra, {"model_config": {}, "trainer": saved["trainer"], "data": saved["data"]})
    else:
        if not args.stack:
            raise ConfigError("name a stack directory made by 'reprlab pretrain', or pass --resume RUN")
        stack_dir, labels, depth, random_init = Path(args.stack), args.labels, args.depth, args.random_init
        tree = resolve_config(args, extra)
    stack, meta = load_stack(stack_dir)
    if depth is not None and not 1 <= depth <= len(stack.layers):
        raise ConfigError(f"--depth must be between 1 and {len(stack.layers)} (the stack's layers), got {depth}")
    if not args.resume:
        tree["data"] = {**meta.get("data", {}), **tree["data"]}
    if tree["model"]:
        raise ConfigError("finetune takes its architecture from the stack; drop the --model.* options")
    trainer_cfg, data_cfg = build_trainer_and_data(tree)
    source = meta.get("data_source") or {}
    stats = source.get("stats") if source.get("kind") == "table" else None
    setup = prepare_finetune(stack, stack_dir, data_cfg, labels, depth, random_init, trainer_cfg.seed, stats)
    if not args.resume:
        seed, n = trainer_cfg.seed, setup.labels
        out = Path(args.out) if args.out else stack_dir / f"finetune-{n}-seed{seed}{'-random' if random_init else ''}"
        check_new_run(out, args.overwrite)

    model = finetune_model(stack, setup, trainer_cfg.seed)
    print(setup.describe())
    finished, result = run_finetune(
        setup, model, trainer_cfg, data_cfg, out, resume=bool(args.resume), overwrite=args.overwrite
    )
    if finished:
        print(f"{out} is already finished; nothing changed. Pass --epochs N to train longer.", file=sys.stderr)
        return 0
    if result is not None:  # None: another DDP process; global rank 0 wrote and reports the run
        print(f"run: {out}")
        print("metrics: " + json.dumps(shown_metrics(result)))
    return 0
