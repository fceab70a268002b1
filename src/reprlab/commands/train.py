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
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the fully resolved config as YAML and exit (feed it back with --config)",
    )
    add_trainer_flags(p)
    add_data_flags(p)
    p.set_defaults(func=run, accepts_overrides=True)


def train_model(
    name: str, tree: dict, out: Path | None, resume: bool = False, overwrite: bool = False, quiet: bool = False
):
    """Build data and model from a resolved config tree and train it. Returns (model, trainer, task_data, metrics).

    The run folder is checked first (before any data is read), and created only once the model is built.
    The caller owns the returned trainer's run folder: ``trainer.close()`` releases it.
    """
    from ..registry import build_config_for_data, build_model, get_spec
    from ..tasks import get_task
    from ..train.callbacks import SampleGrid
    from ..train.engine import Trainer, launch_rank_zero, seed_everything
    from ..train.rundir import check_new_run

    spec = get_spec(name)
    trainer_cfg, data_cfg = build_trainer_and_data(tree)
    if out is not None and not resume:
        check_new_run(out, overwrite)
    task = get_task(spec.task)(data_cfg, trainer_cfg)
    model_cfg = build_config_for_data(name, tree["model"], task.model_defaults, data_cfg.name)
    run_config = {
        "model": name,
        "model_config": to_dict(model_cfg),
        "trainer": to_dict(trainer_cfg),
        "data": to_dict(data_cfg),
    }
    seed_everything(trainer_cfg.seed)
    model = build_model(name, model_cfg)  # before the run folder: a model that cannot be built leaves none
    trainer = Trainer(trainer_cfg, out, run_config, resume=resume, overwrite=overwrite, description=name)
    try:
        if not quiet and task.summary and launch_rank_zero():
            print(f"data: {task.summary}")  # stdout: stderr keeps progress bars and one-line errors
        callbacks = [SampleGrid()] if hasattr(model, "fixed_grid") else []
        metrics = trainer.fit(model, task.train, task.val, callbacks=callbacks)
    except BaseException:
        trainer.close()
        raise
    return model, trainer, task, metrics


def write_final_metrics(out: Path, metrics: dict, test: dict, seconds: float, **extra) -> dict:
    """RUN/final_metrics.json: the last epoch's numbers, the test metrics (``test/...``) and the wall time."""
    from ..io import atomic_write_text

    result = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    result.update({f"test/{k}": v for k, v in test.items()})
    result["wall_seconds"] = seconds
    result.update(extra)
    atomic_write_text(Path(out) / "final_metrics.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def resolved_yaml(name: str, tree: dict) -> str:
    """The config a run of model ``name`` would record: every model, trainer and data setting, with the
    values the data decides (input shape, classes) filled in, as YAML for ``--config``."""
    import yaml

    from ..registry import build_config_for_data, get_spec
    from ..tasks import get_task

    trainer_cfg, data_cfg = build_trainer_and_data(tree)
    task = get_task(get_spec(name).task)(data_cfg, trainer_cfg)
    model_cfg = build_config_for_data(name, tree["model"], task.model_defaults, data_cfg.name)
    tree = {"model": to_dict(model_cfg), "trainer": to_dict(trainer_cfg), "data": to_dict(data_cfg)}
    return f"# reprlab train {name} --config THIS_FILE\n" + yaml.safe_dump(tree, sort_keys=False)


def run(args: argparse.Namespace, extra: list[str]) -> int:
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
        # every process takes part in the (collective) test evaluation; rank 0 writes
        test = trainer.evaluate(model, task.test) if task.test is not None else {}
        if trainer.fabric.is_global_zero:
            result = write_final_metrics(out, metrics, test, time.perf_counter() - t0)
            shown = {k: round(v, 5) for k, v in result.items() if k.startswith(("test/", "val/"))}
            print(f"run: {out}")
            print("metrics: " + json.dumps(shown))
    return 0
