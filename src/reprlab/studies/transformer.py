"""Study `transformer`: Transformer against LSTM+attention on CMUdict grapheme-to-phoneme.

Both models get the same parameter count (the LSTM's hidden size is searched to match) and
the same wall-clock training budget. The study measures test WER/PER (mean ± std over seeds),
training throughput in phoneme tokens/s and the time one epoch takes, WER by word length (the
long-dependency claim), and draws attention heat maps.

Selection rule (DESIGN.md section 8): each model's decoding (greedy or beam) is chosen by its WER on
the CMUdict dev split (every 21st training-dictionary word); the test list is read through
``ctx.read_test`` only after that choice, to report.
"""

from __future__ import annotations

import time

import torch

from ..config import TrainerConfig
from ..data.g2p import G2PBatches, encode_prons, encode_words, standard_split
from ..metrics.edit import wer_per
from ..registry import create_model
from ..recipes.training import fit, seeded_model
from ..train.engine import Callback
from .base import Figure, Finding, StudyContext, StudyResult, Table, fmt, mean_std, register_study

PRESETS = {
    # budgets are CPU-seconds of training per model (one thread); batch and lr give many small steps when short
    # test_every / dev_every: score every n-th word of the test list / of the dev split (1: all of it)
    "smoke": dict(
        d_model=32, ff=64, layers=1, budget=3.0, train_limit=2000, test_every=60, dev_every=27, seeds=1, batch=64,
        lr=2e-3,
    ),
    "quick": dict(
        d_model=64, ff=256, layers=2, budget=25.0, train_limit=0, test_every=6, dev_every=6, seeds=2, batch=64,
        lr=2e-3,
    ),
    "full": dict(
        d_model=256, ff=1024, layers=3, budget=2400.0, train_limit=0, test_every=1, dev_every=1, seeds=3, batch=128,
        lr=1e-3,
    ),
}  # fmt: skip
DECODINGS = {"greedy": 1, "beam 5": 5}  # each model's decoding is chosen among these by its dev WER
DEV_SPLIT = "validation (CMUdict dev split: every 21st training-dictionary word)"
LENGTH_BINS = [("<= 6 letters", 0, 6), ("7-9 letters", 7, 9), (">= 10 letters", 10, 99)]
ANCHORS = [
    ["Yao & Zweig 2015, encoder-decoder LSTM", "28.61", "7.63"],
    ["Yao & Zweig 2015, bidirectional LSTM", "23.55", "5.45"],
    ["Sequitur (joint-sequence)", "24.53", "5.88"],
    ["cmusphinx g2p-seq2seq, 3x256 Transformer (own split)", "20.6", "n/a"],
]


class TimeBudget(Callback):
    """Stops training once ``seconds`` of this process's CPU time have passed; counts the phoneme tokens trained.

    CPU time rather than wall time: on a shared machine the other processes' load would otherwise
    decide how much training each model gets. With one thread on an idle core the two are equal.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = 0.0
        self.tokens = self.batches = 0
        self.elapsed = 0.0

    def on_fit_start(self, trainer, model) -> None:
        self.start = time.process_time()

    def on_step_end(self, trainer, model, step, out, batches) -> None:
        self.elapsed = time.process_time() - self.start
        self.tokens += sum(int((b["tgt"][:, 1:] != 0).sum()) for b in batches)
        self.batches += len(batches)

    def should_stop(self, trainer, model, step) -> bool:
        return self.elapsed >= self.seconds


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def matched_lstm(target: int, emb: int, layers: int) -> dict:
    """The LSTM config (emb, layers fixed) whose parameter count is closest to ``target``."""
    lo, hi = 8, 4096
    while hi - lo > 2:  # the count grows with the hidden size: bisect over even sizes
        mid = (lo + hi) // 4 * 2
        if count_params(create_model("g2p_lstm", emb=emb, hidden=mid, layers=layers)) < target:
            lo = mid
        else:
            hi = mid
    best = min(
        (lo, hi), key=lambda h: abs(count_params(create_model("g2p_lstm", emb=emb, hidden=h, layers=layers)) - target)
    )
    return dict(emb=emb, hidden=best, layers=layers)


def _train(name: str, cfg: dict, train: G2PBatches, seconds: float, seed: int, batch: int, lr: float = 1e-3):
    model = seeded_model(name, seed, **cfg)
    budget = TimeBudget(seconds)
    tc = TrainerConfig(
        epochs=200, batch_size=batch, lr=lr, grad_clip=1.0, seed=seed, progress=False, tensorboard=False, threads=1
    )
    fit(model, train, tc, callbacks=[budget], description=f"{name} seed={seed}")
    return model.eval(), budget


def _heatmaps(models: dict, words: list[str], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plots import save_figure

    fig, axes = plt.subplots(len(models), len(words), figsize=(3.2 * len(words), 2.8 * len(models)), squeeze=False)
    for r, (label, m) in enumerate(models.items()):
        for c, w in enumerate(words):
            pron = m.predict([w])[0]
            src = encode_words([w])
            tgt_in = encode_prons([pron])[:, :-1]  # BOS + predicted phonemes
            att = m.cross_attention(src, tgt_in)[0].numpy()  # (T, S)
            ax = axes[r, c]
            ax.imshow(att, aspect="auto", cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks(range(len(w)), list(w))
            ax.set_yticks(range(len(pron) + 1), list(pron) + ["</s>"], fontsize=7)
            ax.set_title(f"{label}: {w}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def _bucket(words: list[str], lo: int, hi: int) -> list[int]:
    return [i for i, w in enumerate(words) if lo <= len(w) <= hi]


@register_study("transformer", "Transformer vs LSTM+attention on grapheme-to-phoneme", order=70)
def run(ctx: StudyContext) -> StudyResult:
    threads = torch.get_num_threads()
    try:
        return _run(ctx)
    finally:
        torch.set_num_threads(threads)  # training runs on one thread; give the caller its setting back


def _run(ctx: StudyContext) -> StudyResult:
    p = PRESETS[ctx.preset]
    sp = standard_split()  # its test list stays unread until every choice is made (ctx.read_test below)
    train = G2PBatches(sp.train, p["batch"], seed=0, limit=p["train_limit"])
    dev_words = list(sp.dev)[:: p["dev_every"]]
    dev_refs = [sp.dev[w] for w in dev_words]
    res = StudyResult(
        "transformer",
        "Transformer vs LSTM+attention on grapheme-to-phoneme",
        "Transformers train faster than recurrent models (their layers run in parallel over positions) "
        "and handle long dependencies better.",
        ctx.preset,
        f"reprlab study transformer --preset {ctx.preset}",
    )
    layers = p["layers"]
    t_cfg = dict(d_model=p["d_model"], ff=p["ff"], n_heads=4, enc_layers=layers, dec_layers=layers)
    n_t = count_params(create_model("g2p_transformer", **t_cfg))
    l_cfg = matched_lstm(n_t, p["d_model"], layers)
    n_l = count_params(create_model("g2p_lstm", **l_cfg))
    seeds = list(ctx.seeds)[: p["seeds"]]
    specs = {"Transformer": ("g2p_transformer", t_cfg, n_t), "LSTM+attention": ("g2p_lstm", l_cfg, n_l)}

    runs: dict[str, list[dict]] = {k: [] for k in specs}
    models: dict[str, list] = {k: [] for k in specs}
    for seed in seeds:
        train.seed = seed  # the batch order follows the seed (both models of one seed see the same order)
        for label, (name, cfg, _) in specs.items():
            model, src = _train(name, cfg, train, p["budget"], seed, p["batch"], p["lr"])
            dev_wer = {d: wer_per(model.predict(dev_words, beam=k), dev_refs)["wer"] for d, k in DECODINGS.items()}
            tok_s = src.tokens / max(src.elapsed, 1e-9)
            runs[label].append(
                dict(
                    seed=seed,
                    dev_wer=dev_wer,
                    tokens_per_s=tok_s,
                    train_s=src.elapsed,
                    epoch_s=train.target_tokens() / tok_s,
                    epochs=src.tokens / train.target_tokens(),
                )
            )
            models[label].append(model)

    # every choice on the dev split: each model's decoding, by its dev WER averaged over the seeds
    decoding = {
        label: ctx.choose(
            f"{label}: decoding",
            {d: 100 * mean_std([r["dev_wer"][d] for r in runs[label]])[0] for d in DECODINGS},
            split=f"{DEV_SPLIT}, {len(dev_words):,} words",
            by="dev WER %, lower is better",
            lower_is_better=True,
        )
        for label in specs
    }

    # then the test list, read once, to report
    test = ctx.read_test(sp)
    test_words = list(test)[:: p["test_every"]]
    refs = [test[w] for w in test_words]
    for label in specs:
        for r, model in zip(runs[label], models[label]):
            t0 = time.process_time()
            preds = model.predict(test_words, beam=DECODINGS[decoding[label]])
            decode_s = time.process_time() - t0
            r.update(wer_per(preds, refs))
            r["words_per_s_decode"] = len(test_words) / max(decode_s, 1e-9)
            r["by_len"] = {
                b: wer_per([preds[i] for i in idx], [refs[i] for i in idx])["wer"]
                for b, lo, hi in LENGTH_BINS
                if (idx := _bucket(test_words, lo, hi))
            }
    last_models = {label: ms[-1] for label, ms in models.items()}

    def col(label, key, scale=1.0):
        return [r[key] * scale for r in runs[label]]

    subset = "" if p["test_every"] == 1 else f" (every {p['test_every']}th)"
    rows = []
    for label, (_, cfg, n) in specs.items():
        rows.append(
            [
                label,
                f"{n:,}",
                decoding[label],
                fmt([100 * r["dev_wer"][decoding[label]] for r in runs[label]], 3),
                fmt(col(label, "wer", 100), 3),
                fmt(col(label, "per", 100), 3),
                f"{mean_std(col(label, 'tokens_per_s'))[0]:,.0f}",
                f"{mean_std(col(label, 'epoch_s'))[0]:,.0f}",
                f"{mean_std(col(label, 'epochs'))[0]:.2f}",
                f"{mean_std(col(label, 'words_per_s_decode'))[0]:,.0f}",
            ]
        )
    res.tables.append(
        Table(
            f"Test WER / PER (%) after {p['budget']:g} CPU-seconds of training each",
            [
                "model",
                "parameters",
                "decoding (chosen on dev)",
                "dev WER %",
                f"test WER % ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})",
                "PER %",
                "train tokens/CPU-s",
                "CPU-s per epoch",
                "epochs in budget",
                "decode words/CPU-s (chosen decoding)",
            ],
            rows,
            f"{len(train.words):,} training words ({len(train):,} pronunciations, {train.target_tokens():,} phoneme "
            "tokens per epoch); "
            f"{len(test_words):,} words of the standard test list{subset}. Each model decodes the test words the "
            f"way ({' or '.join(DECODINGS)}) that gave it the lower WER on {len(dev_words):,} dev words "
            f"(every {p['dev_every']}th of the dev split; the test list was read after that choice). "
            f"Transformer {t_cfg}; LSTM {l_cfg}. Adam {p['lr']:g}, batch {p['batch']}, gradient clip 1, label "
            "smoothing 0.1, "
            "one CPU thread; time is this process's CPU time, so other load on the machine does not change the budget. "
            "Seconds per epoch are extrapolated from the measured throughput when the budget is shorter than an epoch.",
        )
    )

    bins = [b for b, _, _ in LENGTH_BINS if b in runs["Transformer"][0]["by_len"]]
    len_rows, ratios = [], {}
    for b, lo, hi in LENGTH_BINS:
        if b not in bins:
            continue
        n_words = len(_bucket(test_words, lo, hi))
        t = [r["by_len"][b] * 100 for r in runs["Transformer"]]
        lst = [r["by_len"][b] * 100 for r in runs["LSTM+attention"]]
        ratios[b] = mean_std(t)[0] / max(mean_std(lst)[0], 1e-9)
        len_rows.append([b, n_words, fmt(t, 3), fmt(lst, 3), f"{ratios[b]:.2f}"])
    res.tables.append(
        Table(
            "Test WER (%) by word length",
            ["word length", "test words", "Transformer", "LSTM+attention", "Transformer / LSTM"],
            len_rows,
            "A ratio below 1 means the Transformer makes fewer errors; the long-dependency claim predicts the ratio "
            "falls as words get longer.",
        )
    )
    res.tables.append(
        Table(
            "Published anchors on the standard test set (WER / PER %)",
            ["system", "WER", "PER"],
            ANCHORS,
            "Our test list has the size of Yao & Zweig's split but its provenance is CNTK's example (see "
            "PROVENANCE.md), "
            "and our training words come from a newer CMUdict: close, not identical, comparisons.",
        )
    )

    examples = sorted({min(test_words, key=lambda w: abs(len(w) - n)) for n in (4, 8, 13)}, key=len)
    _heatmaps(last_models, examples, ctx.path("attention.png"))
    res.figures.append(
        Figure(
            "attention.png",
            "Attention over the letters while emitting each phoneme (greedy output), "
            "Transformer: last decoder layer, mean over heads; LSTM: Luong attention.",
        )
    )

    # verdicts, from the numbers
    tok_t, tok_l = mean_std(col("Transformer", "tokens_per_s"))[0], mean_std(col("LSTM+attention", "tokens_per_s"))[0]
    res.findings.append(
        Finding(
            "The Transformer trains more tokens per second than the LSTM at the same parameter count.",
            "supported" if tok_t > 1.10 * tok_l else ("not supported" if tok_t < 0.90 * tok_l else "inconclusive"),
            f"{tok_t:,.0f} vs {tok_l:,.0f} phoneme tokens/s (ratio {tok_t / tok_l:.2f}) with {n_t:,} vs {n_l:,} "
            "parameters "
            "on one CPU thread (tokens per CPU-second); a ratio within 0.90-1.10 is inconclusive, because repeated "
            "runs on this shared machine moved it by that much (benchmarks/bench_g2p_speed.py).",
        )
    )
    (mt, st), (ml, sl) = mean_std(col("Transformer", "wer", 100)), mean_std(col("LSTM+attention", "wer", 100))
    noise = max(st, sl, 0.5)
    res.findings.append(
        Finding(
            f"With the same training time ({p['budget']:g} CPU-seconds), the Transformer reaches a lower test WER.",
            "supported" if ml - mt > noise else ("not supported" if mt - ml > noise else "inconclusive"),
            f"WER {mt:.2f}% (Transformer) vs {ml:.2f}% (LSTM); a difference counts when it exceeds {noise:.2f} points "
            "(the larger seed std, at least 0.5).",
        )
    )
    if len(bins) >= 2:
        short, long_ = ratios[bins[0]], ratios[bins[-1]]
        t_long = mean_std([r["by_len"][bins[-1]] for r in runs["Transformer"]])[0]
        l_long = mean_std([r["by_len"][bins[-1]] for r in runs["LSTM+attention"]])[0]
        saturated = max(t_long, l_long) >= 0.95  # a model that gets almost no long word right cannot show a trend
        if saturated:
            verdict = "inconclusive"
        elif long_ < 0.95 * short and t_long < l_long:
            verdict = "supported"
        elif long_ > 1.05 * short or t_long > l_long:
            verdict = "not supported"
        else:
            verdict = "inconclusive"
        res.findings.append(
            Finding(
                "The Transformer handles long dependencies better: its advantage grows with word length.",
                verdict,
                f"Transformer/LSTM WER ratio {short:.2f} on {bins[0]} and {long_:.2f} on {bins[-1]} "
                f"(WER on long words {100 * t_long:.1f}% vs {100 * l_long:.1f}%)"
                + (
                    "; a model at 95% WER or more on long words is saturated, so the ratio says nothing about length."
                    if saturated
                    else "."
                ),
            )
        )
    res.data.update(
        {
            "runs": runs,
            "params": {"Transformer": n_t, "LSTM+attention": n_l},
            "config": {"Transformer": t_cfg, "LSTM+attention": l_cfg},
            "decoding": decoding,
            "examples": examples,
        }
    )
    if ctx.preset != "full":
        res.notes.append(
            f"The {ctx.preset} preset trains small models for {p['budget']:g} CPU-seconds each, far below convergence: "
            "its WERs show the trend, not the models' quality. The full preset trains 3x256 models for "
            f"{PRESETS['full']['budget']:g} CPU-seconds each."
        )
    res.notes.append(
        "Throughput is measured on one CPU thread while training. With more threads, or on a GPU, the Transformer's "
        "position-parallel layers could change the speed comparison; this study does not measure that."
    )
    return res
