"""reprlab train MODEL ...: train any registered model into a run directory."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..errors import CheckpointError, ConfigError
from ..config import to_dict
from ._common import add_data_flags, add_trainer_flags, build_trainer_and_data, resolve_config, shown_metrics


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model into a run directory",
        description=(
            "Train a registered model (see 'reprlab models'). Any config value can be set with "
            "--model.KEY=VALUE, --trainer.KEY=VALUE or --data.KEY=VALUE, or from a YAML --config."
        ),
        epilog="example: reprlab train ae_mlp --data fashion-mnist --epochs 5 --model.code_dim=32 --out runs/ae32",
    )
    p.add_argument("model", nargs="?", help="registered model name; optional with --resume")
    p.add_argument("--out", help="run directory to create (default runs/MODEL-seedN)")
    p.add_argument("--config", help="YAML file with model/trainer/data sections")
    p.add_argument("--resume", metavar="RUN", help="continue this run exactly where it stopped")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the fully resolved config as YAML and exit (feed it back with --config)",
    )
    add_trainer_flags(p)
    add_data_flags(p)
    p.set_defaults(func=run, accepts_overrides=True)


def resolved_yaml(name: str, tree: dict) -> str:
    """The config a run of model ``name`` would record: every model, trainer and data setting, with the
    values the data decides (input shape, classes) filled in, as YAML for ``--config``."""
    import yaml

    from ..recipes.training import model_config_for
    from ..registry import get_spec
    from ..tasks import make_task_data

    trainer_cfg, data_cfg = build_trainer_and_data(tree)
    task = make_task_data(get_spec(name).task, data_cfg, trainer_cfg)
    model_cfg = model_config_for(name, tree["model"], task, data_cfg.name)
    tree = {"model": to_dict(model_cfg), "trainer": to_dict(trainer_cfg), "data": to_dict(data_cfg)}
    return f"# reprlab train {name} --config THIS_FILE\n" + yaml.safe_dump(tree, sort_keys=False)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ..recipes.training import finish_run, train_model
    from ..train.checkpoint import read_run_config

    saved = None
    name = args.model
    if args.print_config and args.resume:
        raise ConfigError("--print-config shows the config a new run would use; it cannot be combined with --resume")
    if args.resume:
        saved = read_run_config(args.resume)
        if name and name != saved["model"]:
            raise CheckpointError(f"{args.resume} holds a {saved['model']} run; it cannot be resumed as {name}")
        name = saved["model"]
        if args.out and Path(args.out) != Path(args.resume):
            raise ConfigError("--resume continues in the run's own directory; drop --out")
        if args.overwrite:
            raise ConfigError("--resume continues a run; it cannot be combined with --overwrite")
        out = Path(args.resume)
    elif not name:
        raise ConfigError("name a model to train (see 'reprlab models'), or pass --resume RUN")
    tree = resolve_config(args, extra, saved)
    if saved:
        for sec, key in (("model", "model_config"), ("data", "data")):
            changed = sorted(k for k, v in tree[sec].items() if saved.get(key, {}).get(k, v) != v)
            if changed:
                raise ConfigError(f"--{sec}.{changed[0]} cannot change on --resume; start a new run instead")
    if args.print_config:
        print(resolved_yaml(name, tree), end="")
        return 0
    if not args.resume:
        seed = tree["trainer"].get("seed", 0)
        out = Path(args.out) if args.out else Path("runs") / f"{name}-seed{seed}"
    t0 = time.perf_counter()
    model, trainer, task, metrics = train_model(name, tree, out, resume=bool(args.resume), overwrite=args.overwrite)
    with trainer:
        if trainer.already_finished:
            last = trainer.history[-1] if trainer.history else {}
            print(
                f"{out} is already finished (epoch {last.get('epoch', '?')}, step {last.get('step', '?')}); "
                "nothing changed. Pass --epochs N (more than now) to train longer.",
                file=sys.stderr,
            )
            return 0
        result = finish_run(trainer, model, task.test, metrics, t0)
        if result is not None:  # rank 0 wrote it
            print(f"run: {out}")
            print("metrics: " + json.dumps(shown_metrics(result)))
    return 0
