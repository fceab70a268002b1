"""reprlab g2p RUN WORD ...: print pronunciations from a trained G2P run, in the phonemes it was trained on."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import add_no_progress, g2p_ensemble, positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "g2p",
        help="pronounce words with a trained G2P run",
        description=(
            "Print the pronunciation of each word, one 'WORD  PH ON ES' line each, in the run's own alphabets (a "
            "CMUdict run reads a-z and ' and writes ARPAbet; a run trained on your lexicon reads and writes its "
            "letters and phones). "
            "A word that cannot be pronounced gets one error line on stderr; the others are still printed, "
            "and the exit code is then 2."
        ),
        epilog="example: reprlab g2p runs/g2p_transformer-seed0 hello world --beam 5",
    )
    p.add_argument("run", help="run directory of a g2p_transformer or g2p_lstm model")
    p.add_argument("words", nargs="*", help="words to pronounce")
    p.add_argument("--file", help="read words from this file, one per line (blank lines skipped)")
    p.add_argument("--beam", type=positive_int, default=1, help="beam width (1 = greedy; default 1)")
    p.add_argument(
        "--ensemble",
        nargs="+",
        metavar="RUN2",
        help="decode with RUN and these G2P runs together (the mean of their next-phoneme log-probabilities)",
    )
    add_no_progress(p, "one line per finished stage instead of a progress bar (decoding a --file)")
    p.set_defaults(func=run)


def _read_words(path: str) -> list[str]:
    from ..errors import DataError

    p = Path(path)
    if not p.is_file():
        raise DataError(f"word file {p} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(
            f"cannot read word file {p}: {e.__class__.__name__}; give a UTF-8 text file, one word per line"
        ) from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError, DataError
    from ..models.g2p_base import G2PModel
    from ..train.checkpoint import load_run

    words = list(args.words) + (_read_words(args.file) if args.file else [])
    if not words:
        raise ConfigError("give words to pronounce, e.g. 'reprlab g2p RUN hello world', or --file words.txt")
    model = load_run(args.run)
    if not isinstance(model, G2PModel):
        raise ConfigError(
            f"{args.run} holds a {getattr(model, 'registry_name', '?')} model; reprlab g2p needs g2p_transformer or "
            "g2p_lstm"
        )
    check_word = model.check_word  # the run's own vocabulary (ensemble members share it)
    if args.ensemble:
        model = g2p_ensemble(model, args.run, args.ensemble)
    good, bad = [], 0
    for w in words:
        try:
            good.append((w, check_word(w)))
        except DataError as e:
            sys.stderr.write(f"reprlab: error: {e}\n")
            bad += 1
    prons = model.predict([w for _, w in good], beam=args.beam) if good else []
    for (orig, _), pron in zip(good, prons):
        print(f"{orig.strip().upper()}  {' '.join(pron)}")
    return 2 if bad else 0
