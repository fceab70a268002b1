"""Pronunciation lexicons in any alphabet: both formats, vocabularies, the split by word, bad lines."""

import unicodedata

import numpy as np
import pytest
import torch

from reprlab.data import g2p
from reprlab.data.lexicon import G2PVocab, LexiconBatches, open_lexicon, read_lexicon
from reprlab.errors import DataError

# a made-up orthography: each letter has one phone (IPA), so pronunciations are checkable
LETTERS = {"a": "a", "ä": "ɛ", "ö": "ø", "ü": "y", "ß": "s", "ñ": "ɲ", "c": "ç", "h": "h", "t": "t", "é": "e"}


def make_words(n, seed=0):
    rng = np.random.default_rng(seed)
    keys = list(LETTERS)
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(keys, int(rng.integers(2, 7)))))
    return sorted(words)


def pron(word):
    return tuple(LETTERS.get(c, c) for c in word)


def write_tab_lexicon(path, words, variants=()):
    lines = []
    for w in words:
        # write the word decomposed (NFD) and capitalised: the reader normalises to NFC lower case
        # ('ß' upper-cases to 'SS', which is another word)
        cap = w if w.startswith("ß") else w.capitalize()
        lines.append(f"{unicodedata.normalize('NFD', cap)}\t{' '.join(pron(w))}")
        if w in variants:
            lines.append(f"{w}\t{' '.join(pron(w))} ə")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_cmudict_format_with_variants_comments_and_stress(tmp_path):
    p = tmp_path / "cmu.dict"
    p.write_text(
        ";;; a comment line\n"
        "ABBE  AE1 B\n"
        "ABBE(2)  AE1 B IY0\n"
        "\n"
        "D'ARTAGNAN  D AH0 R T AE1 NG Y AH0 N # foreign french\n"
        "ABBE(3)  AE1 B\n"
    )
    lex = read_lexicon(p)
    assert lex.format == "cmudict"
    assert lex.entries == {
        "abbe": (("AE1", "B"), ("AE1", "B", "IY0")),
        "d'artagnan": (("D", "AH0", "R", "T", "AE1", "NG", "Y", "AH0", "N"),),
    }
    assert read_lexicon(p, strip_stress=True).entries["abbe"] == (("AE", "B"), ("AE", "B", "IY"))
    assert read_lexicon(p, lowercase=False).entries.keys() == {"ABBE", "D'ARTAGNAN"}


def test_non_ascii_lexicon_round_trips_and_no_word_is_in_two_splits(tmp_path):
    words = make_words(300)
    variants = set(words[::10])
    path = write_tab_lexicon(tmp_path / "lex.tsv", words, variants)
    d = open_lexicon(path, test_fraction=0.1, val_fraction=0.1, seed=5)
    assert d.lexicon.format == "tab" and len(d.lexicon) == 300
    assert set(d.train) | set(d.dev) | set(d.test) == set(words)
    assert not (set(d.train) & set(d.dev) or set(d.train) & set(d.test) or set(d.dev) & set(d.test))
    assert len(d.test) == 30 and len(d.dev) == 27
    for part in (d.train, d.dev, d.test):  # every pronunciation of a word stays with it
        for w, prons in part.items():
            assert prons == ((pron(w), (*pron(w), "ə")) if w in variants else (pron(w),))
    # the vocabularies come from the training words; the specials are the built-in ones
    v = d.vocab
    assert v.graphemes.symbols[:3] == tuple(g2p.SPECIALS) == v.phonemes.symbols[:3]
    assert set(v.graphemes.words) == {c for w in d.train for c in w}
    assert {"ɛ", "ø", "ɲ", "ç"} <= set(v.phonemes.words)
    v.save(tmp_path / "vocab.json")
    again = G2PVocab.load(tmp_path / "vocab.json")
    assert again == v and "ø" in (tmp_path / "vocab.json").read_text(encoding="utf-8")
    for w, prons in list(d.train.items())[:50]:
        src = again.encode_words([w])[0]
        assert "".join(again.graphemes.symbols[i] for i in src.tolist()) == w
        tgt = again.encode_prons([prons[0]])[0]
        assert tgt[0] == g2p.BOS and again.decode_phones(tgt[1:].tolist()) == prons[0]
    # the split is seeded and recorded
    same = open_lexicon(path, test_fraction=0.1, val_fraction=0.1, seed=5)
    other = open_lexicon(path, test_fraction=0.1, val_fraction=0.1, seed=6)
    assert same.test == d.test and other.test != d.test
    rec = d.record()
    assert rec["split"]["unit"] == "word" and rec["split"]["seed"] == 5 and rec["counts"]["test"] == 30
    assert (
        rec["fingerprint"] == same.fingerprint != open_lexicon(write_tab_lexicon(tmp_path / "b", words[1:])).fingerprint
    )


def test_lexicon_batches_encode_with_the_vocabulary(tmp_path):
    words = make_words(120, seed=1)
    d = open_lexicon(write_tab_lexicon(tmp_path / "lex.tsv", words, set(words[:5])), seed=0)
    src = d.batches("train", 16, seed=3)
    assert isinstance(src, LexiconBatches) and len(src) == sum(len(p) for p in d.train.values())
    seen = 0
    for b in src.epoch(0):
        for s, t, i in zip(b["src"], b["tgt"], b["idx"]):
            w = src.words[int(i)]
            assert "".join(d.vocab.graphemes.symbols[k] for k in s.tolist() if k) == w
            assert d.vocab.decode_phones(t[1:].tolist()) in d.train[w]
            seen += 1
    assert seen == len(src)
    dev = d.batches("dev", 8)
    assert len(dev) == len(dev.words) == len(d.dev) - len(d.excluded["dev"])  # one pronunciation per word
    again = d.batches("train", 16, seed=3)
    assert all(torch.equal(a["src"], b["src"]) for a, b in zip(src.epoch(1), again.epoch(1), strict=True))


def test_words_with_letters_unseen_in_training_are_excluded_from_eval_and_named(tmp_path):
    words = make_words(200, seed=2)
    rare = [f"a{c}a" for c in "qwxyzvkjb"]  # each of these letters appears in one word only
    path = write_tab_lexicon(tmp_path / "lex.tsv", words + rare)
    for seed in range(20):
        d = open_lexicon(path, test_fraction=0.2, val_fraction=0.1, seed=seed)
        held = [w for w in rare if w in d.test or w in d.dev]
        if held:
            break
    assert held
    assert sorted(d.excluded["test"] + d.excluded["dev"]) == sorted(held)
    assert not set(held) & set(d.batches("test", 8).words) and not set(held) & set(d.batches("dev", 8).words)
    with pytest.raises(DataError, match=r"has letters not in the model's training vocabulary: '.'"):
        d.vocab.check_word(held[0].upper())
    known = next(w for w in d.train if not w.isascii() and "ß" not in w)
    assert d.vocab.check_word(" " + unicodedata.normalize("NFD", known.upper())) == known


def test_builtin_vocabulary_matches_the_cmudict_encoding():
    v = G2PVocab.builtin()
    assert v.graphemes.symbols == tuple(g2p.SRC_VOCAB) and v.phonemes.symbols == tuple(g2p.TGT_VOCAB)
    words = ["hello", "it's", "zyzzyva"]
    prons = [("HH", "AH", "L", "OW"), ("IH", "T", "S"), ("Z", "IH", "Z", "IY", "V", "AH")]
    assert torch.equal(v.encode_words(words), g2p.encode_words(words))
    assert torch.equal(v.encode_prons(prons), g2p.encode_prons(prons))
    ids = g2p.encode_prons(prons)[0, 1:].tolist()
    assert v.decode_phones(ids) == g2p.decode_phones(ids) == prons[0]


@pytest.mark.parametrize(
    "text, msg",
    [
        ("hello\th ɛ l o\nworld\t\n", r"line 2: 'world' has no phones"),
        ("HELLO  HH AH L OW\nWORLD\n", r"line 2: 'WORLD' has no phones"),
        ("hello\th ɛ l o\nworld w ɜ l d\n", r"line 2 is in neither lexicon format \(expected 'word<TAB>ph ph"),
        ("hello\th ɛ\tl o\n", r"line 1 is in neither lexicon format"),
        ("HELLO  HH AH L OW\n  W ER L D\n", r"line 2 is in neither lexicon format"),
        (";;; only comments\n\n", "holds no entries"),
    ],
)
def test_bad_lexicon_lines_are_named(tmp_path, text, msg):
    p = tmp_path / "bad.txt"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=msg) as e:
        read_lexicon(p)
    assert "\n" not in str(e.value)


def test_unreadable_lexicons(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_lexicon(tmp_path / "none.txt")
    p = tmp_path / "latin.txt"
    p.write_bytes("abc\ta b c\ncaf\xe9\tk a f e\n".encode("latin-1"))
    with pytest.raises(DataError, match="line 2 is not UTF-8"):
        read_lexicon(p)
    one = tmp_path / "one.txt"
    one.write_text("abc\ta b c\n")
    with pytest.raises(DataError, match="holds 1 word"):
        open_lexicon(one)
