"""reprlab encode RUN -o codes.npy: the codes a trained model gives a dataset split."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ._common import add_data_dir, add_no_progress


def register(sub) -> None:
    p = sub.add_parser(
        "encode",
        help="write the codes of a dataset split as a .npy file",
        epilog="example: reprlab encode runs/ae32 --data fashion-mnist --split test -o codes.npy",
    )
    p.add_argument("run", help="run directory of a model with an encoder")
    p.add_argument("-o", "--output", required=True, help="output .npy file (labels go to OUTPUT with .labels.npy)")
    p.add_argument(
        "--data",
        help="dataset: a built-in name, a folder, .npz/.npy or .csv/.tsv (default: the one the run was trained on, "
        "refused if it changed; a table is standardised with the run's statistics)",
    )
    add_data_dir(p, "folder with the dataset files")
    p.add_argument("--split", choices=["train", "val", "test"], default="test")
    p.add_argument(
        "--features", action="store_true", help="backbone features (classifiers) instead of the model's code"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    add_no_progress(p, "one line per finished stage instead of progress bars (building a data cache)")
    p.set_defaults(func=run)


def output_paths(output: str | Path) -> tuple[Path, Path]:
    """(codes file, labels file) for ``-o OUTPUT``: ``codes`` and ``codes.npy`` both give ``codes.npy`` and
    ``codes.labels.npy``, the files numpy would write."""
    from ..errors import ConfigError

    p = Path(output)
    if not p.name or p.name in (".", "..") or p.is_dir():
        raise ConfigError(f"-o {output!r} is a folder; give a file name such as codes.npy")
    if p.suffix != ".npy":
        p = p.with_name(p.name + ".npy")
    return p, p.with_name(p.name[: -len(".npy")] + ".labels.npy")


def _save_npy(path: Path, array: np.ndarray) -> None:
    from ..io import atomic_write_with, make_parent

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save adds no suffix of its own
            np.save(f, array)

    make_parent(path)
    atomic_write_with(path, write)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..data import load_images, parse_data_spec
    from ..errors import ConfigError
    from ..train.checkpoint import load_run, read_run_config
    from ._common import python_data_error, refuse_existing_output, saved_sections

    # both outputs are checked before anything is loaded, and nothing is created until they are written
    out, labels = output_paths(args.output)
    refuse_existing_output(out, args.overwrite, "codes")
    refuse_existing_output(labels, args.overwrite, "labels")
    saved = read_run_config(args.run)
    sections = saved_sections(saved, Path(args.run) / "config.json")
    model = load_run(args.run)
    if args.features and not hasattr(model, "forward_features"):
        raise ConfigError(
            f"model {saved['model']!r} has no backbone; --features works for classifiers (reprlab train classifier)"
        )
    if not hasattr(model, "encode"):
        raise ConfigError(f"model {saved['model']!r} has no encoder to take codes from")
    take = model.forward_features if args.features else model.encode
    data = sections["data"]
    source = saved.get("data_source") if isinstance(saved.get("data_source"), dict) else None
    if not args.data and source and source.get("kind") == "python":
        raise python_data_error(args.run)
    name = args.data or data.get("name", "fashion-mnist")
    if parse_data_spec(name, "images").kind != "builtin":
        return _encode_own(args, model, take, saved, out, labels)
    d = load_images(
        name,
        args.data_dir or data.get("data_dir"),
        data.get("val_size", 5000),
    )
    x, y = getattr(d, args.split)
    want = tuple(sections["model"].get("input_shape", x.shape[1:]))
    if tuple(x.shape[1:]) != want:
        raise ConfigError(f"{d.name} images have shape {tuple(x.shape[1:])} but the model takes {want}")
    with torch.no_grad():
        codes = torch.cat([take(x[i : i + 1024]) for i in range(0, len(x), 1024)])
    _save_npy(out, codes.numpy())
    _save_npy(labels, y.numpy())
    print(f"wrote {out} {tuple(codes.shape)} and {labels}")
    return 0


def _encode_own(args: argparse.Namespace, model, take, saved: dict, out: Path, labels: Path) -> int:
    """Codes of one split part of your own data (a folder, arrays or a table), in the data's order."""
    import torch

    from ..errors import ConfigError
    from ._common import check_input_shape, run_task

    task = run_task(args.run, saved, args.data)
    check_input_shape(model, task, args.data or saved["data"].get("name", "the run's data"))
    reader = task.extras["reader"]
    part = reader.split.part(args.split)
    if len(part) == 0:
        raise ConfigError(f"the {args.split} part of {reader.record()['path']} is empty; choose another --split")
    codes, ys = [], []
    with torch.no_grad():
        for b in reader.batches(args.split, 1024, shuffle=False).epoch(0):
            codes.append(take(b["x"]))
            if "y" in b:
                ys.append(b["y"])
    codes_t = torch.cat(codes)
    _save_npy(out, codes_t.numpy())
    if ys:
        _save_npy(labels, torch.cat(ys).numpy())
        print(f"wrote {out} {tuple(codes_t.shape)} and {labels}")
    else:
        print(f"wrote {out} {tuple(codes_t.shape)} (the data has no labels)")
    return 0
