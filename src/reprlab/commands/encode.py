"""reprlab encode RUN -o codes.npy: the codes a trained model gives a dataset split."""

from __future__ import annotations

import argparse

import numpy as np


def register(sub) -> None:
    p = sub.add_parser(
        "encode",
        help="write the codes of a dataset split as a .npy file",
        epilog="example: reprlab encode runs/ae32 --data fashion-mnist --split test -o codes.npy",
    )
    p.add_argument("run", help="run directory of a model with an encoder")
    p.add_argument("-o", "--output", required=True, help="output .npy file (labels go to OUTPUT with .labels.npy)")
    p.add_argument("--data", help="dataset (default: the one the run was trained on)")
    p.add_argument("--data-dir", help="folder with the dataset files")
    p.add_argument("--split", choices=["train", "val", "test"], default="test")
    p.add_argument(
        "--features", action="store_true", help="backbone features (classifiers) instead of the model's code"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..data import load_images
    from ..errors import ConfigError
    from ..train.checkpoint import load_run, read_run_config
    from ._common import refuse_existing_output

    out = refuse_existing_output(args.output, args.overwrite)
    saved = read_run_config(args.run)
    model = load_run(args.run)
    if args.features and not hasattr(model, "forward_features"):
        raise ConfigError(
            f"model {saved['model']!r} has no backbone; --features works for classifiers (reprlab train classifier)"
        )
    if not hasattr(model, "encode"):
        raise ConfigError(f"model {saved['model']!r} has no encoder to take codes from")
    take = model.forward_features if args.features else model.encode
    data = saved.get("data", {})
    d = load_images(
        args.data or data.get("name", "fashion-mnist"),
        args.data_dir or data.get("data_dir"),
        data.get("val_size", 5000),
    )
    x, y = getattr(d, args.split)
    want = tuple(saved["model_config"].get("input_shape", x.shape[1:]))
    if tuple(x.shape[1:]) != want:
        raise ConfigError(f"{d.name} images have shape {tuple(x.shape[1:])} but the model takes {want}")
    with torch.no_grad():
        codes = torch.cat([take(x[i : i + 1024]) for i in range(0, len(x), 1024)])
    np.save(out, codes.numpy())
    labels = str(out)[:-4] + ".labels.npy" if str(out).endswith(".npy") else str(out) + ".labels.npy"
    np.save(labels, y.numpy())
    print(f"wrote {out} {tuple(codes.shape)} and {labels}")
    return 0
