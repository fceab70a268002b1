"""Training throughput of the G2P Transformer against the LSTM+attention baseline at matched size.

    python benchmarks/bench_g2p_speed.py [--sizes 64,128,256] [--threads 1,2] [--steps 30] [--repeats 3] [--compile]

For each model width d (Transformer: 3+3 layers, 4 heads, feed-forward 4d; 2+2 layers at d = 64 as in
the study's quick preset), the LSTM's hidden size is bisected until its parameter count matches the
Transformer's (`reprlab.studies.transformer.matched_lstm`). Both models then train on the same bucketed
CMUdict batches (batch 128) with the same optimizer and gradient clipping, through each model's own
`train_step`. Runs alternate between the two models; each run times `--steps` steps after a warm-up
step, and the table reports medians of phoneme tokens per second and their ratio, measured in the same
run, at each thread count. With `--compile` the Transformer's loss is also run through
`torch.compile(dynamic=True)` (inductor; the batches' lengths vary), warmed up on 20 batches so that
compilation is not timed, and its tokens/s are reported against eager mode.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table  # noqa: E402

from reprlab.config import TrainerConfig  # noqa: E402
from reprlab.data.g2p import PAD, G2PBatches, standard_split  # noqa: E402
from reprlab.registry import create_model  # noqa: E402
from reprlab.studies.transformer import count_params, matched_lstm  # noqa: E402
from reprlab.train.engine import make_optimizer  # noqa: E402


def configs(d: int) -> tuple[dict, dict]:
    layers = 2 if d <= 64 else 3
    t_cfg = dict(d_model=d, ff=4 * d, n_heads=4, enc_layers=layers, dec_layers=layers)
    n_t = count_params(create_model("g2p_transformer", **t_cfg))
    return t_cfg, matched_lstm(n_t, d, layers)


def tokens_per_second(name: str, cfg: dict, batches: list[dict], compiled: bool = False) -> float:
    torch.manual_seed(0)
    model = create_model(name, **cfg).train()
    if compiled:
        model.loss = torch.compile(model.loss, dynamic=True)
    (opt,) = [make_optimizer(g, TrainerConfig(lr=1e-3)) for g in model.optimizer_groups()]

    def step(batch):  # the engine's step for a loss-only model: zero, backward, clip to 1, Adam
        opt.zero_grad(set_to_none=True)
        model.loss(batch)["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    warm = 20 if compiled else 1
    for b in batches[:warm]:  # warm-up: allocator, optimizer state (and compilation)
        step(b)
    tokens = sum(int((b["tgt"][:, 1:] != PAD).sum()) for b in batches[warm:])
    t = time.perf_counter()
    for b in batches[warm:]:
        step(b)
    return tokens / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,128,256", help="model widths d, comma-separated")
    ap.add_argument("--threads", default="1,2", help="torch thread counts, comma-separated")
    ap.add_argument("--steps", type=int, default=30, help="timed training steps per run")
    ap.add_argument("--repeats", type=int, default=3, help="runs per model (medians are reported)")
    ap.add_argument(
        "--compile",
        action="store_true",
        help="also time the Transformer under torch.compile (minutes of compilation per size)",
    )
    args = ap.parse_args()

    train = G2PBatches(standard_split().train, 128, seed=0)
    # the same spread of word lengths for both models: the first steps+1 batches of a shuffled epoch
    batches = [b for _, b in zip(range(args.steps + 20), train.epoch(0))]
    rows, compiled_rows = [], []
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for d in (int(s) for s in args.sizes.split(",")):
            t_cfg, l_cfg = configs(d)
            runs = {"t": [], "l": [], "c": []}
            for _ in range(args.repeats):  # alternate, so that load changes hit both models alike
                runs["t"].append(tokens_per_second("g2p_transformer", t_cfg, batches[-args.steps - 1 :]))
                runs["l"].append(tokens_per_second("g2p_lstm", l_cfg, batches[-args.steps - 1 :]))
                if args.compile:
                    runs["c"].append(tokens_per_second("g2p_transformer", t_cfg, batches, compiled=True))
            tf, ls = statistics.median(runs["t"]), statistics.median(runs["l"])
            n_t = count_params(create_model("g2p_transformer", **t_cfg))
            n_l = count_params(create_model("g2p_lstm", **l_cfg))
            rows.append(
                [
                    threads,
                    f"{t_cfg['enc_layers']}+{t_cfg['dec_layers']} x {d}",
                    f"{n_t:,} / {n_l:,} (LSTM hidden {l_cfg['hidden']})",
                    f"{tf:,.0f}",
                    f"{ls:,.0f}",
                    f"**{tf / ls:.2f}x**",
                ]
            )
            print(
                f"threads={threads} d={d}: transformer {tf:,.0f} tok/s, lstm {ls:,.0f} tok/s, ratio {tf / ls:.2f}",
                flush=True,
            )
            if args.compile:
                tc = statistics.median(runs["c"])
                compiled_rows.append([threads, d, f"{tf:,.0f}", f"{tc:,.0f}", f"**{tc / tf:.2f}x**", f"{tc / ls:.2f}x"])
    print_table(
        f"G2P training throughput, phoneme tokens/s (batch 128, {args.steps} steps per run, median of {args.repeats})",
        ["threads", "Transformer", "parameters (Transformer / LSTM)", "Transformer tok/s", "LSTM tok/s", "ratio"],
        rows,
    )
    if compiled_rows:
        print_table(
            "torch.compile(dynamic=True) on the Transformer's loss, after 20 warm-up batches",
            ["threads", "d", "eager tok/s", "compiled tok/s", "compiled / eager", "compiled / LSTM"],
            compiled_rows,
        )


if __name__ == "__main__":
    main()
