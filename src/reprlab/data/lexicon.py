"""Pronunciation lexicons in any alphabet, for grapheme-to-phoneme models.

Two formats, UTF-8, chosen by the first entry line of the file:

* CMUdict's: ``WORD  PH1 PH2 ...`` (any whitespace), ``WORD(2) ...`` for a variant, ``;;;`` comment lines,
  and an optional ``# comment`` at the end of a line;
* ``word<TAB>ph1 ph2 ...``: one tab between the word and its space-separated phones (a word may hold spaces).

Words are NFC-normalised and, by default, lower-cased; phones are kept as written (``strip_stress=True``
removes digits, as the built-in CMUdict data does). The graphemes of a word are its characters.

:class:`G2PVocab` numbers graphemes and phonemes the way :mod:`reprlab.data.g2p` does (0 pads, 1 begins,
2 ends a sequence, symbols from 3), so ``G2PVocab.builtin()`` reproduces the built-in CMUdict encoding and
a vocabulary built from a user's training lexicon plugs into the same models by its sizes.
The split is by word (every pronunciation of a word in one part), seeded and recorded.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from ..io import atomic_write_text
from ..tasks import TaskData
from .g2p import PAD, SPECIALS, G2PBatches, check_word, decode_phones, encode_prons, encode_words
from .splits import Split, make_split

Pron = tuple[str, ...]
_VARIANT = re.compile(r"^(.+)\((\d+)\)$")


# ------------------------------------------------------------------------------------------ vocabulary


class Vocab:
    """Symbols numbered in order after the three specials (``<pad>`` 0, ``<s>`` 1, ``</s>`` 2)."""

    def __init__(self, symbols: Sequence[str]):
        symbols = list(symbols)
        if symbols[: len(SPECIALS)] != SPECIALS:
            symbols = SPECIALS + [s for s in symbols if s not in SPECIALS]
        if len(set(symbols)) != len(symbols):
            raise ValueError("a vocabulary lists a symbol twice")
        self.symbols = tuple(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}

    @classmethod
    def build(cls, symbols: Iterable[str]) -> "Vocab":
        """The specials, then the distinct ``symbols`` in sorted (code point) order."""
        return cls(SPECIALS + sorted(set(symbols) - set(SPECIALS)))

    def __len__(self) -> int:
        return len(self.symbols)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.symbols == other.symbols

    def __contains__(self, s: str) -> bool:
        return s in self.index

    def unknown(self, seq: Iterable[str]) -> list[str]:
        """The distinct symbols of ``seq`` outside this vocabulary, in order of appearance."""
        return list(dict.fromkeys(s for s in seq if s not in self.index))

    def encode(self, seq: Iterable[str]) -> list[int]:
        return [self.index[s] for s in seq]

    @property
    def words(self) -> tuple[str, ...]:
        """The symbols without the specials."""
        return self.symbols[len(SPECIALS) :]


@dataclass(frozen=True)
class G2PVocab:
    """The grapheme (source) and phoneme (target) vocabularies of a G2P model."""

    graphemes: Vocab
    phonemes: Vocab
    lowercase: bool = True

    @classmethod
    def build(cls, entries: dict[str, Sequence[Pron]], lowercase: bool = True) -> "G2PVocab":
        """Vocabularies of the given (training) entries; DataError for a phone spelt like a special."""
        phones = {ph for prons in entries.values() for p in prons for ph in p}
        reserved = sorted(phones & set(SPECIALS))
        if reserved:
            raise DataError(
                f"the lexicon uses {reserved[0]!r} as a phone; {', '.join(SPECIALS)} are reserved, rename that phone"
            )
        return cls(Vocab.build(c for w in entries for c in w), Vocab.build(phones), lowercase)

    @classmethod
    def from_alphabets(cls, graphemes: Iterable[str], phonemes: Iterable[str], lowercase: bool = True) -> "G2PVocab":
        """The vocabularies numbering ``graphemes`` and ``phonemes`` in the order given (after the specials),
        as a G2P model's config lists them."""
        return cls(Vocab(SPECIALS + list(graphemes)), Vocab(SPECIALS + list(phonemes)), lowercase)

    @classmethod
    def builtin(cls) -> "G2PVocab":
        """The built-in CMUdict vocabularies (``SRC_VOCAB``, ``TGT_VOCAB`` of :mod:`reprlab.data.g2p`)."""
        from .g2p import SRC_VOCAB, TGT_VOCAB

        return cls(Vocab(SRC_VOCAB), Vocab(TGT_VOCAB), True)

    def normalize(self, word: str) -> str:
        w = unicodedata.normalize("NFC", word.strip())
        return w.lower() if self.lowercase else w

    def check_word(self, word: str, max_word: int = 0) -> str:
        """The normalized word, or DataError (one line) naming the word and the letters the model never saw
        (and, with ``max_word``, a word longer than that)."""
        return check_word(word, self.graphemes.words, self.lowercase, max_word)

    def encode_words(self, words: Sequence[str]) -> Tensor:
        """(N, S) grapheme ids, padded with 0 (words must be normalized and checked)."""
        return encode_words(words, self.graphemes.index)

    def encode_prons(self, prons: Sequence[Pron]) -> Tensor:
        """(N, T+2) phoneme ids: BOS, phones, EOS, padded with 0."""
        return encode_prons(prons, self.phonemes.index)

    def decode_phones(self, ids: Sequence[int]) -> Pron:
        """Phonemes of one output sequence, up to its first EOS (specials dropped)."""
        return decode_phones(ids, self.phonemes.symbols)

    def to_dict(self) -> dict:
        return {
            "specials": list(SPECIALS),
            "graphemes": list(self.graphemes.words),
            "phonemes": list(self.phonemes.words),
            "lowercase": self.lowercase,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "G2PVocab":
        if d.get("specials") != list(SPECIALS):
            raise DataError(f"a G2P vocabulary with specials {d.get('specials')} is not reprlab's {SPECIALS}")
        return cls(Vocab(d["graphemes"]), Vocab(d["phonemes"]), bool(d.get("lowercase", True)))

    def save(self, path: str | Path) -> None:
        """Write the vocabularies as JSON (atomically)."""
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "G2PVocab":
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError(f"cannot read the G2P vocabulary {path}: {e}") from None


# --------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Lexicon:
    path: Path
    entries: dict[str, tuple[Pron, ...]]  # word -> distinct pronunciations, in file order
    format: str  # "cmudict" or "tab"

    def __len__(self) -> int:
        return len(self.entries)


def _text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path} line {line} is not UTF-8 text; save the lexicon as UTF-8") from None


def read_lexicon(path: str | Path, lowercase: bool = True, strip_stress: bool = False) -> Lexicon:
    """Read a lexicon in CMUdict's or the ``word<TAB>phones`` format (see the module docstring).

    DataError naming the line: a line without phones, a line in neither format (a tab-format file with a
    line lacking its one tab, or a line starting with blanks), or a file without entries."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"{p} does not exist; give a lexicon file ('WORD PH ON ES' or 'word<TAB>ph on es' lines)")
    fmt = None
    out: dict[str, list[Pron]] = {}
    for n, line in enumerate(_text(p).splitlines(), 1):
        line = unicodedata.normalize("NFC", line)
        if not line.strip() or line.lstrip().startswith(";;;"):
            continue
        if fmt is None:
            fmt = "tab" if "\t" in line else "cmudict"
        if line[0].isspace() or (fmt == "tab" and line.count("\t") != 1):
            expect = "word<TAB>ph ph ..." if fmt == "tab" else "WORD  PH PH ..."
            raise DataError(f"{p} line {n} is in neither lexicon format (expected '{expect}' like the first entry)")
        if fmt == "tab":
            word, rest = line.split("\t")
            word, phones = word.strip(), rest.split()
        else:
            parts = line.split()
            if "#" in parts:  # cmudict.dict's end-of-line comments
                parts = parts[: parts.index("#")]
            word, phones = parts[0], parts[1:]
            m = _VARIANT.match(word)
            if m:
                word = m.group(1)
        if strip_stress:
            phones = [q for q in (re.sub(r"\d", "", ph) for ph in phones) if q]
        if not phones:
            raise DataError(f"{p} line {n}: {word!r} has no phones; write the word, then its phones")
        if lowercase:
            word = word.lower()
        prons = out.setdefault(word, [])
        if tuple(phones) not in prons:
            prons.append(tuple(phones))
    if not out:
        raise DataError(f"{p} holds no entries; give lines of a word and its phones")
    return Lexicon(p.resolve(), {w: tuple(v) for w, v in out.items()}, fmt)


def lexicon_fingerprint(entries: dict[str, Sequence[Pron]]) -> str:
    """A digest of the words and pronunciations (16 hex digits), independent of line order."""
    canon = [[w, [list(p) for p in entries[w]]] for w in sorted(entries)]
    return hashlib.sha256(json.dumps(canon, ensure_ascii=False).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------- splits


class LexiconBatches(G2PBatches):
    """:class:`~reprlab.data.g2p.G2PBatches` encoded with a :class:`G2PVocab` (any alphabet): the same
    length bucketing, epoch order and batch keys (``src``, ``tgt``, ``idx``)."""

    def __init__(
        self,
        entries: dict[str, tuple[Pron, ...]],
        vocab: G2PVocab,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        all_prons: bool = True,
        limit: int = 0,
    ):
        words = list(entries)[: limit or None]
        if not words:
            raise DataError("no G2P words to batch; check data.limit and the split fractions")
        self.vocab = vocab
        self.words = words
        self.references = [entries[w] for w in words]
        pairs = [(i, p) for i, w in enumerate(words) for p in (entries[w] if all_prons else entries[w][:1])]
        self.idx = torch.tensor([i for i, _ in pairs], dtype=torch.long)
        self.src = vocab.encode_words(words)[self.idx]
        self.tgt = vocab.encode_prons([p for _, p in pairs])
        self.src_len = (self.src != PAD).sum(1)
        self.tgt_len = (self.tgt != PAD).sum(1)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed


@dataclass
class LexiconData:
    """A lexicon split by word, with vocabularies built from its training part.

    ``excluded`` lists the dev/test words whose letters or phones the training part never shows (a model
    cannot read or write them); :meth:`batches` leaves them out and :meth:`record` counts them."""

    lexicon: Lexicon
    train: dict[str, tuple[Pron, ...]]
    dev: dict[str, tuple[Pron, ...]]
    test: dict[str, tuple[Pron, ...]]
    vocab: G2PVocab
    split: Split  # row indices into the sorted word list
    fingerprint: str
    excluded: dict[str, list[str]]

    def part(self, name: str) -> dict[str, tuple[Pron, ...]]:
        if name not in ("train", "dev", "val", "test"):
            raise ValueError(f"no lexicon part {name!r}; use train, dev or test")
        return {"train": self.train, "dev": self.dev, "val": self.dev, "test": self.test}[name]

    def batches(
        self, part: str = "train", batch_size: int = 256, shuffle: bool | None = None, seed: int = 0, limit: int = 0
    ) -> LexiconBatches:
        """Training batches hold every pronunciation; dev/test batches the first one of each word (the
        references hold them all), without the ``excluded`` words, as the built-in CMUdict task does."""
        entries = self.part(part)
        name = "dev" if part == "val" else part
        if name != "train":
            skip = set(self.excluded.get(name, ()))
            entries = {w: p for w, p in entries.items() if w not in skip}
        shuffle = name == "train" if shuffle is None else shuffle
        return LexiconBatches(entries, self.vocab, batch_size, shuffle, seed, all_prons=name == "train", limit=limit)

    def record(self) -> dict:
        return {
            "kind": "lexicon",
            "path": str(self.lexicon.path),
            "format": self.lexicon.format,
            "fingerprint": self.fingerprint,
            "split": {**self.split.record(), "unit": "word"},
            "counts": {"train": len(self.train), "dev": len(self.dev), "test": len(self.test)},
            "excluded": {k: len(v) for k, v in self.excluded.items()},
            "vocab": self.vocab.to_dict(),
        }


def split_lexicon(
    entries: dict[str, tuple[Pron, ...]], test_fraction: float = 0.1, val_fraction: float = 0.05, seed: int = 0
) -> tuple[dict, dict, dict, Split]:
    """(train, dev, test, split): words drawn with ``seed`` from the sorted word list, so the split does
    not depend on the order of the file's lines; a word and all its pronunciations go to one part."""
    words = sorted(entries)
    sp = make_split(len(words), None, test_fraction, val_fraction, seed)

    def pick(rows: np.ndarray) -> dict:
        return {words[i]: entries[words[i]] for i in rows}

    return pick(sp.train), pick(sp.val), pick(sp.test), sp


def open_lexicon(
    path: str | Path,
    test_fraction: float = 0.1,
    val_fraction: float = 0.05,
    seed: int = 0,
    lowercase: bool = True,
    strip_stress: bool = False,
    vocab: G2PVocab | dict | None = None,
) -> LexiconData:
    """Read, split and build vocabularies from the training words (or use ``vocab``, e.g. a run's saved one)."""
    lex = read_lexicon(path, lowercase, strip_stress)
    if len(lex) < 2:
        raise DataError(f"{lex.path} holds {len(lex)} word; a lexicon needs at least 2 words to train and test")
    train, dev, test, sp = split_lexicon(lex.entries, test_fraction, val_fraction, seed)
    if vocab is None:
        v = G2PVocab.build(train, lowercase)
    else:
        v = G2PVocab.from_dict(vocab) if isinstance(vocab, dict) else vocab
    excluded = {}
    for name, part in (("dev", dev), ("test", test)):
        excluded[name] = [
            w for w, prons in part.items() if v.graphemes.unknown(w) or any(v.phonemes.unknown(p) for p in prons)
        ]
    return LexiconData(lex, train, dev, test, v, sp, lexicon_fingerprint(lex.entries), excluded)


# ----------------------------------------------------------------------------------------------- task


@dataclass
class LexiconTask(TaskData):
    """:class:`~reprlab.tasks.TaskData` of a lexicon, with the split lexicon itself: ``data.vocab`` (what the
    model was given in ``model_defaults``) and ``data.record()`` (path, fingerprint, split, counts, vocabulary:
    what a run stores so ``eval`` and ``--resume`` find the same data again)."""

    data: LexiconData | None = field(default=None, repr=False)


DEFAULT_MAX_LEN = 64  # the G2P models' default max_len


def lexicon_task_data(
    path: str | Path,
    batch_size: int,
    shuffle_seed: int = 0,
    *,
    seed: int = 0,
    test_fraction: float = 0.1,
    val_fraction: float = 0.05,
    lowercase: bool = True,
    strip_stress: bool = False,
    limit: int = 0,
    vocab: G2PVocab | dict | None = None,
    eval_batch_size: int = 512,
) -> LexiconTask:
    """The ``g2p`` task's data from a lexicon file, as :func:`reprlab.data.g2p.g2p_task` gives it for CMUdict.

    * ``train``: every pronunciation of the training words, length-bucketed, shuffled with ``shuffle_seed``
      (the trainer's seed), the first ``limit`` words only if ``limit``;
    * ``val``/``test``: the dev/test words with their first pronunciation (``references`` hold all of them,
      for WER/PER), without the words whose letters or phones training never shows; None when empty;
    * ``model_defaults``: ``graphemes``, ``phonemes`` and ``lowercase`` of the vocabulary, and a ``max_len``
      that covers the longest word twice over and the longest pronunciation (at least the models' 64);
    * ``data``: the :class:`LexiconData` (its ``record()`` goes into the run).

    ``seed``, ``test_fraction`` and ``val_fraction`` make the split by word (the ``--data.*`` options of a
    lexicon have these names, so ``**spec.options`` can be passed as they are). ``vocab`` (a run's saved one, or
    ``model.vocab`` of a loaded run) encodes the data instead of the training words' vocabulary, and decides
    lower-casing; a training word it cannot encode means the lexicon changed since the run: DataError.
    """
    if vocab is not None:
        vocab = G2PVocab.from_dict(vocab) if isinstance(vocab, dict) else vocab
        lowercase = vocab.lowercase
    data = open_lexicon(path, test_fraction, val_fraction, seed, lowercase, strip_stress, vocab)
    v = data.vocab
    if vocab is not None:
        for w, prons in data.train.items():
            unseen = v.graphemes.unknown(w) + [ph for p in prons for ph in v.phonemes.unknown(p)]
            if unseen:
                raise DataError(
                    f"{data.lexicon.path}: the training word {w!r} has {' '.join(map(repr, unseen[:5]))}, "
                    "which the run's vocabulary lacks; the lexicon changed since the run was trained "
                    "(use the lexicon it was trained on, or train a new run)"
                )
    train = data.batches("train", batch_size, seed=shuffle_seed, limit=limit)
    parts = {}
    for name in ("dev", "test"):
        kept = len(data.part(name)) - len(data.excluded[name])
        parts[name] = data.batches(name, eval_batch_size) if kept else None
    entries = data.lexicon.entries
    longest_word = max(len(w) for w in entries)
    longest_pron = max(len(p) for prons in entries.values() for p in prons)
    defaults = {
        "graphemes": "".join(v.graphemes.words),
        "phonemes": list(v.phonemes.words),
        "lowercase": v.lowercase,
        "max_len": max(DEFAULT_MAX_LEN, 2 * longest_word, longest_pron + 2),
    }
    left_out = sum(len(x) for x in data.excluded.values())
    summary = (
        f"lexicon {data.lexicon.path.name}: {len(train.words)} train words ({len(train)} pronunciations) / "
        f"{len(parts['dev'].words) if parts['dev'] else 0} dev / {len(parts['test'].words) if parts['test'] else 0} "
        f"test words (split by word, seed {seed}); {len(v.graphemes.words)} letters, {len(v.phonemes.words)} phonemes"
        + (f"; {left_out} dev/test words left out (letters or phones unseen in training)" if left_out else "")
    )
    return LexiconTask(train, parts["dev"], parts["test"], defaults, summary, data=data)


def check_same_lexicon(data: LexiconData, saved: dict) -> None:
    """DataError (one line) unless ``data`` has the content fingerprint and split a run recorded (``saved``:
    its ``data_source``, a :meth:`LexiconData.record`)."""
    old = saved.get("fingerprint")
    if old and data.fingerprint != old:
        raise DataError(
            f"{data.lexicon.path} changed since the run was trained on it (fingerprint {data.fingerprint} != "
            f"recorded {old}); use the lexicon it was trained on, or train a new run"
        )
    digest = (saved.get("split") or {}).get("digest")
    if digest and data.split.digest() != digest:
        raise DataError(
            f"{data.lexicon.path} no longer gives the run's split by word (digest {data.split.digest()} != "
            f"{digest}); pass the run's --data.test_fraction/val_fraction/split_seed, or train a new run"
        )


def run_lexicon_text(name: str, saved: dict | None) -> str:
    """``name`` (a run's ``data.name``), or ``lexicon:PATH`` of the path the run recorded (``saved``: its
    ``data_source``) when ``name`` was relative to a folder the command no longer runs from."""
    if not saved or not saved.get("path"):
        return name
    head, sep, tail = name.partition(":")
    raw = tail if sep and head == "lexicon" else name
    if Path(raw).expanduser().exists() or not Path(saved["path"]).is_file():
        return name
    return f"lexicon:{saved['path']}"


def lexicon_task(spec, data, trainer, saved: dict | None = None, vocab: G2PVocab | dict | None = None) -> LexiconTask:
    """The ``g2p`` task of a lexicon ``spec`` (a parsed ``--data``) for DataConfig ``data`` and TrainerConfig
    ``trainer``: :func:`lexicon_task_data` with the spec's options, ``data.limit`` and the trainer's batch size
    and seed. ``extras["source"]`` is the lexicon's :meth:`LexiconData.record` (what a run keeps in config.json
    as ``data_source``).

    To rebuild a run's data (``eval``, ``--resume``): ``saved`` is the ``data_source`` it recorded, or ``vocab``
    the model's vocabulary (``model.vocab``); the same split is made and encoded with that vocabulary, and a
    lexicon that changed since is a DataError."""
    if vocab is None and saved and saved.get("vocab"):
        vocab = saved["vocab"]
    opts = dict(spec.options)
    task = lexicon_task_data(spec.path, trainer.batch_size, trainer.seed, limit=data.limit, vocab=vocab, **opts)
    if saved:
        check_same_lexicon(task.data, saved)
    task.extras["source"] = task.data.record()
    return task


def lexicon_task_for_run(run_config: dict, vocab: G2PVocab | dict | None = None) -> LexiconTask:
    """The ``g2p`` task data of a lexicon run rebuilt from its config.json (``run_config``): the recorded split,
    encoded with the run's vocabulary (``vocab``, e.g. ``model.vocab``, else the recorded one); DataError when
    the lexicon changed since. For commands that hold a run's config rather than going through the task."""
    from ..config import DataConfig, TrainerConfig, build
    from .spec import parse_data_spec

    data = build(DataConfig, run_config.get("data") or {}, "data")
    trainer = build(TrainerConfig, run_config.get("trainer") or {}, "trainer")
    saved = run_config.get("data_source")
    spec = parse_data_spec(run_lexicon_text(data.name, saved), "g2p", data.reader_options())
    if spec.kind != "lexicon":
        raise DataError(f"the run was trained on {data.name!r}, not on a lexicon file")
    return lexicon_task(spec, data, trainer, saved, vocab)


__all__ = [
    "check_same_lexicon",
    "lexicon_task",
    "lexicon_task_for_run",
    "run_lexicon_text",
    "Vocab",
    "G2PVocab",
    "Lexicon",
    "LexiconData",
    "LexiconBatches",
    "read_lexicon",
    "split_lexicon",
    "open_lexicon",
    "lexicon_fingerprint",
    "LexiconTask",
    "lexicon_task_data",
]
