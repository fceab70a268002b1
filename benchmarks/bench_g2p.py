"""G2P on the standard CMUdict test words: a reprlab run against g2p_en's pre-trained GRU seq2seq.

    python benchmarks/bench_g2p.py [RUN] [--words N]

RUN is a trained g2p_transformer / g2p_lstm run directory (default: $REPRLAB_G2P_RUN; without
one, a small Transformer is trained for 60 s first, and the table says so). g2p_en 2.1.0 runs
in its own venv (benchmarks/.venv-g2p_en). Only its neural ``predict(word)`` is used: NLTK's
cmudict lookup is replaced by an empty dict, so every word goes through the network.
Its training data may include these test words, so its WER is an optimistic reference.

Reported in the same run: WER / PER (%) and words/s, for g2p_en one word at a time (its API),
reprlab one word at a time, and reprlab in batches of 512.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import peer_python  # noqa: E402
from common import print_table  # noqa: E402

from reprlab.data.g2p import G2PBatches, standard_split, strip_stress  # noqa: E402
from reprlab.metrics.edit import wer_per  # noqa: E402

PEER_SCRIPT = r"""
import json, sys, time, types
import g2p_en.g2p as m
m.cmudict = types.SimpleNamespace(dict=lambda: {})  # no NLTK corpus: the network pronounces every word
g = m.G2p()
words = json.load(open(sys.argv[1]))
t = time.perf_counter()
out = [g.predict(w) for w in words]
json.dump({"preds": out, "seconds": time.perf_counter() - t}, open(sys.argv[2], "w"))
"""


def peer_predictions(words: list[str]) -> tuple[list[tuple[str, ...]], float] | None:
    py = peer_python("g2p_en", ["g2p_en==2.1.0"])
    if py is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        wf, of, sf = Path(tmp) / "words.json", Path(tmp) / "out.json", Path(tmp) / "peer.py"
        wf.write_text(json.dumps(words))
        sf.write_text(PEER_SCRIPT)
        r = subprocess.run(
            [py, str(sf), str(wf), str(of)], capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1")
        )
        if r.returncode != 0:
            print(
                f"[g2p_en] failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}",
                file=sys.stderr,
            )
            return None
        d = json.loads(of.read_text())
    return [strip_stress(p) for p in d["preds"]], d["seconds"]


def load_or_train(run: str | None):
    import reprlab

    if run:
        return reprlab.load(run), f"run {run}"
    from reprlab.studies.transformer import _train

    sp = standard_split()
    model, _ = _train(
        "g2p_transformer", dict(d_model=64, ff=256, enc_layers=2, dec_layers=2), G2PBatches(sp.train, 256), 60.0, 0, 256
    )
    return model, "a 2x64 Transformer trained for 60 s here (pass RUN for a real one)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?", default=os.environ.get("REPRLAB_G2P_RUN"))
    ap.add_argument(
        "--words", type=int, default=0, help="use every k-th test word so that about N remain (0 = all 11,994)"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    sp = standard_split()
    words = list(sp.test)
    if args.words:
        words = words[:: max(1, len(words) // args.words)]
    refs = [sp.test[w] for w in words]
    model, what = load_or_train(args.run)
    model.eval()

    t = time.perf_counter()
    batched = model.predict(words, batch_size=512)
    ours_batched_s = time.perf_counter() - t
    one = words[:: max(1, len(words) // 500)]
    t = time.perf_counter()
    for w in one:
        model.predict([w])
    ours_single_wps = len(one) / (time.perf_counter() - t)

    rows = []
    s = wer_per(batched, refs)
    rows.append(
        [
            "reprlab " + model.registry_name + " (batch 512)",
            100 * s["wer"],
            100 * s["per"],
            len(words) / ours_batched_s,
            "-",
        ]
    )
    rows.append(["reprlab " + model.registry_name + " (one word at a time)", "same", "same", ours_single_wps, "-"])
    peer = peer_predictions(words)
    if peer is None:
        rows.append(["g2p_en 2.1.0 (GRU)", "not installed", "-", "-", "-"])
    else:
        preds, secs = peer
        p = wer_per(preds, refs)
        peer_wps = len(words) / secs
        rows.append(
            [
                "g2p_en 2.1.0 GRU (one word at a time)",
                100 * p["wer"],
                100 * p["per"],
                peer_wps,
                f"reprlab/g2p_en words/s: {ours_single_wps / peer_wps:.2f} one at a time, "
                f"{len(words) / ours_batched_s / peer_wps:.2f} batched; WER ratio {s['wer'] / max(p['wer'], 1e-9):.2f}",
            ]
        )
    print(f"{len(words)} standard test words; reprlab model: {what}; 1 thread")
    print_table(
        "G2P on the CMUdict test words (greedy decoding)", ["system", "WER %", "PER %", "words/s", "ratio"], rows
    )
    print("\ng2p_en was trained on CMUdict and may have seen these test words: its WER is optimistic.")


if __name__ == "__main__":
    main()
