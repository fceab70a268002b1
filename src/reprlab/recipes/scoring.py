"""Per-example anomaly scores of a trained run on any data (``reprlab score``).

A model that can score has ``anomaly_score(x) -> (B,)``, higher meaning less like its training data:
the reconstruction error for the autoencoders (``ae_mlp``, ``ae_conv``, ``sae_mlp``, ``dae_mlp``,
``dense_ae_layer``), the negative ELBO (or, with ``samples`` K > 1, the IWAE bound) for the VAEs, the free
energy for the RBM.

The data is read as the run read its own: an image folder with the run's ``size`` and ``channels``, a table
with its ``label``, ``drop`` and ``delimiter`` settings and standardised with the statistics the run saved
from its training rows (never refitted on the data being scored), arrays as they are. Every row is scored,
in the data's order; a built-in dataset name scores its test split.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError, DataError
from ..io import atomic_write_text, make_parent

SCORED_BY = {
    "vae": "negative ELBO in nats",
    "iwae": "IWAE negative log-likelihood bound in nats ({k} samples)",
    "rbm": "free energy",
    "ae": "reconstruction error per value",
}
SPLIT_OPTIONS = ("test_fraction", "val_fraction", "seed")
READER_KEYS = ("size", "channels", "label", "drop", "delimiter")


@dataclass
class ScoringData:
    """The rows to score: a batch source over all of them (``{"x"}`` in data order), and per row its file
    (image folders) and label (class name, when the data has labels)."""

    batches: Any
    n: int
    input_shape: tuple[int, ...]
    files: list[str] | None
    labels: list[str] | None
    describe: str


def what_it_scores(model: torch.nn.Module, samples: int = 1) -> str:
    """What ``model.anomaly_score`` measures, in words; ConfigError for a model that has no score."""
    name = getattr(model, "registry_name", type(model).__name__)
    if not hasattr(model, "anomaly_score"):
        raise ConfigError(
            f"model {name!r} has no anomaly score; score works for the autoencoders (ae_mlp, ae_conv, sae_mlp, "
            "dae_mlp, dense_ae_layer), the VAEs (vae_mlp, vae_conv) and the rbm"
        )
    from ..models.rbm import RBM

    if takes_samples(model):  # a VAE: its score is a likelihood bound
        return SCORED_BY["iwae"].format(k=samples) if samples > 1 else SCORED_BY["vae"]
    if samples > 1:
        raise ConfigError(f"--samples applies to VAEs; model {name!r} scores deterministically")
    if isinstance(model, RBM):
        return SCORED_BY["rbm"]
    loss = getattr(getattr(model, "config", None), "loss", "mse")
    return f"{SCORED_BY['ae']} ({loss})"


def takes_samples(model: torch.nn.Module) -> bool:
    """Whether ``model.anomaly_score`` is a sampled estimate (VAEs: it takes ``samples`` and a ``generator``)."""
    import inspect

    return "samples" in inspect.signature(model.anomaly_score).parameters


def saved_table_stats(saved: Mapping[str, Any]) -> dict | None:
    """The standardisation statistics a run saved for its table (its ``data_source`` record, or any record of
    kind ``table`` in config.json), or None."""
    records = [saved.get("data_source")] + [v for k, v in saved.items() if k != "data_source"]
    for rec in records:
        if isinstance(rec, Mapping) and rec.get("kind") == "table" and isinstance(rec.get("stats"), Mapping):
            return dict(rec["stats"])
    return None


def _reader_options(saved_data: Mapping[str, Any], kind: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The reader options of the run's data section that apply to ``kind`` (never its split settings), under
    the ones the user ``given`` on the command line."""
    from ..data.spec import OPTIONS

    opts = {k: saved_data[k] for k in READER_KEYS if k in OPTIONS[kind] and saved_data.get(k) not in (None, (), [])}
    opts.update(given)
    return opts


def _table_header(path: Path, delimiter: str | None) -> list[str]:
    """The column names of a CSV/TSV file's first row (the delimiter chosen as :mod:`reprlab.data.tables`
    chooses it)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError):
        return []  # read_table names the problem
    if delimiter:
        sep = "\t" if delimiter in ("tab", "\\t") else delimiter
    elif path.suffix.lower() == ".tsv":
        sep = "\t"
    else:
        counts = {d: first.count(d) for d in (",", "\t", ";")}
        sep = max(counts, key=counts.get) if max(counts.values()) else ","
    return [h.strip() for h in next(csv.reader([first], delimiter=sep), [])]


def _open_table(path: Path, opts: Mapping[str, Any], stats: dict | None, run: str) -> ScoringData:
    from ..data.arraybatches import ArrayBatches
    from ..data.tables import Standardizer, read_table

    if stats is None:
        raise DataError(
            f"{run} holds no standardisation statistics of a table (config.json data_source.stats): score "
            "standardises with the training rows' statistics, never the scored data's; train the run on a table"
        )
    label = opts.get("label")
    drop = opts.get("drop") or ()
    if isinstance(drop, str):
        drop = tuple(d.strip() for d in drop.split(",") if d.strip())
    header = _table_header(path, opts.get("delimiter"))
    if label is not None and label not in header:
        label = None  # data to score need not hold the label column
    drop = tuple(d for d in drop if d in header)
    t = read_table(path, label, drop, opts.get("delimiter"))
    st = Standardizer.from_dict(stats)
    if st.columns != t.columns:
        raise DataError(
            f"{t.path} has feature columns {', '.join(t.columns)}; {run} was trained on {', '.join(st.columns)} "
            "(give the same columns, or drop the others with --data.drop=COL,...)"
        )
    x = st.apply(t.values)
    return ScoringData(
        ArrayBatches({"x": x}, 1024, shuffle=False), len(x), (x.shape[1],), None, t.labels, f"table {t.path}"
    )


def _open_images(spec, opts: Mapping[str, Any], progress: bool) -> ScoringData:
    from ..data.arraybatches import ArrayBatches
    from ..data.spec import open_data

    d = open_data(spec, **({"progress": progress} if spec.kind == "folder" else {}), **opts)
    last = ("x",) if getattr(d, "channels_last", False) else ()
    batches = ArrayBatches({"x": d.x}, 256, shuffle=False, channels_last=last)
    labels = None if d.y is None else [str(d.classes[int(i)]) for i in d.y]
    files = list(d.files) if spec.kind == "folder" else None
    where = getattr(d, "root", None) or d.path
    return ScoringData(batches, len(d.x), tuple(d.input_shape), files, labels, f"{spec.kind} {where}")


def _open_builtin(name: str, data_dir: str | None) -> ScoringData:
    from ..data import load_images
    from ..data.batches import TensorBatches

    d = load_images(name, data_dir, 0)
    x, y = d.test
    labels = [str(d.classes[int(i)]) for i in y] if d.classes else [str(int(i)) for i in y]
    return ScoringData(
        TensorBatches({"x": x}, 1024, shuffle=False), len(x), tuple(x.shape[1:]), None, labels, f"{name} test split"
    )


def _wrong_shape(describe: str, shape, run: str, expect) -> DataError:
    return DataError(
        f"{describe} has inputs of shape {tuple(shape)}; {run} was trained on {tuple(expect)} "
        "(for images give the run's --data.size/--data.channels)"
    )


def open_scoring_data(
    text: str,
    saved: Mapping[str, Any],
    run: str,
    options: Mapping[str, Any] | None = None,
    data_dir: str | None = None,
    progress: bool = True,
    expect_shape: tuple[int, ...] | None = None,
) -> ScoringData:
    """The rows of ``text`` (a ``--data`` value) read with run ``run``'s reader settings (``saved``: its
    config.json), under ``options`` from the command line; see the module docstring. ``expect_shape``: the
    model's input shape; images of another shape are refused from their headers, before any is decoded."""
    from ..data.spec import OPTIONS, parse_data_spec

    spec = parse_data_spec(text, "images")
    given = dict(options or {})
    for key in given:
        if key not in OPTIONS[spec.kind] or key in SPLIT_OPTIONS:
            takes = ", ".join(k for k in OPTIONS[spec.kind] if k not in SPLIT_OPTIONS) or "no options"
            raise ConfigError(f"--data.{key} does not apply to scoring {spec.describe()}; it takes {takes}")
    if spec.kind == "builtin":
        return _open_builtin(spec.name, data_dir)
    saved_data = saved.get("data") or {}
    opts = _reader_options(saved_data, spec.kind, given)
    spec = parse_data_spec(text, "images", opts)  # coerces the values as the readers take them
    if spec.kind == "table":
        return _open_table(spec.path, spec.options, saved_table_stats(saved), run)
    if spec.kind in ("folder", "arrays"):
        from ..data.domains import peek

        shape = peek(spec)[1]
        if expect_shape and shape is not None and tuple(shape) != tuple(expect_shape):
            raise _wrong_shape(spec.describe(), shape, run, expect_shape)
        return _open_images(spec, spec.options, progress)
    raise DataError(f"--data {text}: score reads image folders, arrays and tables, not a {spec.kind}")


def score_batches(model: torch.nn.Module, batches, samples: int = 1, progress: bool = True) -> np.ndarray:
    """``model.anomaly_score`` of every row of ``batches`` in order, float64 (N,)."""
    from ..progress import stage

    kw: dict[str, Any] = {}
    if takes_samples(model):
        kw = {"samples": samples, "generator": torch.Generator().manual_seed(0)}
    model.eval()
    out = []
    with stage("scoring", total=batches.num_batches(), unit="batches", bars=None if progress else False) as s:
        for batch in batches.epoch(0):
            out.append(model.anomaly_score(batch["x"], **kw).double().cpu().numpy())
            s.advance()
    return np.concatenate(out) if out else np.zeros(0)


def scores_csv(scores: np.ndarray, files: list[str] | None = None, labels: list[str] | None = None) -> str:
    """The CSV text: ``index[,file][,label],score``, one row per example in data order."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["index", *(["file"] if files is not None else []), *(["label"] if labels is not None else []), "score"])
    for i, s in enumerate(scores):
        row = [i]
        if files is not None:
            row.append(files[i])
        if labels is not None:
            row.append(labels[i])
        w.writerow([*row, repr(float(s))])
    return buf.getvalue()


def score_run(
    run: str | Path,
    data: str,
    out: str | Path,
    options: Mapping[str, Any] | None = None,
    samples: int = 1,
    data_dir: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every row of ``data`` with run ``run``'s model and write the CSV ``out`` atomically (the caller
    checks ``out`` first, with :func:`reprlab.io.output_path`). Returns a summary: rows, what the score is,
    its mean and quartiles, and the mean per label when the data has labels."""
    from ..train.checkpoint import load_run, read_run_config

    if samples < 1:
        raise ConfigError(f"--samples must be >= 1, got {samples}")
    saved = read_run_config(run)
    model = load_run(run)
    what = what_it_scores(model, samples)
    shape = tuple(getattr(model.config, "input_shape", ()))
    d = open_scoring_data(data, saved, str(run), options, data_dir, progress, shape)
    if shape and tuple(d.input_shape) != shape:
        raise _wrong_shape(d.describe, d.input_shape, str(run), shape)
    scores = score_batches(model, d.batches, samples, progress)
    if len(scores) != d.n:  # pragma: no cover - a batch source bug
        raise CheckpointError(f"scored {len(scores)} of {d.n} rows")
    text = scores_csv(scores, d.files, d.labels)
    make_parent(out)
    atomic_write_text(out, text)
    summary: dict[str, Any] = {
        "rows": int(d.n),
        "data": d.describe,
        "score": what,
        "mean": float(np.mean(scores)) if len(scores) else float("nan"),
        "quartiles": [float(q) for q in np.percentile(scores, [25, 50, 75])] if len(scores) else [],
        "out": str(out),
    }
    if d.labels is not None:
        labels = np.asarray(d.labels)
        summary["mean_by_label"] = {str(c): float(scores[labels == c].mean()) for c in dict.fromkeys(d.labels)}
    return summary


__all__ = [
    "ScoringData",
    "takes_samples",
    "what_it_scores",
    "open_scoring_data",
    "score_batches",
    "scores_csv",
    "score_run",
]
