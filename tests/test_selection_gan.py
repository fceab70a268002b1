"""The GAN study under the selection rule: it trains, scores and picks its best objective with the test split
sealed (any read raises until ``ctx.read_test`` opens it), records that choice on a validation split, and runs
three seeds even at the smoke preset."""

from __future__ import annotations

import json

import numpy as np
import torch

import reprlab.data
from reprlab.studies.base import run_study
from reprlab.studies.gan import _coverage, study_seeds


def test_gan_study_chooses_on_validation_with_the_test_split_sealed(tmp_path, monkeypatch, seal_test):
    real = reprlab.data.load_images
    loaded = []

    def sealed(*a, **k):
        loaded.append(a[0] if a else k.get("name"))
        return seal_test(real(*a, **k))

    monkeypatch.setattr(reprlab.data, "load_images", sealed)
    r = run_study("gan", "smoke", tmp_path, progress=False)
    assert loaded == ["digits"]  # the study went through the sealed loader
    saved = json.loads((tmp_path / "gan" / "results.json").read_text())
    (choice,) = [c for c in saved["choices"] if c["what"].startswith("best DCGAN objective")]
    assert "validation" in choice["split"] and "test" not in choice["split"].lower()
    assert set(choice["scores"]) == {"non-saturating", "minimax", "wgan-gp"}
    assert choice["chosen"] == min(choice["scores"], key=choice["scores"].get) == saved["data"]["best"]
    # the choice's scores are the mean validation FD over the seeds, not the test FD
    for obj, scores in saved["data"]["scores"].items():
        assert len(scores) == 3  # three seeds at the smoke preset too
        assert np.mean([s["fd_val"] for s in scores]) == choice["scores"][obj]
    assert saved["data"]["seeds"] == [0, 1, 2] and r.data["best"] == choice["chosen"]


def test_study_seeds_tops_up_to_three():
    assert study_seeds((0,)) == (0, 1, 2)
    assert study_seeds((5,)) == (5, 0, 1)
    assert study_seeds((0, 1, 2, 3)) == (0, 1, 2, 3)


def test_coverage_from_features_matches_class_coverage():
    from reprlab.metrics.classifier_features import (
        FeatureClassifier,
        FeatureClassifierConfig,
        class_coverage,
        classifier_features,
    )

    torch.manual_seed(0)
    clf = FeatureClassifier(FeatureClassifierConfig(channels=(4, 8), feature_dim=8)).eval()
    x = torch.rand(200, 1, 8, 8)
    hist, covered = _coverage(clf, classifier_features(clf, x).detach())
    want_hist, want_covered = class_coverage(clf, x)
    assert np.allclose(hist, want_hist) and covered == want_covered


def test_the_quick_recipe_is_the_one_the_validation_script_chose():
    """RECIPES["quick"] are the winners of experiments/gan_quick_recipe.py, which scores on validation only."""
    from pathlib import Path

    from reprlab.studies.gan import RECIPES

    out = json.loads((Path(__file__).parents[1] / "experiments" / "out" / "gan_quick_recipe.json").read_text())
    assert "validation" in out["split"] and "test" not in out["split"].lower()
    rows = {r["name"]: r for r in out["candidates"]}
    for obj, key in (("non-saturating", "NS"), ("minimax", "MM"), ("wgan-gp", "WGP")):
        group = "wgan-gp" if obj == "wgan-gp" else "non-saturating and minimax"
        r = rows[f"{key} {out['best'][group]}"]
        want = RECIPES["quick"][obj]
        assert (r["lr"], *r["betas"], r["ema"], r["n_critic"]) == (
            want["lr"], want["beta1"], want["beta2"], want["ema"], want["n_critic"]
        )  # fmt: skip
