"""The study framework: register a study, run it on a preset, write ``results.json``.

A study is a function ``run(ctx: StudyContext) -> StudyResult`` registered with
``@register_study(name, claim=...)``. It trains what it needs (through the engine), writes
PNG figures into ``ctx.out``, and returns tables and a verdict *computed from the numbers*.

The selection rule (DESIGN.md section 8): every choice a study makes (a hyper-parameter, a recipe, the
"best" method, an epoch, an ensemble size) goes through :meth:`StudyContext.choose` on a validation split,
and is recorded in ``results.json`` with the split that made it; the test split is read through
:meth:`StudyContext.read_test`, once the choices are made, and ``choose`` refuses after that.

Presets: ``smoke`` (seconds, for tests), ``quick`` (the demo: all studies in ~15 minutes on
2 CPU cores), ``full`` (published-quality numbers; may take hours).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np

from ..errors import ConfigError

Preset = Literal["smoke", "quick", "full"]
PRESETS = ("smoke", "quick", "full")
Verdict = Literal["supported", "not supported", "mixed", "inconclusive"]


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""


@dataclass
class Figure:
    path: str  # relative to the study's folder
    caption: str


@dataclass
class Finding:
    """One claim and its verdict, with the numbers that decided it."""

    claim: str
    verdict: Verdict
    evidence: str


@dataclass
class Choice:
    """One choice a study made: what was chosen among which candidates, by which score on which split."""

    what: str
    chosen: str
    split: str  # the split that decided, e.g. "validation (5,000 images held out of the training split)"
    by: str  # the score, e.g. "FD-classifier, lower is better"
    scores: dict[str, float] = field(default_factory=dict)  # candidate -> its score on ``split``


@dataclass
class StudyResult:
    study: str
    title: str
    claim: str
    preset: str
    command: str
    findings: list[Finding] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # raw numbers, for re-plotting
    choices: list[Choice] = field(default_factory=list)  # run_study copies them from the context
    seconds: float = 0.0
    order: int = 100  # the study's place in the report (run_study copies it from the registration)

    @property
    def verdict(self) -> Verdict:
        """supported if every finding is; not supported if none is supported or mixed and at least one is
        not supported (inconclusive findings decide nothing); inconclusive if all are; else mixed."""
        vs = [f.verdict for f in self.findings]
        decided = [v for v in vs if v != "inconclusive"]
        if not decided:
            return "inconclusive"
        if all(v == "supported" for v in vs):
            return "supported"
        if all(v == "not supported" for v in decided):
            return "not supported"
        return "mixed"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["verdict"] = self.verdict
        return d


@dataclass
class StudyContext:
    name: str
    preset: str
    out: Path
    data_dir: str | None = None
    seeds: tuple[int, ...] = (0, 1, 2)
    progress: bool = True
    choices: list[Choice] = field(default_factory=list)
    test_read: bool = False  # set by read_test; choose refuses after it

    def choose(self, what: str, scores: dict[Any, float], *, split: str, by: str, lower_is_better: bool = False):
        """The candidate (a key of ``scores``) with the best score on ``split``, recorded for the report.

        ``split`` must not be the test split, and no choice may follow :meth:`read_test`: both raise, since
        a number chosen on the test split and then reported on it is biased (DESIGN.md section 8)."""
        if not scores:
            raise ValueError(f"nothing to choose from for {what!r}")
        if self.test_read:
            raise RuntimeError(f"study {self.name!r} chose {what!r} after reading the test split")
        if "test" in split.lower():
            raise ValueError(f"study {self.name!r} would choose {what!r} on {split!r}: choose on a validation split")
        pick = (min if lower_is_better else max)(scores, key=lambda k: scores[k])
        self.choices.append(Choice(what, str(pick), split, by, {str(k): float(v) for k, v in scores.items()}))
        return pick

    def read_test(self, data):
        """``data.test``: the test split, read to report once every choice is made (after this, ``choose``
        refuses). Tests replace it to make the split unreadable before then."""
        self.test_read = True
        return data.test

    def path(self, name: str) -> Path:
        return self.out / name

    def images(self, dataset: str, n_train: int = 0):
        """``(data, (x_train, y_train))`` of an image dataset: ``data`` is the whole ``ImageData`` (5,000
        validation images held out of Fashion-MNIST's training split; digits keeps all of its own), and the
        training tensors are cut to the first ``n_train`` when ``n_train`` > 0. Its test split comes from
        :meth:`read_test`."""
        from ..data import load_images

        data = load_images(dataset, self.data_dir, val_size=0 if dataset == "digits" else 5000)
        x, y = data.train
        if n_train:
            x, y = x[:n_train], y[:n_train]
        return data, (x, y)


@dataclass(frozen=True)
class StudySpec:
    name: str
    title: str
    fn: Callable[[StudyContext], StudyResult]
    order: int


_STUDIES: dict[str, StudySpec] = {}


def register_study(name: str, title: str, order: int = 100):
    def deco(fn):
        _STUDIES[name] = StudySpec(name, title, fn, order)
        return fn

    return deco


def _load_all() -> None:
    import importlib
    import pkgutil

    from .. import studies

    for mod in pkgutil.iter_modules(studies.__path__):
        if mod.name != "base":
            importlib.import_module(f"{studies.__name__}.{mod.name}")


def study_names() -> list[str]:
    _load_all()
    return [s.name for s in sorted(_STUDIES.values(), key=lambda s: (s.order, s.name))]


def get_study(name: str) -> StudySpec:
    _load_all()
    if name not in _STUDIES:
        raise ConfigError(f"unknown study {name!r}; available: {', '.join(study_names())}, or all")
    return _STUDIES[name]


def check_out_folder(out_root: str | Path, names: list[str] | tuple[str, ...] = ()) -> Path:
    """``out_root`` if the studies ``names`` can write their folders under it; a path where a file stands in
    the way is a ConfigError before any study starts (their results.json files are the studies' own, and a
    re-run replaces them)."""
    root = Path(out_root)
    for parent in (root, *root.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"cannot write the studies' results under {root}: {parent} is a file, not a folder")
            break
    for n in names:
        sub = root / n
        if sub.exists() and not sub.is_dir():
            raise ConfigError(f"cannot write study {n!r} into {sub}: it is a file, not a folder")
        if (sub / "results.json").is_dir():
            raise ConfigError(f"cannot write {sub / 'results.json'}: it is a folder")
    return root


def run_study(
    name: str,
    preset: str,
    out_root: Path,
    data_dir: str | None = None,
    seeds: tuple[int, ...] | None = None,
    progress: bool = True,
) -> StudyResult:
    from ..io import atomic_write_text

    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    spec = get_study(name)
    out = check_out_folder(out_root, [name]) / name
    out.mkdir(parents=True, exist_ok=True)
    ctx = StudyContext(
        name, preset, out, data_dir, seeds if seeds else ((0,) if preset == "smoke" else (0, 1, 2)), progress
    )
    t0 = time.perf_counter()
    result = spec.fn(ctx)
    result.seconds = time.perf_counter() - t0
    result.choices = list(ctx.choices)
    result.title, result.order = spec.title, spec.order  # what the report orders and titles by: it imports no study
    atomic_write_text(out / "results.json", json.dumps(result.to_json(), indent=2, default=_jsonable) + "\n")
    return result


def _jsonable(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o)}")


def verdict_of(flags: list[bool]) -> Verdict:
    """One claim tested in several places: supported if it holds in all, not supported in none,
    mixed otherwise (inconclusive with nothing measured)."""
    if not flags:
        return "inconclusive"
    return "supported" if all(flags) else ("not supported" if not any(flags) else "mixed")


def mean_std(values) -> tuple[float, float]:
    a = np.asarray(list(values), dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def fmt(values, digits: int = 4) -> str:
    """'mean ± std' of a list of per-seed values (just the value for one seed)."""
    m, s = mean_std(values)
    if len(list(values)) == 1:
        return f"{m:.{digits}g}"
    return f"{m:.{digits}g} ± {s:.2g}"
