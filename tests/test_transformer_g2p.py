"""G2P data split, WER/PER by hand, and the CLI (train, g2p, bad input)."""

import pytest
import torch

from reprlab.data.g2p import (
    EOS,
    PHONEMES,
    G2PBatches,
    check_word,
    decode_phones,
    encode_prons,
    standard_split,
)
from reprlab.data.g2p import test_entries as reference_entries
from reprlab.errors import DataError
from reprlab.metrics.edit import edit_distance, wer_per


def test_standard_split_sizes_and_no_overlap():
    sp = standard_split()
    assert len(sp.test) == 11994  # the Yao & Zweig-sized list shipped with reprlab
    assert sum(len(p) for p in sp.test.values()) == 12855 - 27  # one per line, exact duplicates dropped
    assert not set(sp.train) & set(sp.test)
    assert not set(sp.dev) & set(sp.test)
    assert not set(sp.train) & set(sp.dev)
    rest = sorted(set(sp.train) | set(sp.dev))
    assert [w for i, w in enumerate(rest) if i % 21 == 20] == sorted(sp.dev)  # every 21st word
    assert 100_000 < len(sp.train) < 115_000
    phones = {ph for prons in sp.train.values() for p in prons for ph in p}
    assert phones == set(PHONEMES) and len(PHONEMES) == 39  # stress removed


def test_test_words_keep_all_their_references():
    t = reference_entries()
    assert t["abs"] == (("AE", "B", "Z"), ("EY", "B", "IY", "EH", "S"))


def test_bucketed_batches_are_trimmed_deterministic_and_cover_every_pair():
    sp = standard_split()
    words = dict(list(sp.train.items())[:3000])
    src = G2PBatches(words, 64, seed=1)
    batches = list(src.epoch(0))
    assert len(batches) == src.num_batches()
    assert sorted(torch.cat([b["idx"] for b in batches]).tolist()) == sorted(src.idx.tolist())
    pad_fraction = sum(int((b["src"] == 0).sum()) for b in batches) / sum(b["src"].numel() for b in batches)
    assert pad_fraction < 0.15  # bucketing: a random order pads about half of the letters
    assert all((b["src"][:, -1] != 0).any() and (b["tgt"][:, -1] != 0).any() for b in batches)  # trimmed
    again = list(G2PBatches(words, 64, seed=1).epoch(0))
    assert all(torch.equal(a["src"], b["src"]) for a, b in zip(batches, again))
    assert not torch.equal(batches[0]["idx"], next(src.epoch(1))["idx"])


def test_encode_decode_round_trip():
    ids = encode_prons([("HH", "AH", "L", "OW")])[0].tolist()
    assert ids[-1] == EOS and decode_phones(ids[1:]) == ("HH", "AH", "L", "OW")


def test_wer_per_by_hand():
    refs = [[("K", "AE", "T")], [("D", "AO", "G"), ("D", "AA", "G")], [("F", "IH", "SH")], [("B", "IY")]]
    preds = [("K", "AE", "T"), ("D", "AA", "G"), ("F", "IH"), ("P", "IY", "Z")]
    # errors: word 3 (one deletion), word 4 (one substitution + one insertion); word 2 matches its 2nd reference
    s = wer_per(preds, refs)
    assert s["wer"] == pytest.approx(2 / 4)
    assert s["per"] == pytest.approx((0 + 0 + 1 + 2) / (3 + 3 + 3 + 2))
    assert edit_distance(("A", "B", "C"), ("C", "B", "A")) == 2
    assert edit_distance((), ("A", "B")) == 2


def test_wer_per_picks_the_closest_reference():
    s = wer_per([("AH", "B")], [[("X", "Y", "Z", "W"), ("AH", "B", "Z")]])
    assert s == {"wer": 1.0, "per": pytest.approx(1 / 3)}


@pytest.mark.parametrize(
    "word,msg", [("", "empty word"), ("r2d2", "'2'"), ("héllo", "'é'"), ("a b", "' '"), ("x" * 40, "at most")]
)
def test_check_word_rejects_bad_words(word, msg):
    with pytest.raises(DataError, match=msg):
        check_word(word)
    assert check_word(" O'Neil ") == "o'neil"


@pytest.fixture(scope="module")
def g2p_run(tmp_path_factory):
    from reprlab.cli import main

    out = tmp_path_factory.mktemp("g2p") / "run"
    rc = main(
        [
            "train",
            "g2p_transformer",
            "--data",
            "cmudict",
            "--limit",
            "300",
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--no-progress",
            "--trainer.tensorboard=false",
            "--trainer.max_steps=2",
            "--model.d_model=32",
            "--model.ff=64",
            "--model.enc_layers=1",
            "--model.dec_layers=1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    return out


def test_cli_g2p_prints_pronunciations_and_flags_bad_words(cli, g2p_run, tmp_path):
    rc, out, err = cli("g2p", g2p_run, "hello", "", "r2d2", "world", "--beam", "2")
    lines = out.strip().splitlines()
    assert rc == 2
    assert [ln.split("  ")[0] for ln in lines] == ["HELLO", "WORLD"]  # the good words still come out
    assert all(set(ln.split("  ", 1)[1].split()) <= set(PHONEMES) for ln in lines if "  " in ln)
    errs = err.strip().splitlines()
    assert len(errs) == 2 and "empty word" in errs[0] and "'r2d2'" in errs[1]
    f = tmp_path / "words.txt"
    f.write_text("cat\n\ndog\n")
    rc, out, err = cli("g2p", g2p_run, "--file", f)
    assert rc == 0 and [ln.split("  ")[0] for ln in out.strip().splitlines()] == ["CAT", "DOG"] and err == ""
    assert cli("g2p", g2p_run, "--file", f, "--ensemble", g2p_run, g2p_run) == (rc, out, err)  # copies decode as one


@pytest.mark.parametrize(
    "args,msg",
    [
        (["g2p", "/no/such/run", "hello"], "/no/such/run"),
        (["g2p", "RUN"], "give words"),
        (["g2p", "RUN", "--file", "/no/such/words.txt"], "does not exist"),
        (["g2p", "RUN", "hi", "--beam", "0"], "must be > 0"),
        (["eval", "RUN", "--beam", "0"], "--beam must be >= 1"),
        (["train", "g2p_lstm", "--data", "digits", "--no-progress"], "cmudict"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(cli, g2p_run, args, msg):
    args = [str(g2p_run) if a == "RUN" else a for a in args]
    rc, out, err = cli(*args)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and msg in err
    assert "Traceback" not in err


def test_transformer_study_smoke(tmp_path):
    from reprlab.studies.base import run_study

    threads = torch.get_num_threads()
    res = run_study("transformer", "smoke", tmp_path, seeds=(0,), progress=False)
    assert torch.get_num_threads() == threads
    assert (tmp_path / "transformer" / "results.json").is_file() and (
        tmp_path / "transformer" / "attention.png"
    ).is_file()
    params = res.data["params"]
    assert abs(params["Transformer"] - params["LSTM+attention"]) / params["Transformer"] < 0.05  # matched sizes
    assert len(res.findings) == 3 and all(
        f.verdict in ("supported", "not supported", "inconclusive") for f in res.findings
    )
    for runs in res.data["runs"].values():
        assert all(0 <= r["wer"] <= 1 and r["tokens_per_s"] > 0 for r in runs)


def test_shipped_test_list_is_the_documented_file():
    import hashlib
    from importlib import resources

    root = resources.files("reprlab.data").joinpath("cmudict")
    data = root.joinpath("cmudict-0.7b.test").read_bytes()
    assert (
        hashlib.sha256(data).hexdigest() == "ece787fd3d88c7b130d43e7c2307ac11e6dfb4c052d661c37808ec7ed1df8574"
    )  # PROVENANCE.md
    assert "BSD" in root.joinpath("ThirdPartyNotice.md").read_text()


def test_cli_eval_beam_writes_its_own_file_and_keeps_the_greedy_one(cli, g2p_run):
    import json

    assert cli("eval", g2p_run)[0] == 0
    greedy = json.loads((g2p_run / "eval.json").read_text())
    rc, out, err = cli("eval", g2p_run, "--beam", "2")
    assert rc == 0, err
    beam = json.loads((g2p_run / "eval-beam2.json").read_text())
    assert json.loads((g2p_run / "eval.json").read_text()) == greedy  # not overwritten
    assert beam["test/beam"] == 2 and 0 <= beam["test/wer"] <= 1 and "test/beam" not in greedy


def test_cli_eval_ensemble_writes_its_own_file(cli, g2p_run, tmp_path):
    import json

    rc, out, err = cli("eval", g2p_run, "--ensemble", g2p_run, "--beam", "2")
    assert rc == 0, err
    res = json.loads((g2p_run / "eval-ensemble2-beam2.json").read_text())
    assert res["test/ensemble"] == [str(g2p_run)] * 2 and 0 <= res["test/wer"] <= 1
    # an ensemble of a run with itself decodes exactly as the run does
    assert cli("eval", g2p_run, "--beam", "2")[0] == 0
    alone = json.loads((g2p_run / "eval-beam2.json").read_text())
    assert (res["test/wer"], res["test/per"]) == (alone["test/wer"], alone["test/per"])


def test_cli_eval_ensemble_refuses_a_run_that_is_not_g2p(cli, g2p_run, tmp_path):
    ae = tmp_path / "ae"
    assert (
        cli(
            "train",
            "ae_mlp",
            "--data",
            "digits",
            "--epochs",
            "1",
            "--no-progress",
            "--trainer.max_steps=1",
            "--trainer.tensorboard=false",
            "--out",
            ae,
        )[0]
        == 0
    )
    for other, msg in [(ae, "needs G2P runs"), (tmp_path / "missing", "missing")]:
        rc, out, err = cli("eval", g2p_run, "--ensemble", other)
        assert rc == 2 and len(err.strip().splitlines()) == 1 and msg in err, err


def test_transformer_study_batch_order_follows_the_seed(tmp_path, monkeypatch):
    from reprlab.studies import transformer
    from reprlab.studies.base import StudyContext

    class Seen(Exception):
        pass

    orders = []

    class Untrained:  # what the study reads from a trained model and its batch source
        tokens, elapsed = 1, 1.0

        def predict(self, words, beam=1):
            return [("AH",)] * len(words)

    def record(name, cfg, train, seconds, seed, batch, lr=1e-3):
        first = next(iter(train.epoch(0)))  # the first batch this model would train on
        orders.append((seed, name, torch.cat([first[k].flatten() for k in sorted(first)])))
        if len(orders) == 4:
            raise Seen  # both seeds seen: stop before the report
        return Untrained(), Untrained()

    monkeypatch.setitem(transformer.PRESETS, "smoke", {**transformer.PRESETS["smoke"], "seeds": 2})
    monkeypatch.setattr(transformer, "_train", record)
    with pytest.raises(Seen):
        transformer.run(StudyContext("transformer", "smoke", tmp_path, seeds=(0, 1), progress=False))
    (s0, _, a), (_, _, b), (s1, _, c), (_, _, d) = orders
    assert (s0, s1) == (0, 1)
    assert torch.equal(a, b) and torch.equal(c, d)  # both models of one seed see the same batches
    assert a.shape != c.shape or not torch.equal(a, c)  # and another seed another order
