"""Domain adaptation selected without target labels (issue 19, part 2): the adaptation study trains each method
over an lr grid, selects its lr and epoch with each unsupervised validator on source-validation labels and
unlabelled target images, reads the test splits only after every choice, and shows what each validator's pick
reaches beside the oracle selection (an upper bound read off the test labels)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from reprlab.metrics.validators import VALIDATORS
from reprlab.studies import adaptation
from reprlab.studies.base import run_study

# a smaller moons grid for the tests that run the study twice
TINY = dict(
    limit=0,
    epochs=6,
    batch=64,
    optimizer="adam",
    lrs=(1e-3, 3e-3),
    lr_schedule="constant",
    model={},
    every=3,
    n_val=150,
)


def _patch_loader(monkeypatch, wrap):
    real = adaptation.load_domain_pair
    monkeypatch.setattr(adaptation, "load_domain_pair", lambda *a, **k: wrap(*real(*a, **k)))


def test_smoke_study_selects_on_validation_with_the_test_splits_sealed(tmp_path, monkeypatch, seal_test):
    _patch_loader(monkeypatch, lambda s, t: (seal_test(s), seal_test(t)))
    res = run_study("adaptation", "smoke", tmp_path, progress=False)  # reading a test split early would raise
    saved = json.loads((tmp_path / "adaptation" / "results.json").read_text())
    choices = {c["what"]: c for c in saved["choices"]}
    assert all("validation" in c["split"] and "test" not in c["split"].lower() for c in saved["choices"])
    p = adaptation.PRESETS["smoke"]["moons"]
    n_candidates = len(p["lrs"]) * len(range(p["every"], p["epochs"] + 1, p["every"]))
    for method in adaptation.SELECTED:
        for v in VALIDATORS:
            what = f"moons: {method}'s lr and epoch, by {v}" + (
                " (the study's selector)" if v == adaptation.PRIMARY else ""
            )
            assert what in choices, what
            c = choices[what]
            assert c["split"] == adaptation.SELECTION_SPLIT
            assert len(c["scores"]) == n_candidates
            assert c["chosen"] == max(c["scores"], key=c["scores"].get)  # the first best, in candidate order
    oracle = choices["moons: target-oracle (ceiling)'s lr and epoch"]
    assert oracle["split"] == adaptation.ORACLE_SPLIT

    moons = saved["data"]["moons"]
    # the reported numbers are the selector's picks; the oracle column is the best candidate on the test labels
    table = next(t for t in res.tables if "reached by each validator's selection" in t.title)
    assert table.columns[-1] == "oracle (upper bound)"
    assert [r[0] for r in table.rows] == [*adaptation.SELECTED, "mean shortfall from the oracle"]
    for method, row in zip(adaptation.SELECTED, table.rows):
        cand = moons["candidate_target_acc"][method]
        chosen = choices[f"moons: {method}'s lr and epoch, by {adaptation.PRIMARY} (the study's selector)"]["chosen"]
        assert moons["target_acc"][method] == cand[chosen]
        best = max(float(np.mean(a)) for a in cand.values())
        assert row[-1].startswith(f"{best:.3f} (")
        for v, cell in zip(VALIDATORS, row[1:]):
            pick = adaptation._key(*moons["selected"][method][v])
            assert cell == f"{float(np.mean(cand[pick])):.3f} ({pick})"
            assert float(np.mean(cand[pick])) <= best + 1e-12
    short = moons["oracle_shortfall"]
    assert set(short) == set(VALIDATORS) and all(v >= -1e-12 for v in short.values())
    assert any("without target labels" in f.claim for f in res.findings)


def _garble(t, seed: int = 123):
    """The target with its training and validation labels shuffled: only the train-on-target ceiling may notice."""
    g = torch.Generator().manual_seed(seed)
    shuffle = lambda split: (split[0], split[1][torch.randperm(len(split[1]), generator=g)])  # noqa: E731
    return dataclasses.replace(t, train=shuffle(t.train), val=shuffle(t.val))


def test_training_and_selection_read_no_target_label(tmp_path, monkeypatch):
    monkeypatch.setitem(adaptation.PRESETS, "smoke", {"moons": TINY})
    run_study("adaptation", "smoke", tmp_path / "real", progress=False)
    _patch_loader(monkeypatch, lambda s, t: (s, _garble(t)))
    run_study("adaptation", "smoke", tmp_path / "garbled", progress=False)
    real, garbled = (
        json.loads((tmp_path / d / "adaptation" / "results.json").read_text()) for d in ("real", "garbled")
    )
    kept = [c for c in real["choices"] if "target-oracle" not in c["what"]]
    assert len(kept) == len(adaptation.SELECTED) * len(VALIDATORS)
    # every adaptation method's candidates, validator scores and picks are the same with garbage target labels
    assert kept == [c for c in garbled["choices"] if "target-oracle" not in c["what"]]
    for m in adaptation.SELECTED:
        assert real["data"]["moons"]["target_acc"][m] == garbled["data"]["moons"]["target_acc"][m]
    # ... while the ceiling, which trains and is selected on the target's labels, does read them
    assert (
        real["data"]["moons"]["candidate_target_acc"]["target-oracle"]
        != garbled["data"]["moons"]["candidate_target_acc"]["target-oracle"]
    )


def test_non_oracle_training_batches_hold_no_target_label(monkeypatch):
    """``train_method`` gives every method but the ceiling the target's images alone."""
    from reprlab.data import domains
    from reprlab.data.domains import load_domain_pair
    from reprlab.recipes.adaptation import train_method

    seen = []
    real_epoch = domains.PairedBatches.epoch

    def epoch(self, *a, **k):
        for batch in real_epoch(self, *a, **k):
            seen.append("y_t" in batch)
            yield batch

    monkeypatch.setattr(domains.PairedBatches, "epoch", epoch)
    s, t = load_domain_pair("moons", "moons-rotated")
    for method in ("source-only", "mmd", "coral", "dann", "pseudo-label"):
        seen.clear()
        train_method(method, s, t, 0, 1, 256, 1e-3)
        assert seen and not any(seen), method
    seen.clear()
    train_method("target-oracle", s, t, 0, 1, 256, 1e-3)
    assert seen and all(seen)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_candidate_with_a_non_finite_score_ranks_last(bad):
    runs = adaptation._Runs()
    for lr, e, sc in ((1e-3, 1, 0.2), (1e-3, 2, bad), (3e-3, 1, 0.1)):
        runs.states[(lr, e, 0)] = {}
        runs.scores[(lr, e, 0)] = {"im": sc}
    scores = runs.mean_score("im")
    assert scores["lr 0.001, epoch 2"] == -float("inf")
    assert max(scores, key=scores.get) == "lr 0.001, epoch 1"


def test_a_built_in_pair_validates_on_the_source_and_reports_the_target_held_out_once():
    """The per-epoch validation of `reprlab adapt` on a built-in pair reads the source's validation split, so
    trainer.early_stop cannot select on target labels; the target's held-out images are only a final score."""
    import torch

    from reprlab.config import DataConfig, TrainerConfig
    from reprlab.data.domains import domain_task, load_domain_pair

    data = DataConfig(name="moons", val_size=100)
    task = domain_task(data, TrainerConfig(batch_size=32))
    s, t = load_domain_pair("moons", "moons-rotated", None, 100, 0)
    val = torch.cat([b["x"] for b in task.val.epoch(0)])
    held_out = torch.cat([b["x"] for b in task.extras["target_val"].epoch(0)])
    assert torch.equal(val, s.val[0]) and not torch.equal(val, t.val[0])
    assert torch.equal(held_out, t.val[0])
