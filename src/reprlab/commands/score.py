"""reprlab score RUN --data PATH -o scores.csv: per-example anomaly scores of a trained run."""

from __future__ import annotations

import argparse

from ._common import add_data_dir, add_no_progress, positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "score",
        help="per-example anomaly scores of an autoencoder, VAE or RBM run, as a CSV",
        description=(
            "Score every row of DATA with a trained run: the reconstruction error for autoencoders, the negative "
            "ELBO for VAEs (the IWAE bound with --samples K), the free energy for an RBM. Higher means less like "
            "the training data. The data is read with the run's settings (image size and channels; a table's "
            "label and dropped columns) and a table is standardised with the statistics saved from the run's "
            "training rows, never refitted. Writes index[,file][,label],score."
        ),
        epilog="example: reprlab score runs/ae-sensors --data new_readings.csv -o scores.csv",
    )
    p.add_argument("run", help="run directory of ae_mlp, ae_conv, sae_mlp, dae_mlp, dense_ae_layer, a VAE or rbm")
    p.add_argument(
        "--data",
        help="data to score: an image folder, .npz/.npy, .csv/.tsv, or a built-in name (its test split); "
        "default: the data the run was trained on",
    )
    add_data_dir(p, "folder with a built-in dataset's files")
    p.add_argument("-o", "--output", default="scores.csv", help="output CSV (default scores.csv)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument(
        "--samples", type=positive_int, default=1, help="VAEs: importance samples K for the IWAE bound (default 1)"
    )
    add_no_progress(p, "hide the progress bar")
    p.set_defaults(func=run, accepts_overrides=True)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    import json

    from ..config import parse_overrides
    from ..errors import ConfigError
    from ..recipes.scoring import score_run
    from ..train.checkpoint import read_run_config
    from ._common import refuse_existing_output

    overrides = parse_overrides(extra)
    bad = sorted(set(overrides) - {"data"})
    if bad:
        raise ConfigError(f"score takes --data.KEY=VALUE reader settings only, not --{bad[0]}.…")
    out = refuse_existing_output(args.output, args.overwrite, "scores CSV")  # before any work
    data = args.data
    if data is None:
        data = (read_run_config(args.run).get("data") or {}).get("name")
        if not data:
            raise ConfigError(f"{args.run} does not name its data; pass --data PATH")
    summary = score_run(
        args.run, data, out, overrides.get("data", {}), args.samples, args.data_dir, progress=not args.no_progress
    )
    print(
        f"wrote {out} ({summary['rows']} rows of {summary['data']}; score: {summary['score']}, higher = more unusual)"
    )
    shown = {"mean": round(summary["mean"], 6), "quartiles": [round(q, 6) for q in summary["quartiles"]]}
    if "mean_by_label" in summary:
        shown["mean_by_label"] = {k: round(v, 6) for k, v in summary["mean_by_label"].items()}
    print(json.dumps(shown, ensure_ascii=False))
    return 0
