"""Choose the G2P Transformer's width and ensemble size on the CMUdict dev split, never on the test list (issue 19).

docs/transformer.md ("Target status") chose, for the 2-hour CPU target, (1) two full-length models decoded
together over those two plus two half-length ones, and (2) d = 128 over d = 192 at equal training time, both by
test WER. This script makes the same two choices on the dev split (every 21st training-dictionary word,
``standard_split().dev``), with ``StudyContext.choose``, and reads the test list (through ``ctx.read_test``)
only afterwards, to report the chosen candidates. In order:

1. width: 3+3-layer Transformers, d = 128 (feed-forward 512) against d = 192 (feed-forward 768), seed 0, the
   same CPU-second budget each; scored by greedy dev WER (as the docs' width runs were);
2. ensemble size, at the chosen width: seed 0 alone, seeds 0+1 (both the full budget), and 0+1+2+3 where seeds
   2 and 3 get 9/19 of the budget (the docs' 19- and 9-epoch runs fit the same 2 hours); scored by beam-5 dev
   WER of the members decoded together (``G2PEnsemble``, equal weights), as the docs' ensembles were.

The budget is far shorter than the docs' 2 hours (one CPU thread, constant learning rate, the `transformer`
study's short-budget recipe: Adam 2e-3, batch 64, gradient clip 1), so it re-makes the choices at a small scale;
it does not re-measure the 2-hour numbers.

    PYTHONPATH=src python experiments/g2p_choices.py                 # ~5 CPU-minutes on one thread
Writes experiments/out/g2p_choices.json (every dev score, the choices, the chosen candidates' test WER/PER).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from reprlab.data.g2p import G2PBatches, standard_split
from reprlab.metrics.edit import wer_per
from reprlab.models.g2p_ensemble import G2PEnsemble
from reprlab.studies.base import StudyContext
from reprlab.studies.transformer import _train, count_params

WIDTHS = {"d=128": dict(d_model=128, ff=512), "d=192": dict(d_model=192, ff=768)}
LAYERS = dict(n_heads=4, enc_layers=3, dec_layers=3)
SHORT = 9 / 19  # seeds 2 and 3: the docs' 9-epoch runs beside the 19-epoch ones
BATCH, LR, BEAM = 64, 2e-3, 5
DEV = "validation (CMUdict dev split: every 21st training-dictionary word)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=60.0, help="CPU-seconds of training per full-length model")
    ap.add_argument("--dev-every", type=int, default=5, help="score every n-th dev word")
    ap.add_argument("--test-every", type=int, default=6, help="report on every n-th test word")
    ap.add_argument("--out", default=str(Path(__file__).parent / "out"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = StudyContext("g2p_choices", "script", out, progress=False)
    sp = standard_split()
    train = G2PBatches(sp.train, BATCH, seed=0)
    dev_words = list(sp.dev)[:: args.dev_every]
    dev_refs = [sp.dev[w] for w in dev_words]
    split = f"{DEV}, every {args.dev_every}th: {len(dev_words):,} words"
    log: dict = {"budget_cpu_s": args.budget, "recipe": dict(batch=BATCH, lr=LR, **LAYERS), "runs": {}}

    def trained(width: str, seed: int, seconds: float):
        train.seed = seed  # the batch order follows the seed
        model, clock = _train("g2p_transformer", {**WIDTHS[width], **LAYERS}, train, seconds, seed, BATCH, LR)
        log["runs"][f"{width} seed {seed}"] = dict(
            params=count_params(model),
            train_cpu_s=clock.elapsed,
            epochs=clock.tokens / train.target_tokens(),
        )
        print(f"{width} seed {seed}: {clock.elapsed:.0f} CPU-s, {clock.tokens / train.target_tokens():.2f} epochs")
        return model

    def dev_wer(model, beam: int) -> float:
        return 100 * wer_per(model.predict(dev_words, beam=beam), dev_refs)["wer"]

    # 1. width, at equal training time, by greedy dev WER
    models = {w: trained(w, 0, args.budget) for w in WIDTHS}
    width = ctx.choose(
        "G2P Transformer width (3+3 layers, equal CPU time)",
        {w: dev_wer(m, 1) for w, m in models.items()},
        split=split,
        by="dev WER % (greedy), lower is better",
        lower_is_better=True,
    )
    # 2. ensemble size at that width, by beam-5 dev WER of the members decoded together
    members = [models[width], trained(width, 1, args.budget)]
    members += [trained(width, s, SHORT * args.budget) for s in (2, 3)]
    ensembles = {"1 model": members[:1], "2 models": members[:2], "4 models (2 full + 2 at 9/19)": members}
    size = ctx.choose(
        "G2P ensemble size (members decoded together)",
        {k: dev_wer(G2PEnsemble(ms).eval(), BEAM) for k, ms in ensembles.items()},
        split=split,
        by=f"dev WER % (beam {BEAM}), lower is better",
        lower_is_better=True,
    )

    # every choice is made: read the test list once, to report the chosen candidates
    test = ctx.read_test(sp)
    test_words = list(test)[:: args.test_every]
    refs = [test[w] for w in test_words]
    report = {
        f"width {width}, one model, greedy": wer_per(models[width].predict(test_words), refs),
        f"{size}, beam {BEAM}": wer_per(G2PEnsemble(ensembles[size]).eval().predict(test_words, beam=BEAM), refs),
    }
    log["choices"] = [c.__dict__ for c in ctx.choices]
    log["test"] = {
        "words": len(test_words),
        "every": args.test_every,
        **{k: {m: 100 * v for m, v in r.items()} for k, r in report.items()},
    }
    log["wall_s"] = time.perf_counter() - t_start
    (out / "g2p_choices.json").write_text(json.dumps(log, indent=2) + "\n")
    for c in ctx.choices:
        print(f"{c.what}: {c.chosen}  ({', '.join(f'{k} {v:.2f}' for k, v in c.scores.items())}; {c.by})")
    for k, r in log["test"].items():
        if isinstance(r, dict):
            print(f"test ({len(test_words):,} words): {k}: WER {r['wer']:.2f}% PER {r['per']:.2f}%")
    print(f"{log['wall_s']:.0f} s wall")


if __name__ == "__main__":
    main()
