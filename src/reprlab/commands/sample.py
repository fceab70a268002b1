"""reprlab sample RUN -n 64 -o grid.png: draw samples from a generative model."""

from __future__ import annotations

import argparse

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
        "-o", "--output", default="samples.png", help="output PNG (.png is added to a name without a suffix)"
    )
    p.add_argument("--interpolate", action="store_true", help="draw a latent walk between random codes instead")
    p.add_argument("--seed", type=seed_value, default=0, help="random seed, 0 .. 2**63-1 (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..errors import ConfigError
    from ..io import make_parent
    from ..plots import figure_path, image_grid
    from ..train.checkpoint import load_run
    from ._common import refuse_existing_output

    out = refuse_existing_output(figure_path(args.output), args.overwrite, "image grid")  # before any work
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
    written = image_grid(imgs, out)
    print(f"wrote {written} ({args.n} images)")
    return 0
