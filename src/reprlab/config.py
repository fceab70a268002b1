"""Frozen dataclass configs, YAML loading and dotted overrides checked for key and type.

Every config is a frozen dataclass. Values arrive from YAML files or from the command line
as ``--section.key=value``; :func:`build` checks every key against the dataclass fields and
every value against the field's type, and lists what is valid when something is wrong.
Range checks live in each dataclass's ``__post_init__`` and raise :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import math
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union, get_args, get_origin, get_type_hints

import yaml

from .errors import ConfigError


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin in (tuple, list):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return f"list of {_type_name(args[0])}" if args else "list"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert ``value`` to type ``tp`` (a field annotation) or raise ConfigError naming ``where``."""
    origin = get_origin(tp)
    bad = ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        choices = get_args(tp)
        if value in choices:
            return value
        # YAML reads `precision: 32` as a number: a choice matches by its text form too
        for c in choices:
            if not isinstance(value, bool) and isinstance(value, (int, float)) and str(value) == str(c):
                return c
        raise ConfigError(f"{where}: {value!r} is not valid; choose one of: {', '.join(map(str, choices))}")
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
            raise bad
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, where)
            except ConfigError:
                continue
        raise bad
    if origin in (tuple, list):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        if isinstance(value, str):
            value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip() != ""]
        if not isinstance(value, (list, tuple)):
            raise bad
        inner = args[0] if args else Any
        items = [coerce(v.strip() if isinstance(v, str) else v, inner, where) if inner is not Any else v for v in value]
        return tuple(items)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise bad
    if tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                f = float(value)
            except ValueError:
                raise bad from None
            if f.is_integer():
                return int(f)
        raise bad
    if tp is float:
        if isinstance(value, bool):
            raise bad
        try:
            f = float(value) if isinstance(value, (int, float, str)) else None
        except (ValueError, OverflowError):
            raise bad from None
        if f is None:
            raise bad
        if not math.isfinite(f):  # inf and nan pass float() but no setting of ours means them
            raise ConfigError(f"{where}: must be a finite number, got {value!r}")
        return f
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    if tp is Any:
        return value
    raise bad


def build(cls: type, values: dict[str, Any] | None = None, where: str = "") -> Any:
    """Build dataclass ``cls`` from ``values``, checking keys and types. Nested dataclasses recurse."""
    if values is not None and not isinstance(values, dict):
        what = f"section {where!r}" if where else f"the {cls.__name__} settings"
        raise ConfigError(f"{what} must be a mapping of keys to values, like 'lr: 1e-3', got {values!r:.60}")
    values = dict(values or {})
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]}; valid keys: " + ", ".join(prefix + k for k in fields)
        )
    kwargs = {}
    for name, value in values.items():
        tp = hints[name]
        key = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(tp):
            if isinstance(value, tp):
                kwargs[name] = value
            elif isinstance(value, dict):
                kwargs[name] = build(tp, value, key)
            else:
                raise ConfigError(f"{key}: expected a mapping of {tp.__name__} fields, got {value!r}")
        else:
            aliases = fields[name].metadata.get("aliases", {})
            if isinstance(value, (str, int)) and str(value) in aliases:
                value = aliases[str(value)]
            kwargs[name] = coerce(value, tp, key)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where or cls.__name__}: {e}") from None


def field_help(cls: type) -> dict[str, str]:
    """One line of help per field of config dataclass ``cls`` (and its bases), written once in the class
    itself: the comment at the end of the field's line, or the comment lines just above it."""
    import inspect
    import io
    import tokenize

    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        names = {f.name for f in dataclasses.fields(klass)}
        above: list[str] = []
        current, depth = None, 0
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                text = tok.string.lstrip("#").strip()
                if current is not None and text:  # at the end of the field's line (or inside its default)
                    out.setdefault(current, text)
                elif depth == 0:
                    above.append(text)
            elif tok.type == tokenize.NAME and tok.start[1] == 4 and depth == 0 and tok.string in names:
                current = tok.string
                if above:
                    out.setdefault(current, " ".join(above))
                above = []
            elif tok.type == tokenize.OP and tok.string in "([{":
                depth += 1
            elif tok.type == tokenize.OP and tok.string in ")]}":
                depth -= 1
            elif tok.type == tokenize.NEWLINE and depth == 0:
                current = None
            elif tok.type == tokenize.NAME and tok.string == "def":
                break
    return out


def describe_fields(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, help) of every field of config dataclass ``cls``, for ``--help`` and ``reprlab models``."""
    hints = get_type_hints(cls)
    helps = field_help(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = "(required)"
        if isinstance(default, tuple):
            default = ",".join(map(str, default)) or "(empty)"
        rows.append((prefix + f.name, _type_name(hints[f.name]), str(default), helps.get(f.name, "")))
    return rows


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a (nested) config dataclass; tuples become lists."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (tuple, list)):
            return [conv(x) for x in v]
        return v

    return conv(cfg)


def set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``tree['a']['b'] = value`` for ``dotted='a.b'``."""
    parts = dotted.split(".")
    node = tree
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--{dotted}: {p} is a value, not a section")
        node = nxt
    node[parts[-1]] = value


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """Turn ``['--trainer.lr=3e-4', '--model.latent_dim', '40']`` into a nested dict of strings."""
    tree: dict[str, Any] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--") or "." not in a.split("=", 1)[0]:
            raise ConfigError(
                f"unrecognized argument {a!r}; config overrides look like --trainer.lr=3e-4 or --model.latent_dim=40"
            )
        if "=" in a:
            key, val = a[2:].split("=", 1)
        else:
            if i + 1 >= len(args):
                raise ConfigError(f"{a} needs a value, e.g. {a}=VALUE")
            key, val = a[2:], args[i + 1]
            i += 1
        set_dotted(tree, key, val)
        i += 1
    return tree


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``extra`` wins."""
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {p} is not text (UTF-8 YAML); give a YAML file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise ConfigError(
            f"config file {p} is not valid YAML" + (f" (line {line + 1})" if line is not None else "")
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping like 'trainer: {{lr: 1e-3}}'")
    return data


MAX_SEED = 2**63 - 1  # the largest seed torch, NumPy (mod 2**32) and Python all take


def check_seed(seed: int, where: str = "--seed") -> int:
    """``seed`` if it is a valid random seed (0 .. 2**63-1), else a ConfigError naming ``where``."""
    shown = str(seed) if len(str(seed)) <= 24 else f"{str(seed)[:12]}… ({len(str(seed))} digits)"
    check(0 <= seed <= MAX_SEED, f"{where} must be a whole number from 0 to 2**63-1, got {shown}")
    return seed


def check(cond: bool, msg: str) -> None:
    """A config's range check (in ``__post_init__``): unless ``cond``, a ConfigError saying ``msg`` in one line."""
    if not cond:
        raise ConfigError(msg)


@dataclass(frozen=True)
class TrainerConfig:
    """Settings of the training engine; every model shares them."""

    epochs: int = 10  # passes over the training data
    batch_size: int = 128  # examples per step (per process)
    lr: float = 1e-3  # base learning rate (a model may scale it per parameter group)
    weight_decay: float = 0.0  # L2 penalty (decoupled for adamw)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"  # built by the engine for every model
    momentum: float = 0.9  # sgd only
    grad_clip: Optional[float] = None  # clip each optimizer's gradient norm to this; null = no clipping
    seed: int = 0  # seeds init, batch order and noise; runs are bitwise reproducible on CPU
    precision: Literal["32", "bf16"] = field(
        default="32", metadata={"aliases": {"32-true": "32", "bf16-mixed": "bf16"}}
    )  # bf16 turns on autocast (Lightning's names 32-true and bf16-mixed are accepted)
    devices: int = 1  # processes per node
    num_nodes: int = 1  # machines, when launched by torchrun / `fabric run`
    accelerator: Literal["cpu", "auto"] = "cpu"  # auto: a GPU when there is one
    checkpoint_every: int = 0  # steps between mid-epoch checkpoints; 0 = only at epoch ends
    max_steps: int = 0  # stop after this many optimizer steps; 0 = no limit
    progress: bool = True  # rich progress bars on stderr (else one line per finished stage)
    tensorboard: bool = True  # false removes tensorboard from loggers (kept for older configs)
    loggers: tuple[str, ...] = ("csv", "tensorboard")  # comma list of csv, tensorboard, mlflow, wandb; or none
    threads: int = 0  # torch intra-op threads per process; 0 = leave torch's default
    lr_schedule: Literal["constant", "cosine"] = (
        "constant"  # after warm-up: keep lr, or cosine-decay it to 0 at the end of the last epoch
    )
    warmup_steps: int = 0  # linear learning-rate warm-up from lr/warmup_steps to lr
    accumulate: int = 1  # batches whose gradients are summed into one optimizer step
    early_stop: Optional[str] = None  # METRIC:PATIENCE[:min|max], e.g. val/loss:3; keeps best.safetensors

    def __post_init__(self) -> None:
        check(self.epochs >= 1, f"trainer.epochs must be >= 1, got {self.epochs}")
        check(self.batch_size >= 1, f"trainer.batch_size must be >= 1, got {self.batch_size}")
        check(self.lr > 0, f"trainer.lr must be > 0, got {self.lr}")
        check(self.weight_decay >= 0, f"trainer.weight_decay must be >= 0, got {self.weight_decay}")
        check(self.grad_clip is None or self.grad_clip > 0, f"trainer.grad_clip must be > 0, got {self.grad_clip}")
        check(self.devices >= 1, f"trainer.devices must be >= 1, got {self.devices}")
        check(self.num_nodes >= 1, f"trainer.num_nodes must be >= 1, got {self.num_nodes}")
        check(self.checkpoint_every >= 0, "trainer.checkpoint_every must be >= 0")
        check(self.max_steps >= 0, "trainer.max_steps must be >= 0")
        check(self.threads >= 0, "trainer.threads must be >= 0")
        check(
            self.lr_schedule in ("constant", "cosine"),
            f"trainer.lr_schedule must be constant or cosine, got {self.lr_schedule!r}",
        )
        check(self.warmup_steps >= 0, f"trainer.warmup_steps must be >= 0, got {self.warmup_steps}")
        check_seed(self.seed, "trainer.seed")
        check(self.accumulate >= 1, f"trainer.accumulate must be >= 1, got {self.accumulate}")
        if self.early_stop is not None:
            parse_early_stop(self.early_stop)
        object.__setattr__(self, "loggers", parse_loggers(self.loggers))


LOGGERS = ("csv", "tensorboard", "mlflow", "wandb")


def parse_loggers(names: Any) -> tuple[str, ...]:
    """``"csv, MLflow"`` or ``["csv", "mlflow"]`` -> ``("csv", "mlflow")``: lower-cased, each once, in order;
    ``"none"`` (or nothing) is no logger. An unknown name is a ConfigError that lists the known ones."""
    if isinstance(names, str):
        names = names.split(",")
    out = tuple(dict.fromkeys(str(n).strip().lower() for n in names if str(n).strip()))
    if out == ("none",):
        return ()
    for n in out:
        check(
            n in LOGGERS,
            f"trainer.loggers: unknown logger {n!r}; choose from {', '.join(LOGGERS)}, comma-separated "
            "(e.g. --trainer.loggers=csv,mlflow), or none",
        )
    return out


def parse_early_stop(text: str) -> tuple[str, int, str]:
    """``'val/loss:3'`` -> ``('val/loss', 3, 'min')``; the mode is ``max`` for accuracies unless given."""
    parts = str(text).split(":")
    usage = "trainer.early_stop looks like METRIC:PATIENCE[:min|max], e.g. val/loss:3 or val/acc:5:max"
    check(len(parts) in (2, 3) and parts[0].strip() != "", f"{usage}; got {text!r}")
    metric = parts[0].strip()
    check(metric.startswith("val/"), f"trainer.early_stop watches a validation metric (val/...), got {metric!r}")
    try:
        patience = int(parts[1])
    except ValueError:
        raise ConfigError(f"{usage}; the patience {parts[1]!r} is not a whole number") from None
    check(patience >= 1, f"trainer.early_stop patience must be >= 1, got {patience}")
    mode = parts[2].strip() if len(parts) == 3 else ("max" if "acc" in metric.split("/")[-1] else "min")
    check(mode in ("min", "max"), f"{usage}; the mode must be min or max, got {mode!r}")
    return metric, patience, mode


@dataclass(frozen=True)
class DataConfig:
    """Which dataset to train on and how to split it."""

    # a built-in name (reprlab datasets), or your own data: a folder of images, an .npz/.npy file, a .csv/.tsv
    # table, a lexicon (g2p); folder:, npz:, csv: and lexicon: force a reader
    name: str = "fashion-mnist"
    data_dir: Optional[str] = None  # the folder with a built-in dataset's files (Fashion-MNIST's IDX files)
    val_size: int = 5000  # built-in data: examples held out from the training split for per-epoch evaluation
    limit: int = 0  # use only the first N training examples (after the val split); 0 = all
    # the settings below are for your own data; each applies to some readers only (left unset: the reader's default)
    size: Optional[int] = None  # image folders: center-crop, then resize to SIZE x SIZE pixels
    channels: Optional[int] = None  # image folders: 1 (grey) or 3 (RGB); unset: as the files are
    label: Optional[str] = None  # tables: the column that holds the labels (unset: unlabelled)
    drop: tuple[str, ...] = ()  # tables: columns to leave out (a text column must be dropped or be the label)
    delimiter: Optional[str] = None  # tables: the field separator (unset: by the file's suffix)
    test_fraction: Optional[float] = None  # data without its own test split: the share held out to test (0.2)
    val_fraction: Optional[float] = None  # data without its own validation split: the share held out (0.1)
    split_seed: Optional[int] = None  # the seed of that split (0); recorded in the run
    lowercase: Optional[bool] = None  # lexicons: lower-case the words (default true)
    strip_stress: Optional[bool] = None  # lexicons: drop stress digits from the phones (default false)

    def __post_init__(self) -> None:
        check(self.val_size >= 0, f"data.val_size must be >= 0, got {self.val_size}")
        check(self.limit >= 0, f"data.limit must be >= 0, got {self.limit}")

    def reader_options(self) -> dict[str, Any]:
        """The own-data settings the user gave, named as the readers take them (``split_seed`` -> ``seed``)."""
        keys = ("size", "channels", "label", "drop", "delimiter", "test_fraction", "val_fraction", "split_seed")
        out = {k: getattr(self, k) for k in (*keys, "lowercase", "strip_stress")}
        out["seed"] = out.pop("split_seed")
        return {k: v for k, v in out.items() if v is not None and v != ()}


# A model's output-range settings. The values for data outside [0, 1] (a standardised table, real-valued
# arrays); the images task fills them where a model has the field and the user set none of them.
RANGE_SETTINGS = {"loss": "mse", "output": "identity", "likelihood": "gaussian", "visible": "gaussian"}
# ... and the values that need data in [0, 1], refused for data outside it.
BOUNDED_SETTINGS = {"loss": "bce", "output": "sigmoid", "likelihood": "bernoulli", "visible": "bernoulli"}
