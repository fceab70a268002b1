"""The selection rule in the `pretraining` study (issue 19): the fine-tuning lr is chosen on a validation split
carved from the training data, and the test split stays unread until every choice is made."""

from __future__ import annotations

import json

import pytest

import reprlab.studies.pretraining as study
from reprlab.studies.base import run_study


def test_pretraining_chooses_the_lr_on_validation_with_the_test_split_sealed(tmp_path, monkeypatch, seal_test):
    real = study.load_images
    loaded = []

    def sealed(*args, **kwargs):
        data = real(*args, **kwargs)
        loaded.append(data)
        return seal_test(data)

    monkeypatch.setattr(study, "load_images", sealed)
    run_study("pretraining", "smoke", tmp_path, progress=False)  # raises if the test split is read before choosing
    saved = json.loads((tmp_path / "pretraining" / "results.json").read_text())

    (data,) = loaded
    n_val = len(data.val[1])
    assert n_val > 0  # a validation split was carved from digits' training split (which has none of its own)
    p = study.PRESETS["smoke"]
    arms = ("random", *p["types"])
    choices = saved["choices"]
    # one lr per arm and (depth, budget) cell, each chosen on the held-out validation images
    assert len(choices) == len(arms) * len(p["depths"]) * len(p["budgets"])
    lrs = {str(lr) for lr in study.FT_LRS}
    for c in choices:
        assert c["what"].startswith("fine-tuning lr") and "validation" in c["split"] and "test" not in c["split"]
        assert str(n_val) in c["split"]
        assert set(c["scores"]) == lrs and c["chosen"] in lrs
        # the pick is the lr with the lowest validation error
        assert c["scores"][c["chosen"]] == min(c["scores"].values())
    # the scores recorded are the validation errors the study measured, and the table reports the chosen lr
    val = saved["data"]["val_errors"]
    for key, lr in saved["data"]["ft_lr"].items():
        arm, d, b = key.split("|")
        c = next(c for c in choices if c["what"] == f"fine-tuning lr: {study.NAMES[arm]}, depth {d}, {b} labels")
        assert float(c["chosen"]) == lr
        for cand in study.FT_LRS:
            seeds = val[f"{key}|{cand:g}"]
            assert c["scores"][str(cand)] == pytest.approx(sum(seeds) / len(seeds))
    # the test errors were still measured, after the choices
    assert all(0 <= e[0] <= 1 for e in saved["data"]["errors"].values())
