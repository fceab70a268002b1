"""reprlab study NAME|all --preset smoke|quick|full: run the studies, each writing results.json."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ._common import add_data_dir, add_no_progress

MAX_SEEDS = 1000  # each seed trains the study's models again; more than this is a typo


def register(sub) -> None:
    p = sub.add_parser(
        "study",
        help="run a study (or all) and write results.json + figures",
        description="Run the studies that measure each family's textbook claim.",
        epilog="example: reprlab study autoencoder --preset quick --out reports",
    )
    p.add_argument("name", help="study name, or 'all'; 'reprlab study list' lists them")
    p.add_argument(
        "--preset",
        default="quick",
        choices=["smoke", "quick", "full"],
        help="smoke: seconds (tests); quick: the demo; full: published-quality, hours",
    )
    p.add_argument("--out", default="reports", help="folder for the results (one sub-folder per study)")
    add_data_dir(p, "folder with the dataset files")
    p.add_argument("--seeds", type=int, help="number of seeds (default 1 for smoke, 3 otherwise)")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads for the studies that do not fix their own (autoencoder, transfer, gan); "
        "0 = torch's default (all cores). Use 1 on a machine that is busy with other work",
    )
    add_no_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..studies.base import check_out_folder, get_study, run_study, study_names

    names = study_names()
    if args.name not in ("list", "all"):
        get_study(args.name)  # unknown names fail before any work
    if args.name == "list":
        for n in names:
            print(n)
        return 0
    todo = names if args.name == "all" else [args.name]
    if args.seeds is not None and not 1 <= args.seeds <= MAX_SEEDS:
        raise ConfigError(f"--seeds must be from 1 to {MAX_SEEDS}, got {args.seeds}")
    seeds = tuple(range(args.seeds)) if args.seeds else None
    if args.threads < 0:
        raise ConfigError(f"--threads must be >= 0 (0 = torch's default), got {args.threads}")
    check_out_folder(args.out, todo)  # before any study trains anything
    import torch

    threads = args.threads or torch.get_num_threads()
    for n in todo:
        torch.set_num_threads(threads)  # each study starts alike, whatever the one before it set
        t0 = time.perf_counter()
        print(f"study {n} ({args.preset}) ...", file=sys.stderr)
        res = run_study(n, args.preset, Path(args.out), args.data_dir, seeds)
        print(f"study {n}: {res.verdict} ({time.perf_counter() - t0:.0f}s) -> {Path(args.out) / n / 'results.json'}")
    return 0
