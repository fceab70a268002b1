"""Helpers shared by CLI subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import MAX_SEED, DataConfig, TrainerConfig, build, load_yaml, merge, parse_overrides, to_dict
from ..errors import CheckpointError, ConfigError
from ..io import output_path

SECTIONS = ("model", "trainer", "data")
SAVED_SECTIONS = {"model_config": "model", "trainer": "trainer", "data": "data"}  # config.json key -> section


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {v}")
    return v


def _short_int(v: int) -> str:
    text = str(v)
    return text if len(text) <= 24 else f"{text[:12]}… ({len(text)} digits)"


def seed_value(text: str) -> int:
    """argparse type of a random seed: a whole number from 0 to 2**63-1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r:.40}") from None
    if not 0 <= v <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed must be from 0 to 2**63-1, got {_short_int(v)}")
    return v


def saved_sections(saved: dict[str, Any], where: str | Path) -> dict[str, dict[str, Any]]:
    """The model/trainer/data sections of a run's config.json (``saved``) as dicts keyed model, trainer, data.

    A section that is there but not a mapping (``"data": "digits"``) means the file was edited or is
    corrupt: a CheckpointError naming the file, not a crash later."""
    out: dict[str, dict[str, Any]] = {}
    for key, section in SAVED_SECTIONS.items():
        value = saved.get(key, {})
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise CheckpointError(
                f"{where}: {key!r} must be a mapping of settings, got {value!r:.40}; the run's config.json is corrupt"
            )
        out[section] = dict(value)
    return out


def add_trainer_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training (shortcuts for --trainer.KEY=VALUE)")
    g.add_argument("--epochs", type=int, help="passes over the training data")
    g.add_argument("--batch-size", type=int, help="examples per step (per process)")
    g.add_argument("--lr", type=float, help="learning rate")
    g.add_argument("--seed", type=seed_value, help="random seed, 0 .. 2**63-1 (runs are bitwise reproducible on CPU)")
    g.add_argument("--devices", type=int, help="processes to train with (DDP over gloo on CPU)")
    g.add_argument("--precision", choices=["32", "bf16"], help="bf16 turns on autocast")
    add_no_progress(g, "hide progress bars")


DATA_DIR_HELP = "folder with the dataset files (else $REPRLAB_DATA, then the system folder)"


def add_no_progress(
    p: argparse.ArgumentParser | argparse._ArgumentGroup,
    help: str = "one line per finished stage instead of progress bars",
) -> None:
    """Declare ``--no-progress`` (``args.no_progress``); ``cli.main`` turns the bars off for every command that
    has it. ``help`` may name what that command shows progress for."""
    p.add_argument("--no-progress", action="store_true", help=help)


def add_data_dir(p: argparse.ArgumentParser | argparse._ArgumentGroup, help: str = DATA_DIR_HELP) -> None:
    """Declare ``--data-dir`` (``args.data_dir``, a folder with the dataset files) on a parser or group.

    Every command that reads a dataset declares it here, so the flag is spelled and stored alike everywhere;
    ``help`` says what that command looks for there."""
    p.add_argument("--data-dir", help=help)


def add_data_flags(p: argparse.ArgumentParser, default: str | None = "fashion-mnist") -> None:
    g = p.add_argument_group("data (shortcuts for --data.KEY=VALUE)")
    g.add_argument(
        "--data",
        help=f"a built-in dataset (default {default}) or your own data: a folder of PNG/JPEG images, an .npz/.npy "
        "file or a .csv/.tsv table (prefix folder:, npz: or csv: to choose the reader); see 'reprlab datasets'",
    )
    add_data_dir(g)
    g.add_argument("--limit", type=int, help="use only the first N training examples")


def resolve_config(
    args: argparse.Namespace, extra: list[str], saved: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Merge, lowest first: a saved run's config, --config YAML, shortcut flags, dotted overrides."""
    tree: dict[str, Any] = {}
    if saved:
        run = getattr(args, "resume", None) or getattr(args, "run", None)
        tree = saved_sections(saved, Path(run) / "config.json" if run else "the run's config.json")
    if getattr(args, "config", None):
        y = load_yaml(args.config)
        bad = sorted(set(y) - set(SECTIONS), key=str)
        if bad:
            raise ConfigError(f"{args.config}: unknown section {bad[0]!r}; valid sections: model, trainer, data")
        for sec, value in y.items():
            if value is not None and not isinstance(value, dict):
                raise ConfigError(
                    f"{args.config}: section {sec!r} must be a mapping like '{sec}: {{key: value}}', got {value!r:.40}"
                )
        tree = merge(tree, {sec: value for sec, value in y.items() if value is not None})
    flags = {
        ("trainer", "epochs"): getattr(args, "epochs", None),
        ("trainer", "batch_size"): getattr(args, "batch_size", None),
        ("trainer", "lr"): getattr(args, "lr", None),
        ("trainer", "seed"): getattr(args, "seed", None),
        ("trainer", "devices"): getattr(args, "devices", None),
        ("trainer", "precision"): getattr(args, "precision", None),
        ("data", "name"): getattr(args, "data", None),
        ("data", "data_dir"): getattr(args, "data_dir", None),
        ("data", "limit"): getattr(args, "limit", None),
    }
    for (sec, key), val in flags.items():
        if val is not None:
            tree.setdefault(sec, {})[key] = val
    if getattr(args, "no_progress", False):
        tree.setdefault("trainer", {})["progress"] = False
    overrides = parse_overrides(extra)
    bad = sorted(set(overrides) - set(SECTIONS))
    if bad:
        raise ConfigError(f"unknown config section --{bad[0]}.…; valid sections: model, trainer, data")
    tree = merge(tree, overrides)
    for sec in SECTIONS:
        tree.setdefault(sec, {})
    return tree


def build_trainer_and_data(tree: dict[str, dict[str, Any]]) -> tuple[TrainerConfig, DataConfig]:
    return build(TrainerConfig, tree["trainer"], "trainer"), build(DataConfig, tree["data"], "data")


def shown_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """What a command prints of a run's final metrics: the test and validation numbers, rounded."""
    return {k: round(v, 5) for k, v in result.items() if k.startswith(("test/", "val/"))}


def refuse_existing_output(path: str | Path, overwrite: bool, what: str = "file") -> Path:
    """``path`` if a new output file may be written there (see :func:`reprlab.io.output_path`); creates nothing,
    so call it before any work and create the folder only when writing."""
    return output_path(path, overwrite, what)


def python_data_error(run: str | Path) -> Exception:
    """The one-line refusal for a run trained on in-memory data (``reprlab.fit``) that a command would re-read."""
    from ..errors import DataError

    return DataError(
        f"{run} was trained on data given in Python (reprlab.fit), which a command cannot read again; "
        "pass --data PATH (a folder, .npz/.npy or .csv/.tsv) to use a file"
    )


def run_task(run: str | Path, saved: dict[str, Any], data: str | None = None, data_dir: str | None = None):
    """The task data of run ``run`` (``saved`` is its config.json): the data it was trained on, found again
    through its record (same split, a table's saved statistics; DataError when the data changed), or
    ``data``, another dataset, read with the run's data settings (a table with the run's statistics)."""
    from ..config import DataConfig, TrainerConfig, build
    from ..registry import get_spec
    from ..tasks import make_task_data

    sections = saved_sections(saved, Path(run) / "config.json")
    source = saved.get("data_source") if isinstance(saved.get("data_source"), dict) else None
    values = sections["data"]
    if data_dir:
        values["data_dir"] = data_dir
    if data:
        values["name"] = data
        # other data: nothing to compare it with, but a table is standardised as the run's was
        source = {"kind": "table", "stats": source["stats"]} if source and source.get("stats") else None
    elif source and source.get("kind") == "python":
        raise python_data_error(run)
    trainer_cfg = build(TrainerConfig, sections["trainer"], "trainer")
    return make_task_data(get_spec(saved["model"]).task, build(DataConfig, values, "data"), trainer_cfg, source)


def check_input_shape(model: Any, task: Any, data: str) -> None:
    """ConfigError when ``task``'s data does not have the shape ``model`` takes."""
    want = getattr(getattr(model, "config", None), "input_shape", None)
    have = task.model_defaults.get("input_shape")
    if want is not None and have is not None and tuple(want) != tuple(have):
        raise ConfigError(f"{data} gives inputs of shape {tuple(have)} but the model takes {tuple(want)}")


def load_run_task(run: str | Path, data: str | None = None, data_dir: str | None = None):
    """(model, task data, saved config) of run directory ``run``: its model and the data it was trained on
    (see :func:`run_task`), or ``data`` when given (refused when its shape is not the model's)."""
    from ..train.checkpoint import load_run, read_run_config

    saved = read_run_config(run)
    saved_sections(saved, Path(run) / "config.json")
    model = load_run(run)
    task = run_task(run, saved, data, data_dir)
    check_input_shape(model, task, data or str(saved.get("data", {}).get("name", "the run's data")))
    return model, task, saved


def g2p_ensemble(first: Any, first_run: str, other_runs: list[str]) -> Any:
    """A G2PEnsemble of ``first`` (the model of ``first_run``) and the models of ``other_runs`` (``--ensemble``)."""
    from ..models.g2p_base import G2PModel
    from ..models.g2p_ensemble import G2PEnsemble
    from ..train.checkpoint import load_run

    members = [(first_run, first)] + [(run, load_run(run)) for run in other_runs]
    for run, model in members:
        if not isinstance(model, G2PModel):
            raise ConfigError(f"--ensemble needs G2P runs; {run} holds a {getattr(model, 'registry_name', '?')} model")
    return G2PEnsemble([m for _, m in members])


__all__ = [
    "add_no_progress",
    "add_trainer_flags",
    "add_data_flags",
    "add_data_dir",
    "resolve_config",
    "build_trainer_and_data",
    "refuse_existing_output",
    "shown_metrics",
    "positive_int",
    "seed_value",
    "saved_sections",
    "to_dict",
    "g2p_ensemble",
    "run_task",
    "load_run_task",
    "check_input_shape",
    "python_data_error",
]
