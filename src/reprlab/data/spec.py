"""``--data`` names: a built-in dataset, or a path whose form picks the reader.

* a built-in name (``reprlab datasets`` lists them) stays that dataset, even if a file of that name exists
  (write ``./NAME`` or a prefix for the file);
* a directory -> an image folder (:mod:`.folders`); ``.npz``/``.npy`` -> arrays (:mod:`.arrays`);
  ``.csv``/``.tsv`` -> a table (:mod:`.tables`); under the ``g2p`` task any other file -> a lexicon
  (:mod:`.lexicon`);
* the prefixes ``folder:``, ``npz:``, ``csv:`` and ``lexicon:`` force a reader, whatever the path looks like.

Reader options (``--data.size=32`` and the like) travel in :attr:`DataSpec.options`; each reader accepts
its own, and a misspelt one is refused with the list of those that exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import DataError

PREFIXES = {"folder": "folder", "npz": "arrays", "csv": "table", "lexicon": "lexicon"}
SPLIT_OPTIONS = ("test_fraction", "val_fraction", "seed")
OPTIONS = {
    "builtin": (),
    "folder": ("size", "channels", "workers", "progress", *SPLIT_OPTIONS),
    "arrays": SPLIT_OPTIONS,
    "table": ("label", "drop", "delimiter", *SPLIT_OPTIONS),
    "lexicon": ("lowercase", "strip_stress", *SPLIT_OPTIONS),
}
FORMS = (
    "a built-in name (reprlab datasets), a folder of PNG/JPEG images (class sub-folders = labels), "
    "an .npz (x, y) or .npy (x) file, a .csv/.tsv table, or under g2p a lexicon file; "
    "prefix folder:, npz:, csv: or lexicon: to choose the reader"
)


@dataclass(frozen=True)
class DataSpec:
    """Where data comes from: ``kind`` is builtin, folder, arrays, table or lexicon."""

    kind: str
    text: str  # what the user wrote
    name: str | None = None  # a built-in dataset's name
    path: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return self.name if self.kind == "builtin" else f"{self.kind} {self.path}"


def _coerce(kind: str, key: str, value: Any, text: str) -> Any:
    """Option values from the command line arrive as strings; turn them into what the reader takes."""
    if value is None:
        return None
    try:
        if key in ("size", "channels", "workers", "seed"):
            return int(value)
        if key in ("test_fraction", "val_fraction"):
            return float(value)
        if key in ("lowercase", "strip_stress", "progress"):
            if isinstance(value, str):
                low = value.strip().lower()
                if low not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return low in ("true", "1", "yes")
            return bool(value)
        if key == "drop":
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(value)
    except (TypeError, ValueError):
        raise DataError(f"--data.{key}={value!r} is not a valid value for {text}") from None
    return value


def _builtin_names() -> set[str]:
    from . import _DATASETS, _load_plugins

    _load_plugins()
    return set(_DATASETS)


def parse_data_spec(text: str, task: str = "images", options: Mapping[str, Any] | None = None) -> DataSpec:
    """Decide which reader ``text`` names (see the module docstring); nothing is read yet.

    DataError (one line): a path that does not exist, a suffix no reader takes, an unknown prefix
    target, or an option the chosen reader does not take."""
    text = str(text).strip()
    if not text:
        raise DataError(f"--data is empty; give {FORMS}")
    kind = None
    raw = text
    head, sep, tail = text.partition(":")
    if sep and head in PREFIXES and tail:
        kind, raw = PREFIXES[head], tail
    elif sep and head in PREFIXES:
        raise DataError(f"--data {text}: give a path after '{head}:'")
    builtins = _builtin_names()
    if kind is None and text in builtins:
        spec = DataSpec("builtin", text, name=text)
    else:
        path = Path(raw).expanduser()
        if not path.exists():
            if kind is None and "/" not in raw and not path.suffix:
                raise DataError(
                    f"unknown dataset {text!r}: not a built-in ({', '.join(sorted(builtins))}) "
                    f"and no such file or folder; --data takes {FORMS}"
                )
            raise DataError(f"--data {text}: {path} does not exist")
        suffix = path.suffix.lower()
        if kind is None:
            if path.is_dir():
                kind = "folder"
            elif suffix in (".npz", ".npy"):
                kind = "arrays"
            elif task == "g2p":
                kind = "lexicon"
            elif suffix in (".csv", ".tsv"):
                kind = "table"
            else:
                raise DataError(
                    f"--data {text}: no reader for {f'{suffix} files' if suffix else 'files without a suffix'}; "
                    "give a folder, .npz/.npy, .csv/.tsv (a lexicon only under g2p), or a prefix folder:/npz:/csv:"
                )
        if kind == "folder" and not path.is_dir():
            raise DataError(f"--data {text}: {path} is a file, not a folder of images")
        if kind != "folder" and path.is_dir():
            raise DataError(f"--data {text}: {path} is a folder; the {kind} reader takes a file")
        if kind == "arrays" and suffix not in (".npz", ".npy"):
            raise DataError(f"--data {text}: arrays are read from .npz or .npy files, not {suffix or 'no suffix'}")
        spec = DataSpec(kind, text, path=path)
    opts = {}
    for key, value in (options or {}).items():
        if key not in OPTIONS[spec.kind]:
            takes = ", ".join(OPTIONS[spec.kind]) or "no options"
            raise DataError(f"--data.{key} does not apply to {spec.describe()}; it takes {takes}")
        opts[key] = _coerce(spec.kind, key, value, spec.describe())
    return DataSpec(spec.kind, spec.text, spec.name, spec.path, opts)


def open_data(spec: DataSpec, **overrides: Any):
    """Open a path spec with its reader: FolderData, ArrayData, TableData or LexiconData.

    Built-in names are not opened here (their tasks load them, as before)."""
    opts = {**spec.options, **{k: v for k, v in overrides.items() if v is not None}}
    if spec.kind == "folder":
        from .folders import open_folder

        return open_folder(spec.path, **opts)
    if spec.kind == "arrays":
        from .arrays import open_arrays

        return open_arrays(spec.path, **opts)
    if spec.kind == "table":
        from .tables import open_table

        return open_table(spec.path, **opts)
    if spec.kind == "lexicon":
        from .lexicon import open_lexicon

        return open_lexicon(spec.path, **opts)
    raise DataError(f"{spec.text} is a built-in dataset; load it by name")


KIND_PREFIX = {kind: prefix for prefix, kind in PREFIXES.items()}


def _saved_path_text(text: str, saved: Mapping[str, Any] | None) -> str:
    """``text``, or ``PREFIX:PATH`` of the recorded absolute path when ``text`` was relative to a folder the
    command is no longer run from (the run recorded where the data was)."""
    if not saved or not saved.get("path") or saved.get("kind") not in KIND_PREFIX:
        return text
    head, sep, tail = text.partition(":")
    raw = tail if sep and head in PREFIXES else text
    if Path(raw).expanduser().exists() or not Path(saved["path"]).exists():
        return text
    return f"{KIND_PREFIX[saved['kind']]}:{saved['path']}"


def check_unchanged(data: Any, saved: Mapping[str, Any]) -> None:
    """DataError (one line) unless ``data`` (an opened reader) has the content fingerprint and split that a
    run recorded in ``saved`` (its ``data_source``)."""
    lexicon = getattr(data, "lexicon", None)
    where = getattr(data, "root", None) or getattr(data, "path", None) or getattr(lexicon, "path", "the data")
    old, new = saved.get("fingerprint"), getattr(data, "fingerprint", None)
    if old and new != old:
        raise DataError(
            f"{where} changed since the run was trained on it (content fingerprint {new} != recorded {old}); "
            "restore that data, or train a new run on this data"
        )
    split = saved.get("split")
    if isinstance(split, Mapping) and split.get("digest") and data.split.digest() != split["digest"]:
        raise DataError(
            f"{where} no longer gives the split the run recorded (digest {data.split.digest()} != {split['digest']}); "
            "pass the same --data.* split settings, or train a new run"
        )


def open_own_data(
    data: Any,
    task: str = "images",
    saved: Mapping[str, Any] | None = None,
    progress: bool = True,
    kinds: tuple[str, ...] | None = None,
):
    """Open the data a :class:`~reprlab.config.DataConfig` names with its reader, or None for a built-in name.

    ``data.name`` is parsed by :func:`parse_data_spec` under ``task`` with ``data.reader_options()``;
    a folder gives :class:`~.folders.FolderData`, an ``.npz``/``.npy`` :class:`~.arrays.ArrayData`, a table
    :class:`~.tables.TableData`, a lexicon (task ``g2p``) :class:`~.lexicon.LexiconData`. Each has
    ``record()``, ``fingerprint``, ``split`` and ``batches(part, batch_size, shuffle, seed)``.

    ``saved``: the ``data_source`` a run recorded (``reader.record()``). Then a table is standardised with the
    recorded statistics (never refit), a relative path that no longer resolves falls back to the recorded
    absolute one, and data whose fingerprint or split differs from the record is a DataError (one line).
    ``progress``: show the bar of a folder's first decode. ``kinds``: the forms the caller takes (e.g.
    ``("folder",)``); another form is a DataError before anything is read."""
    text = _saved_path_text(str(data.name), saved)
    spec = parse_data_spec(text, task, data.reader_options())
    if spec.kind == "builtin":
        return None
    if kinds is not None and spec.kind not in kinds:
        if spec.kind == "lexicon":
            raise DataError(
                f"--data {spec.text} is a lexicon; lexicons train the g2p models (g2p_transformer, g2p_lstm)"
            )
        raise DataError(f"--data {spec.text} is {spec.kind} data; this command takes {', '.join(kinds)} data")
    overrides: dict[str, Any] = {}
    if spec.kind == "folder":
        overrides["progress"] = progress
    if spec.kind == "table" and saved and saved.get("stats"):
        overrides["stats"] = dict(saved["stats"])
    if spec.kind == "lexicon" and saved and saved.get("vocab"):
        overrides["vocab"] = dict(saved["vocab"])
    opened = open_data(spec, **overrides)
    if saved:
        check_unchanged(opened, saved)
    return opened


__all__ = [
    "DataSpec",
    "parse_data_spec",
    "open_data",
    "open_own_data",
    "check_unchanged",
    "FORMS",
    "PREFIXES",
    "OPTIONS",
]
