"""Tables from CSV/TSV files: numeric feature columns, an optional label column, standardised features.

The first row names the columns. Every column but the label (and those in ``drop``) must be numeric:
a text column is refused by name, and so is an empty or missing cell (``NA``, ``nan``, ``?``, ...), with
its line number. The numeric columns are standardised with the mean and standard deviation of the
TRAINING rows only; :class:`Standardizer` holds them so a run can save them and apply them to new data.
The delimiter is a tab for ``.tsv`` and otherwise guessed from the header (comma, tab or semicolon).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError
from .splits import Split, SplitRows, make_split

MISSING = {"", "na", "n/a", "nan", "null", "none", "?", "-nan"}


@dataclass(frozen=True)
class Standardizer:
    """Per-column mean and standard deviation (ddof 0; a constant column gets std 1)."""

    columns: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, columns: Sequence[str]) -> "Standardizer":
        x = np.asarray(x, dtype=np.float64)
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        return cls(tuple(columns), mean, np.where(std > 0, std, 1.0))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(x - mean) / std as float32."""
        return ((np.asarray(x, dtype=np.float64) - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict:
        return {"columns": list(self.columns), "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Standardizer":
        return cls(tuple(d["columns"]), np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], np.float64))


@dataclass
class Table:
    """A parsed table: the feature columns as float64 and the raw label strings (or None)."""

    path: Path
    columns: tuple[str, ...]
    values: np.ndarray  # (N, D) float64
    label: str | None
    labels: list[str] | None


def _delimiter(path: Path, header_line: str, delimiter: str | None) -> str:
    if delimiter:
        return "\t" if delimiter in ("tab", "\\t") else delimiter
    if path.suffix.lower() == ".tsv":
        return "\t"
    counts = {d: header_line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def read_table(
    path: str | Path, label: str | None = None, drop: Sequence[str] = (), delimiter: str | None = None
) -> Table:
    """Parse a CSV/TSV file; DataError naming the column (and line) for text columns, missing cells,
    a missing label column, ragged rows, or fewer than 2 rows."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"{p} does not exist; give a .csv or .tsv file with a header row")
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            first = f.readline()
            f.seek(0)
            rows = csv.reader(f, delimiter=_delimiter(p, first, delimiter))
            header = next(rows, None)
            if header is None:
                raise DataError(f"{p} is empty; give a header row and at least 2 rows of data")
            header = [h.strip() for h in header]
            cells: list[list[str]] = []
            lines: list[int] = []
            for row in rows:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank line
                if len(row) != len(header):
                    raise DataError(f"{p} line {rows.line_num} has {len(row)} fields but the header has {len(header)}")
                cells.append(row)
                lines.append(rows.line_num)
    except UnicodeDecodeError as e:
        raise DataError(f"{p} is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8") from None
    except csv.Error as e:
        raise DataError(f"{p}: not a readable CSV file ({e})") from None
    except OSError as e:
        raise DataError(f"cannot read {p}: {e.strerror}") from None
    for i, h in enumerate(header):
        if not h:
            raise DataError(f"{p}: column {i + 1} has no name in the header row")
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise DataError(f"{p}: the header names column {dup[0]!r} more than once")
    if label is not None and label not in header:
        raise DataError(f"{p} has no column {label!r} for the label; its columns: {', '.join(header)}")
    unknown = [d for d in drop if d not in header]
    if unknown:
        raise DataError(f"{p} has no column {unknown[0]!r} to drop; its columns: {', '.join(header)}")
    if len(cells) < 2:
        raise DataError(f"{p} has {len(cells)} data row(s); a table needs at least 2")
    features = [i for i, h in enumerate(header) if h != label and h not in drop]
    if not features:
        raise DataError(f"{p} has no feature columns besides the label; keep at least one numeric column")
    # text columns first (a column problem), then missing cells (a row problem)
    for j in features:
        for r, line in zip(cells, lines):
            v = r[j].strip()
            if v.lower() not in MISSING and not _is_number(v):
                raise DataError(
                    f"{p}: column {header[j]!r} is not numeric (line {line}: {v!r}); "
                    f"drop it with data.drop={header[j]} or encode it as numbers"
                )
    values = np.empty((len(cells), len(features)), dtype=np.float64)
    for k, j in enumerate(features):
        for i, (r, line) in enumerate(zip(cells, lines)):
            v = r[j].strip()
            x = float(v) if v.lower() not in MISSING else math.nan
            if not math.isfinite(x):
                what = "empty or missing" if v.lower() in MISSING else f"{v!r}"
                raise DataError(f"{p}: column {header[j]!r} line {line} is {what}; fill the cell or remove the row")
            values[i, k] = x
    labels = None
    if label is not None:
        li = header.index(label)
        labels = [r[li].strip() for r in cells]
        for v, line in zip(labels, lines):
            if v.lower() in MISSING:
                raise DataError(f"{p}: label column {label!r} line {line} is empty; fill it or remove the row")
    return Table(p.resolve(), tuple(header[j] for j in features), values, label, labels)


def _classes(labels: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Label indices and class names; whole-number labels are sorted by value, others by name."""
    names = sorted(set(labels))
    if all(_is_number(v) and float(v) == int(float(v)) for v in names):
        names = sorted(names, key=lambda v: float(v))
    index = {c: i for i, c in enumerate(names)}
    return np.asarray([index[v] for v in labels], dtype=np.int64), tuple(names)


@dataclass
class TableData(SplitRows):
    """A table split three ways: ``x`` standardised float32 (N, D), ``raw`` as read, ``y`` or None."""

    path: Path
    columns: tuple[str, ...]
    raw: np.ndarray
    x: np.ndarray
    y: np.ndarray | None
    classes: tuple[str, ...]
    label: str | None
    split: Split
    stats: Standardizer
    fingerprint: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.x.shape[1],)

    def require_labels(self, min_classes: int = 2) -> None:
        if self.y is None:
            raise DataError(f"{self.path} has no label column; pass data.label=COLUMN (this model needs labels)")
        super().require_labels(min_classes)

    def record(self) -> dict:
        """What a run stores: the source, the split, the statistics, the content digest (JSON-ready)."""
        return {
            "kind": "table",
            "path": str(self.path),
            "label": self.label,
            "columns": list(self.columns),
            "classes": list(self.classes),
            "fingerprint": self.fingerprint,
            "split": self.split.record(),
            "stats": self.stats.to_dict(),
        }


def open_table(
    path: str | Path,
    label: str | None = None,
    drop: Sequence[str] | str = (),
    delimiter: str | None = None,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
    stats: Standardizer | dict | None = None,
) -> TableData:
    """Read and split a table, and standardise it with statistics of its training rows (or with ``stats``,
    e.g. those a run saved, which must name the same columns)."""
    if isinstance(drop, str):
        drop = [d.strip() for d in drop.split(",") if d.strip()]
    t = read_table(path, label, drop, delimiter)
    y, classes = (None, ()) if t.labels is None else _classes(t.labels)
    split = make_split(len(t.values), y, test_fraction, val_fraction, seed)
    if stats is None:
        st = Standardizer.fit(t.values[split.train], t.columns)
    else:
        st = Standardizer.from_dict(stats) if isinstance(stats, dict) else stats
        if st.columns != t.columns:
            raise DataError(
                f"{t.path} has columns {', '.join(t.columns)} but the saved statistics are for {', '.join(st.columns)}"
            )
    h = hashlib.sha256(json.dumps([list(t.columns), t.label, list(classes)]).encode())
    h.update(np.ascontiguousarray(t.values, dtype="<f8").tobytes())
    if y is not None:
        h.update(y.astype("<i8").tobytes())
    return TableData(t.path, t.columns, t.values, st.apply(t.values), y, classes, label, split, st, h.hexdigest()[:16])


__all__ = ["Standardizer", "Table", "TableData", "read_table", "open_table"]
