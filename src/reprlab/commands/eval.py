"""reprlab eval RUN: test-set metrics of a trained run (and a reconstructions figure for autoencoders)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._common import add_data_dir, add_no_progress, g2p_ensemble, load_run_task  # noqa: F401 - load_run_task: its old home


def register(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a run on its dataset's test split",
        description="Evaluate a trained run on the test split of the dataset it was trained on.",
    )
    p.add_argument("run", help="run directory")
    p.add_argument(
        "--data",
        help="evaluate on this data instead (a built-in name, a folder, .npz/.npy or .csv/.tsv; a table is "
        "standardised with the run's statistics); default: the run's own data, refused if it changed",
    )
    add_data_dir(p, "folder with the dataset files, if not where training found them")
    p.add_argument(
        "--nll-samples", type=int, default=0, help="importance samples for the IWAE test NLL (VAEs), e.g. 5000"
    )
    p.add_argument(
        "--beam",
        type=int,
        default=1,
        help="beam width for G2P decoding (default 1: greedy); results go to RUN/eval-beamN.json",
    )
    p.add_argument(
        "--ensemble",
        nargs="+",
        metavar="RUN2",
        help="G2P: decode with RUN and these runs together, averaging their next-phoneme log-probabilities; "
        "results go to RUN/eval-ensembleN[-beamK].json",
    )
    p.add_argument(
        "--figure",
        help="write the reconstructions figure here (autoencoders; default RUN/reconstructions.png, replaced by "
        "each eval); an existing file is refused without --overwrite",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --figure file")
    add_no_progress(p, "one line per finished stage instead of progress bars (IWAE NLL, decoding)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..io import atomic_write_text, make_parent
    from ..plots import figure_path
    from ..train.engine import evaluate_model
    from ._common import refuse_existing_output

    if args.nll_samples < 0:
        raise ConfigError(f"--nll-samples must be >= 0, got {args.nll_samples}")
    if args.beam < 1:
        raise ConfigError(f"--beam must be >= 1, got {args.beam}")
    # the run's own figure is replaced by each eval; a file the user names is theirs, checked before any work
    figure = refuse_existing_output(figure_path(args.figure), args.overwrite, "figure") if args.figure else None
    model, task, saved = load_run_task(args.run, args.data, args.data_dir)
    images = len(tuple(getattr(model.config, "input_shape", (1, 28, 28)))) == 3
    if figure is not None and not hasattr(model, "reconstruct"):
        raise ConfigError(f"model {saved['model']!r} does not reconstruct; --figure works for autoencoders")
    if figure is not None and not images:
        raise ConfigError(f"{args.run} was trained on feature vectors, not images; --figure draws images")
    if task.test is None:
        raise ConfigError(
            f"the data of {args.run} has no test part (data.test_fraction=0); "
            "pass --data PATH to evaluate on other data"
        )
    if args.ensemble:
        model = g2p_ensemble(model, args.run, args.ensemble)
    if args.beam > 1 and not hasattr(model, "beam"):
        raise ConfigError(f"model {saved['model']!r} does not decode sequences; --beam works for G2P models")
    if args.ensemble:  # an ensemble only decodes: it has no loss of its own to evaluate
        metrics = {"test/ensemble": [str(args.run), *map(str, args.ensemble)]}
    else:
        metrics = {f"test/{k}": v for k, v in evaluate_model(model, task.test).items()}
    if hasattr(model, "test_metrics"):
        opts = {"nll_samples": args.nll_samples} if args.nll_samples else {}
        if args.beam > 1:
            opts["beam"] = args.beam
            metrics["test/beam"] = args.beam
        metrics.update({f"test/{k}": v for k, v in model.test_metrics(task.test, **opts).items()})
    elif args.nll_samples:
        raise ConfigError(f"model {saved['model']!r} has no likelihood; --nll-samples works for VAEs")
    if hasattr(model, "reconstruct") and images:
        from ..plots import reconstruction_grid

        fig = figure or Path(args.run) / "reconstructions.png"
        x = next(iter(task.test.epoch(0)))["x"][:16]
        make_parent(fig)
        metrics["figure"] = str(reconstruction_grid(x, model.reconstruct(x).detach(), fig))
    # a beam or ensemble evaluation gets its own file and keeps the plain greedy results
    suffix = (f"-ensemble{len(args.ensemble) + 1}" if args.ensemble else "") + (
        f"-beam{args.beam}" if args.beam > 1 else ""
    )
    name = f"eval{suffix}.json"
    atomic_write_text(Path(args.run) / name, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0
