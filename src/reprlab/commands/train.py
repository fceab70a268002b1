"""reprlab train MODEL ...: train any registered model into a run directory."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..config import to_dict
from ..errors import CheckpointError, ConfigError
from ._common import add_data_flags, add_trainer_flags, build_trainer_and_data, resolve_config


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
    add_trainer_flags(p)
    add_data_flags(p)
    p.set_defaults(func=run, accepts_overrides=True)


def train_model(
    name: str, tree: dict, out: Path | None, resume: bool = False, overwrite: bool = False, quiet: bool = False
):
    """Build data and model from a resolved config tree and train it. Returns (model, trainer, task_data, metrics)."""
    from ..registry import build_config, get_spec
    from ..tasks import get_task
    from ..train.engine import Trainer, seed_everything

    spec = get_spec(name)
    trainer_cfg, data_cfg = build_trainer_and_data(tree)
    task = get_task(spec.task)(data_cfg, trainer_cfg)
    model_values = dict(tree["model"])
    fields = spec.config_cls.__dataclass_fields__
    for k, v in task.model_defaults.items():
        if k in fields and k not in model_values:
            model_values[k] = v
    model_cfg = build_config(name, model_values)
    run_config = {
        "model": name,
        "model_config": to_dict(model_cfg),
        "trainer": to_dict(trainer_cfg),
        "data": to_dict(data_cfg),
    }
    trainer = Trainer(trainer_cfg, out, run_config, resume=resume, overwrite=overwrite, description=name)
    seed_everything(trainer_cfg.seed)
    model = spec.cls(model_cfg)
    if not quiet and task.summary:
        print(f"data: {task.summary}", file=sys.stderr)
    metrics = trainer.fit(model, task.train, task.val)
    return model, trainer, task, metrics


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ..train.checkpoint import read_run_config

    saved = None
    name = args.model
    if args.resume:
        saved = read_run_config(args.resume)
        if name and name != saved["model"]:
            raise CheckpointError(f"{args.resume} holds a {saved['model']} run; it cannot be resumed as {name}")
        name = saved["model"]
        if args.out and Path(args.out) != Path(args.resume):
            raise ConfigError("--resume continues in the run's own directory; drop --out")
        out = Path(args.resume)
    elif not name:
        raise ConfigError("name a model to train (see 'reprlab models'), or pass --resume RUN")
    tree = resolve_config(args, extra, saved)
    if not args.resume:
        seed = tree["trainer"].get("seed", 0)
        out = Path(args.out) if args.out else Path("runs") / f"{name}-seed{seed}"
    t0 = time.perf_counter()
    model, trainer, task, metrics = train_model(name, tree, out, resume=bool(args.resume), overwrite=args.overwrite)
    # every process takes part in the (collective) test evaluation; rank 0 writes
    test = trainer.evaluate(model, task.test) if task.test is not None else {}
    if trainer.fabric.is_global_zero:
        result = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        result.update({f"test/{k}": v for k, v in test.items()})
        result["wall_seconds"] = time.perf_counter() - t0
        from ..train.checkpoint import atomic_write_text

        atomic_write_text(out / "final_metrics.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
        shown = {k: round(v, 5) for k, v in result.items() if k.startswith(("test/", "val/"))}
        print(f"run: {out}")
        print("metrics: " + json.dumps(shown))
    return 0
