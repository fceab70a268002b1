"""A lexicon of your own, end to end through the CLI: ``reprlab train g2p_transformer --data my_lexicon.txt``
(or ``lexicon:PATH``) trains on a generated non-ASCII lexicon, ``reprlab g2p RUN WORD`` decodes with the saved
vocabulary, ``reprlab eval RUN`` rebuilds the same split, and a changed lexicon is refused."""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pytest

from reprlab.config import DataConfig, TrainerConfig
from reprlab.data.lexicon import lexicon_task, lexicon_task_for_run, read_lexicon
from reprlab.data.spec import parse_data_spec
from reprlab.errors import DataError

# a made-up orthography with one IPA phone per letter, so the phones are checkable
LETTERS = {"a": "a", "ä": "ɛ", "ö": "ø", "ü": "y", "ß": "s", "ñ": "ɲ", "c": "ç", "h": "h", "t": "t", "é": "e"}
TINY = [
    "--model.d_model=16", "--model.n_heads=2", "--model.ff=32", "--model.enc_layers=1", "--model.dec_layers=1",
    "--no-progress", "--trainer.loggers=none", "--batch-size", "16", "--epochs", "1", "--trainer.max_steps=6",
]  # fmt: skip


def write_lexicon(path, n=120, seed=0):
    rng = np.random.default_rng(seed)
    keys = list(LETTERS)
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(keys, int(rng.integers(2, 7)))))
    lines = []
    for i, w in enumerate(sorted(words)):
        cap = w if w.startswith("ß") else w.capitalize()
        phones = " ".join(LETTERS[c] for c in w)
        lines.append(f"{unicodedata.normalize('NFD', cap)}\t{phones}")
        if i % 7 == 0:  # a second pronunciation: both must land in the same split
            lines.append(f"{w}\t{phones} ə")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lexicon_run(tmp_path_factory):
    from reprlab.cli import main

    root = tmp_path_factory.mktemp("lexrun")
    lex = write_lexicon(root / "my_lexicon.txt")
    run = root / "run"
    assert main(["train", "g2p_transformer", "--data", str(lex), "--out", str(run), *TINY]) == 0
    return lex, run


def test_train_on_a_lexicon_saves_its_vocabulary(lexicon_run):
    lex, run = lexicon_run
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["name"] == str(lex)
    graphemes = set(cfg["model_config"]["graphemes"])
    assert {"ä", "ö", "ü", "ß", "ñ", "é"} & graphemes and graphemes <= set(LETTERS)
    assert set(cfg["model_config"]["phonemes"]) <= set(LETTERS.values()) | {"ə"}
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(r.get("step", 0) for r in steps) == 6


def test_the_split_is_by_word_and_eval_rebuilds_it(lexicon_run, cli):
    lex, run = lexicon_run
    from reprlab.train.checkpoint import load_run, read_run_config

    model = load_run(run)
    task = lexicon_task_for_run(read_run_config(run), vocab=model.vocab)
    parts = [set(task.data.part(p)) for p in ("train", "dev", "test")]
    assert parts[0].isdisjoint(parts[1]) and parts[0].isdisjoint(parts[2]) and parts[1].isdisjoint(parts[2])
    assert set().union(*parts) == set(read_lexicon(lex).entries)
    variants = [w for w, p in read_lexicon(lex).entries.items() if len(p) == 2]
    assert variants and all(sum(w in part for part in parts) == 1 for w in variants)
    rc, out, err = cli("eval", run)
    assert rc == 0, err
    metrics = json.loads((run / "eval.json").read_text())
    assert 0.0 <= metrics["test/wer"] <= 1.0 and 0.0 <= metrics["test/per"]
    # the same words, decoded with the run's vocabulary, give the same numbers eval wrote
    expect = model.test_metrics(task.test)
    assert metrics["test/wer"] == pytest.approx(expect["wer"]) and metrics["test/per"] == pytest.approx(expect["per"])


def test_g2p_decodes_with_the_saved_vocabulary(lexicon_run, cli):
    lex, run = lexicon_run
    from reprlab.train.checkpoint import load_run

    model = load_run(run)
    word = next(w for w in read_lexicon(lex).entries if not w.isascii())
    rc, out, err = cli("g2p", run, word, unicodedata.normalize("NFD", word.upper()))
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].split()[1:] == list(model.predict([word])[0])
    assert lines[0].split()[1:] == lines[1].split()[1:]  # NFD and capitals normalised as the lexicon reader does
    assert set(lines[0].split()[1:]) <= set(model.config.phonemes)
    rc, out, err = cli("g2p", run, "quiz")  # letters the lexicon never shows
    assert rc == 2 and "'q'" in err and "training vocabulary" in err


def test_a_changed_lexicon_is_refused_when_the_run_is_rebuilt(lexicon_run, tmp_path):
    lex, run = lexicon_run
    from reprlab.train.checkpoint import read_run_config

    cfg = read_run_config(run)
    data = DataConfig(name=str(lex))
    trainer = TrainerConfig(batch_size=16)
    spec = parse_data_spec(str(lex), "g2p")
    record = lexicon_task(spec, data, trainer).extras["source"]
    assert record["kind"] == "lexicon" and record["vocab"]["graphemes"] == list(cfg["model_config"]["graphemes"])
    # the same lexicon rebuilds with the recorded split and vocabulary
    again = lexicon_task(spec, data, trainer, saved=record)
    assert again.test.words == lexicon_task(spec, data, trainer).test.words
    # one pronunciation edited: refused, in one line naming the file
    changed = tmp_path / "my_lexicon.txt"
    changed.write_text(lex.read_text(encoding="utf-8").replace("\ty", "\tʏ", 1), encoding="utf-8")
    assert changed.read_text(encoding="utf-8") != lex.read_text(encoding="utf-8")
    with pytest.raises(DataError, match="changed since the run was trained") as e:
        lexicon_task(parse_data_spec(str(changed), "g2p"), DataConfig(name=str(changed)), trainer, saved=record)
    assert "\n" not in str(e.value) and str(changed) in str(e.value)
    # other split settings: refused as well
    with pytest.raises(DataError, match="split"):
        other = parse_data_spec(str(lex), "g2p", {"seed": 3})
        lexicon_task(other, data, trainer, saved=record)


def test_eval_refuses_a_changed_lexicon(lexicon_run, cli, tmp_path):
    """Through ``reprlab eval``: needs the run record (config.json data_source), written by ``train``."""
    import shutil

    lex, run = lexicon_run
    if "data_source" not in json.loads((run / "config.json").read_text()):
        pytest.skip("reprlab train does not record data_source in config.json yet")
    copy_dir = tmp_path / "copy"
    shutil.copytree(lex.parent, copy_dir)
    text = lex.read_text(encoding="utf-8")
    moved = copy_dir / "my_lexicon.txt"
    cfg = json.loads((copy_dir / "run" / "config.json").read_text())
    cfg["data"]["name"] = str(moved)
    (copy_dir / "run" / "config.json").write_text(json.dumps(cfg))
    moved.write_text(text.replace("\ty", "\tʏ", 1), encoding="utf-8")
    rc, _, err = cli("eval", copy_dir / "run")
    assert rc == 2 and "changed since the run was trained" in err


def test_lexicon_prefix_and_bad_data_under_g2p(cli, tmp_path):
    lex = write_lexicon(tmp_path / "words.csv", n=30)  # a .csv suffix: the prefix forces the lexicon reader
    rc, out, err = cli("train", "g2p_transformer", "--data", f"lexicon:{lex}", "--out", tmp_path / "r", *TINY)
    assert rc == 0, err
    bad = tmp_path / "bad.txt"
    bad.write_text("käse\tk ɛ z ə\nbrot\n", encoding="utf-8")
    rc, _, err = cli("train", "g2p_transformer", "--data", bad, "--out", tmp_path / "r2", *TINY)
    assert rc == 2 and "line 2" in err and not (tmp_path / "r2").exists()
    rc, _, err = cli("train", "g2p_transformer", "--data", "digits", "--out", tmp_path / "r3", *TINY)
    assert rc == 2 and "lexicon file" in err
