"""Word and phoneme error rates for G2P, with several reference pronunciations per word.

* WER: the fraction of words whose prediction equals none of the references.
* PER: the sum over words of the edit distance to the closest reference, divided by the sum of
  that reference's lengths (the usual corpus-level definition).

Edit distances come from ``rapidfuzz`` (Levenshtein on sequences of phoneme strings).
"""

from __future__ import annotations

from typing import Sequence

from rapidfuzz.distance import Levenshtein

Pron = Sequence[str]


def edit_distance(a: Pron, b: Pron) -> int:
    """Insertions + deletions + substitutions turning ``a`` into ``b`` (unit costs)."""
    return int(Levenshtein.distance(list(a), list(b)))


def closest_reference(pred: Pron, refs: Sequence[Pron]) -> tuple[int, int]:
    """(edit distance, reference length) for the reference closest to ``pred`` (the shorter one on ties)."""
    if not refs:
        raise ValueError("a word needs at least one reference pronunciation")
    return min((edit_distance(pred, r), len(r)) for r in refs)


def wer_per(preds: Sequence[Pron], refs: Sequence[Sequence[Pron]]) -> dict[str, float]:
    """``{"wer", "per"}`` (fractions, not percent) of predictions against their reference lists."""
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions for {len(refs)} reference lists")
    if not preds:
        raise ValueError("no words to score")
    errors = edits = length = 0
    for p, rs in zip(preds, refs):
        d, n = closest_reference(p, rs)
        errors += d > 0
        edits += d
        length += n
    return {"wer": errors / len(preds), "per": edits / max(length, 1)}


__all__ = ["edit_distance", "closest_reference", "wer_per"]
