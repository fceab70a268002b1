"""G2P models in any alphabet: the vocabularies live in the model config, so a run carries them.

A generated German-like lexicon (ä ö ü ß, IPA phones, NFD capitalised spellings, some words with two
pronunciations) trains both G2P models through the engine, is saved as a run, loads back, and decodes with
the saved vocabulary. The default models stay those of the built-in CMUdict alphabets.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest
import torch

from reprlab.config import TrainerConfig, to_dict
from reprlab.data import g2p
from reprlab.data.lexicon import G2PVocab, LexiconBatches, lexicon_task_data
from reprlab.errors import ConfigError, DataError
from reprlab.export import parts
from reprlab.models.g2p_ensemble import G2PEnsemble
from reprlab.registry import create_model
from reprlab.train.checkpoint import load_run, read_run_config
from reprlab.train.engine import Trainer

# spelling -> phones, longest spelling first (a made-up but regular German-like orthography)
RULES = [
    ("sch", "ʃ"),
    ("ch", "x"),
    ("ei", "aɪ"),
    ("ie", "iː"),
    ("ä", "ɛ"),
    ("ö", "ø"),
    ("ü", "y"),
    ("ß", "s"),
    ("w", "v"),
    ("z", "ts"),
]
ONSETS = ["b", "d", "f", "g", "h", "k", "l", "m", "n", "r", "s", "t", "w", "z", "sch", "br", "st"]
VOWELS = ["a", "e", "i", "o", "u", "ä", "ö", "ü", "ei", "ie"]
CODAS = ["", "", "n", "r", "ß", "ch", "l", "t"]
SMALL = {
    "g2p_transformer": dict(d_model=32, n_heads=2, ff=64, enc_layers=1, dec_layers=1, dropout=0.0),
    "g2p_lstm": dict(emb=16, hidden=32, layers=1, dropout=0.0),
}


def pronounce(word: str) -> tuple[str, ...]:
    out, i = [], 0
    while i < len(word):
        for spelling, phones in RULES:
            if word.startswith(spelling, i):
                out.append(phones)
                i += len(spelling)
                break
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def make_words(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    words: set[str] = set()
    while len(words) < n:
        k = int(rng.integers(1, 4))
        words.add("".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(k)))
    return sorted(words)


def write_lexicon(path, words):
    """``Word<TAB>phones`` lines, spelt decomposed (NFD) and capitalised; every 5th word with an 'r' also has
    a variant with a uvular ʁ."""
    lines = []
    for i, w in enumerate(words):
        cap = w if w.startswith("ß") else w.capitalize()
        lines.append(f"{unicodedata.normalize('NFD', cap)}\t{' '.join(pronounce(w))}")
        if i % 5 == 0 and "r" in w:
            lines.append(f"{w}\t{' '.join('ʁ' if p == 'r' else p for p in pronounce(w))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def variants(word: str) -> set[tuple[str, ...]]:
    p = pronounce(word)
    return {p, tuple("ʁ" if x == "r" else x for x in p)}


@pytest.fixture(scope="module")
def lexicon(tmp_path_factory):
    return write_lexicon(tmp_path_factory.mktemp("lex") / "deutsch.tsv", make_words(400))


def test_lexicon_task_splits_by_word_and_gives_the_models_its_vocabulary(lexicon):
    task = lexicon_task_data(lexicon, 32, 0, seed=3, test_fraction=0.1, val_fraction=0.1)
    train, val, test = task.train, task.val, task.test
    assert isinstance(train, LexiconBatches) and val is not None and test is not None
    sets = [set(train.words), set(val.words), set(test.words)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])  # no word in two splits
    d = task.data
    assert set(d.train) | set(d.dev) | set(d.test) == set(make_words(400))
    assert len(d.test) == 40 and len(d.dev) == 36
    # every pronunciation of a word goes with it: training pairs hold all of them, references too
    assert len(train) == sum(len(p) for p in d.train.values()) > len(d.train)
    for w, refs in zip(test.words, test.references):
        assert set(refs) <= variants(w) and pronounce(w) in refs
    # vocabularies come from the training words, and the models get them as config defaults
    v = task.model_defaults
    assert set(v["graphemes"]) == {c for w in d.train for c in w} and {"ä", "ö", "ü", "ß"} <= set(v["graphemes"])
    assert {"ʃ", "aɪ", "iː", "ʁ", "ø"} <= set(v["phonemes"]) and v["lowercase"] is True
    assert v["max_len"] == 64  # short words: the models' default
    assert f"{len(val.words)} dev / {len(test.words)} test words" in task.summary and "seed 3" in task.summary
    rec = d.record()
    assert rec["split"]["unit"] == "word" and rec["split"]["seed"] == 3 and len(rec["fingerprint"]) == 16
    # the split depends on the seed only, not on the trainer's shuffling seed
    again = lexicon_task_data(lexicon, 8, 5, seed=3, test_fraction=0.1, val_fraction=0.1)
    assert again.test.words == test.words and again.data.vocab == d.vocab
    other = lexicon_task_data(lexicon, 8, 5, seed=4, test_fraction=0.1, val_fraction=0.1)
    assert other.test.words != test.words


def test_long_words_raise_the_max_len_and_a_changed_lexicon_is_refused(tmp_path, lexicon):
    words = [w for w in make_words(60, seed=1) if "ü" not in w] + ["schlei" * 8]  # 48 letters
    task = lexicon_task_data(write_lexicon(tmp_path / "long.tsv", words), 16, seed=0)
    assert task.model_defaults["max_len"] == 96
    model = create_model("g2p_lstm", **SMALL["g2p_lstm"], **task.model_defaults)
    assert model.max_word() == 48 and model.predict(["Schlei" * 8])  # the longest word is accepted
    # encoding with a run's saved vocabulary (here without 'ü'): training words it cannot encode mean the
    # lexicon changed
    with pytest.raises(DataError, match="changed since the run") as e:
        lexicon_task_data(lexicon, 16, seed=0, vocab=task.data.vocab)
    assert "\n" not in str(e.value)
    same = lexicon_task_data(lexicon, 16, seed=0)
    assert lexicon_task_data(lexicon, 16, seed=0, vocab=same.data.vocab.to_dict()).test.words == same.test.words


def _train(name, task, run_dir, steps):
    torch.manual_seed(0)
    model = create_model(name, **SMALL[name], **task.model_defaults)
    cfg = TrainerConfig(
        epochs=100, max_steps=steps, batch_size=32, lr=1e-2, seed=0, progress=False, tensorboard=False, threads=1
    )
    run_config = {"model": name, "model_config": to_dict(model.config), "trainer": to_dict(cfg), "data": {}}
    with Trainer(cfg, run_dir, run_config, description=name) as trainer:
        trainer.fit(model, task.train, task.val)
    return model.eval()


@pytest.fixture(scope="module", params=["g2p_transformer", "g2p_lstm"])
def trained(request, lexicon, tmp_path_factory):
    task = lexicon_task_data(lexicon, 32, 0, seed=0, test_fraction=0.1, val_fraction=0.05)
    run = tmp_path_factory.mktemp(request.param) / "run"
    model = _train(request.param, task, run, 300)
    return request.param, task, run, model


def test_a_trained_run_carries_its_vocabulary_and_decodes_with_it(trained):
    name, task, run, model = trained
    saved = read_run_config(run)["model_config"]
    assert (
        saved["graphemes"] == task.model_defaults["graphemes"] and saved["phonemes"] == task.model_defaults["phonemes"]
    )
    loaded = load_run(run)
    assert loaded.vocab == task.data.vocab and loaded.registry_name == name
    # embeddings and output layer are sized by the lexicon's symbols plus the three specials
    assert loaded.src_emb.weight.shape[0] == len(task.data.vocab.graphemes.words) + 3
    assert loaded.head.weight.shape[0] == len(task.data.vocab.phonemes.words) + 3 == loaded.tgt_vocab
    words = task.test.words
    preds = loaded.predict(words)
    assert preds == model.predict(words)  # same weights, same vocabulary
    phones = set(task.data.vocab.phonemes.words)
    assert all(set(p) <= phones for p in preds)
    assert any(set(p) & {"ʃ", "aɪ", "iː", "ø", "ɛ", "y"} for p in preds)  # the IPA side of the vocabulary in use
    # it learned the orthography: far better than an untrained model of the same vocabulary
    metrics = loaded.test_metrics(task.test)
    torch.manual_seed(0)
    untrained = create_model(name, **SMALL[name], **task.model_defaults).eval()
    assert metrics["per"] < 0.5 < untrained.test_metrics(task.test)["per"]
    # spelling variants: NFD, capitals and blanks around the word are normalised as the lexicon reader does
    w = next(x for x in words if not x.isascii() and "ß" not in x)
    assert loaded.predict([f" {unicodedata.normalize('NFD', w.upper())} "]) == loaded.predict([w])
    # `reprlab eval` rebuilds the test split with the run's own vocabulary: the same words and numbers
    again = lexicon_task_data(
        task.data.lexicon.path, 32, 0, seed=0, test_fraction=0.1, val_fraction=0.05, vocab=loaded.vocab
    )
    assert again.test.words == words and loaded.test_metrics(again.test) == metrics
    assert all(set(p) <= phones for p in loaded.predict(words, beam=3))


def test_a_word_with_unseen_letters_gets_a_message_naming_it_and_them(trained):
    _, task, run, _ = trained
    model = load_run(run)
    with pytest.raises(DataError) as e:
        model.predict(["Straße", "Quixotic", "Bach"])
    msg = str(e.value)
    assert "'Quixotic'" in msg and "'q' 'x'" in msg and "training vocabulary" in msg and "\n" not in msg
    long = "b" * 5000 + "q"
    with pytest.raises(DataError) as e:
        model.predict([long])
    assert "…(5001 characters)" in str(e.value) and "'q'" in str(e.value) and len(str(e.value)) < 200
    with pytest.raises(DataError, match="at most 32"):
        model.predict(["ba" * 20])
    with pytest.raises(DataError, match="empty word"):
        model.predict(["  "])
    assert model.check_word(" STRASSE ") == "strasse"


def test_cli_g2p_pronounces_with_the_runs_vocabulary(trained, cli):
    name, task, run, model = trained
    ascii_word = next(w for w in task.train.words if w.isascii())
    rc, out, err = cli("g2p", run, ascii_word)
    assert rc == 0, err
    assert out.split()[1:] == list(model.predict([ascii_word])[0])


def test_cli_g2p_reads_the_runs_non_ascii_letters(trained, cli):
    _, task, run, model = trained
    word = next(w for w in task.train.words if not w.isascii())
    rc, out, err = cli("g2p", run, word)
    assert rc == 0, err
    assert out.split()[1:] == list(model.predict([word])[0])


def test_ensembles_need_one_vocabulary(trained):
    name, task, run, model = trained
    a, b = load_run(run), load_run(run)
    ens = G2PEnsemble([a, b])
    assert ens.vocab == a.vocab and ens.predict(task.test.words[:5]) == a.predict(task.test.words[:5])
    builtin = create_model(name, **SMALL[name])
    with pytest.raises(ConfigError, match="must share their vocabularies") as e:
        G2PEnsemble([a, builtin])
    assert "member 2" in str(e.value) and "\n" not in str(e.value)


def test_export_examples_use_the_models_vocabulary(trained):
    name, task, run, model = trained
    g = torch.Generator().manual_seed(0)
    found = parts(model)
    (src,) = found["encoder"].inputs(64, g)
    assert int(src.max()) < model.src_vocab and int(src.max()) >= 3
    step = found["decoder"].inputs(4, g)
    with torch.no_grad():
        logits = found["decoder"].module(*step)
    logits = logits[0] if isinstance(logits, tuple) else logits
    assert logits.shape == (4, model.tgt_vocab)


# ------------------------------------------------------------------------- the default (CMUdict) models


@pytest.mark.parametrize("name", ["g2p_transformer", "g2p_lstm"])
def test_default_models_keep_the_builtin_vocabulary_shapes_and_numbers(name):
    torch.manual_seed(0)
    model = create_model(name, **SMALL[name]).eval()
    assert model.config.graphemes == "".join(g2p.LETTERS) and model.config.phonemes == tuple(g2p.PHONEMES)
    assert model.vocab == G2PVocab.builtin()
    assert model.src_emb.weight.shape[0] == len(g2p.SRC_VOCAB) == 30
    assert model.tgt_emb.weight.shape[0] == model.head.weight.shape[0] == len(g2p.TGT_VOCAB) == 42
    # naming the built-in alphabets explicitly (as a lexicon of exactly them would) builds the same model
    torch.manual_seed(0)
    explicit = create_model(name, **SMALL[name], graphemes="".join(g2p.LETTERS), phonemes=list(g2p.PHONEMES)).eval()
    sd, sd2 = model.state_dict(), explicit.state_dict()
    assert list(sd) == list(sd2) and all(torch.equal(sd[k], sd2[k]) for k in sd)
    # the example batch is the built-in random batch, draw for draw
    b = model.example_batch(6, torch.Generator().manual_seed(5))
    ref = g2p.random_batch(6, torch.Generator().manual_seed(5))
    assert all(torch.equal(b[k], ref[k]) for k in ref)
    # decoding through the model's vocabulary equals the module-level (built-in) encode / decode path
    words = ["hello", "world", "o'neil", "zyzzyva"]
    with torch.no_grad():
        ids = model.greedy(g2p.encode_words(words))
    assert model.predict(words) == [g2p.decode_phones(r.tolist()) for r in ids]
    assert model.vocab.encode_words(words).equal(g2p.encode_words(words))
    # a config.json written before the vocabulary fields existed still loads as the built-in model
    old = {k: v for k, v in to_dict(model.config).items() if k not in ("graphemes", "phonemes", "lowercase")}
    assert create_model(name, **old).config == model.config
    # the built-in alphabet keeps its messages
    with pytest.raises(DataError, match="outside the alphabet a-z and ': 'é'"):
        model.predict(["héllo"])


@pytest.mark.parametrize(
    "values,msg",
    [
        (dict(graphemes=""), "model.graphemes is empty"),
        (dict(graphemes="abca"), "lists 'a' more than once"),
        (dict(phonemes=[]), "model.phonemes is empty"),
        (dict(phonemes=["a", "a"]), "lists 'a' more than once"),
        (dict(phonemes=["a", "<s>"]), "'<s>'"),
        (dict(phonemes=["a b"]), "without blanks"),
        (dict(graphemes=["a", "b"]), "expected str"),
    ],
)
def test_bad_vocabularies_are_refused_in_one_line(values, msg):
    with pytest.raises(ConfigError, match=msg) as e:
        create_model("g2p_lstm", **values)
    assert "\n" not in str(e.value)


def test_words_are_nfc_normalised_and_lower_cased_unless_the_model_is_case_sensitive():
    a_nfd = unicodedata.normalize("NFD", "Ä")
    folded = create_model("g2p_lstm", graphemes="abä", phonemes=["a", "b", "ɛ"])
    assert folded.check_word(f" B{a_nfd}a ") == "bäa"
    cased = create_model("g2p_lstm", graphemes="abäABÄ", phonemes=["a", "b", "ɛ"], lowercase=False)
    assert cased.check_word(f"B{a_nfd}a") == "BÄa" and cased.vocab.lowercase is False
    assert not cased.vocab == folded.vocab
    with pytest.raises(DataError, match="'A'"):
        create_model("g2p_lstm", graphemes="ab", phonemes=["a"], lowercase=False).check_word("Ab")
