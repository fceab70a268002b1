"""reprlab sample RUN -n 64 -o grid.png: draw samples from a generative model."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import positive_int, seed_value


def register(sub) -> None:
    p = sub.add_parser(
        "sample",
        help="draw samples from a generative run as an image grid",
        epilog="example: reprlab sample runs/vae -n 64 -o grid.png",
    )
    p.add_argument("run", help="run directory of a generative model (VAE, GAN)")
    p.add_argument("-n", type=positive_int, default=64, help="number of samples (> 0)")
    p.add_argument(
        "-o",
        "--output",
        help="output PNG (.png is added to a name without a suffix; default samples.png); a model of table rows "
        "writes .csv (in the table's own units) or .npy (default samples.csv)",
    )
    p.add_argument("--interpolate", action="store_true", help="draw a latent walk between random codes instead")
    p.add_argument("--seed", type=seed_value, default=0, help="random seed, 0 .. 2**63-1 (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)


def _table_output(output: str | None) -> Path:
    from ..errors import ConfigError

    p = Path(output or "samples.csv")
    if p.is_dir():
        return p  # left for the output check to refuse by its name
    if not p.suffix:
        p = p.with_name(p.name + ".csv")
    if p.suffix.lower() not in (".csv", ".npy"):
        raise ConfigError(f"the model draws table rows, not images: give -o {p.with_suffix('.csv')} (or .npy)")
    return p


def _write_rows(path: Path, rows, source: dict | None) -> str:
    """Samples of a table model, in the table's units (the run's statistics undone) with its column names."""
    import numpy as np

    from ..io import atomic_write_text, atomic_write_with

    x = rows.detach().cpu().double().numpy().reshape(len(rows), -1)
    stats = (source or {}).get("stats")
    columns = None
    if stats and len(stats.get("mean", ())) == x.shape[1]:
        x = x * np.asarray(stats["std"]) + np.asarray(stats["mean"])
        columns = list(stats["columns"])
    if path.suffix.lower() == ".npy":

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.save(f, x.astype(np.float32))

        atomic_write_with(path, write)
    else:
        columns = columns or [f"x{i}" for i in range(x.shape[1])]
        lines = [",".join(columns)] + [",".join(f"{v:.6g}" for v in r) for r in x]
        atomic_write_text(path, "\n".join(lines) + "\n")
    return "table rows" + (" in the table's units" if stats else "")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..errors import ConfigError
    from ..io import make_parent
    from ..plots import figure_path, image_grid
    from ..registry import get_spec, list_models
    from ..train.checkpoint import load_run, read_run_config
    from ._common import refuse_existing_output

    saved = read_run_config(args.run)
    cls = get_spec(saved["model"]).cls if saved["model"] in list_models() else None
    if cls is not None and not getattr(cls, "can_sample", False):  # said before the output's suffix is judged
        raise ConfigError(f"model {saved['model']!r} cannot sample; sampling works for generative models (VAE, GAN)")
    shape = (saved.get("model_config") or {}).get("input_shape")
    rows = isinstance(shape, list) and len(shape) == 1  # a model of table rows / feature vectors
    if rows:
        out = refuse_existing_output(_table_output(args.output), args.overwrite, "samples file")  # before any work
    else:
        out = refuse_existing_output(figure_path(args.output or "samples.png"), args.overwrite, "image grid")
    model = load_run(args.run)
    if not getattr(model, "can_sample", False):
        raise ConfigError(
            f"model {getattr(model, 'registry_name', '?')!r} cannot sample; "
            "sampling works for generative models (VAE, GAN)"
        )
    if args.interpolate and not hasattr(model, "latent_walk"):
        raise ConfigError("this model does not support --interpolate")
    g = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        imgs = model.latent_walk(args.n, generator=g) if args.interpolate else model.sample(args.n, generator=g)
    make_parent(out)
    if rows:
        what = _write_rows(out, imgs, saved.get("data_source") if isinstance(saved.get("data_source"), dict) else None)
        print(f"wrote {out} ({args.n} {what})")
        return 0
    written = image_grid(imgs, out)
    rgb = " RGB" if imgs.dim() == 4 and imgs.shape[1] == 3 else ""
    print(f"wrote {written} ({args.n}{rgb} images)")
    return 0
