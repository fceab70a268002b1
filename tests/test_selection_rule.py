"""The selection rule in code (DESIGN.md section 8): choices on validation, recorded; the test split last."""

from __future__ import annotations

import json

import pytest

from reprlab.report.html import build_report
from reprlab.studies.base import StudyContext, StudyResult, run_study


def test_choose_takes_the_best_on_validation_and_records_it(tmp_path):
    ctx = StudyContext("s", "smoke", tmp_path)
    assert ctx.choose("lr", {1e-3: 0.7, 3e-3: 0.9, 1e-2: 0.8}, split="validation", by="accuracy") == 3e-3
    assert ctx.choose("objective", {"a": 2.0, "b": 1.5}, split="validation", by="FD", lower_is_better=True) == "b"
    c = ctx.choices[0]
    assert (c.what, c.chosen, c.split, c.by) == ("lr", "0.003", "validation", "accuracy")
    assert c.scores == {"0.001": 0.7, "0.003": 0.9, "0.01": 0.8}


def test_choose_refuses_the_test_split_and_any_choice_after_reading_it(tmp_path):
    ctx = StudyContext("s", "smoke", tmp_path)
    with pytest.raises(ValueError, match="validation"):
        ctx.choose("lr", {1: 0.5}, split="test set", by="accuracy")

    class Data:
        test = ("x", "y")

    assert ctx.read_test(Data()) == ("x", "y")
    with pytest.raises(RuntimeError, match="after reading the test split"):
        ctx.choose("lr", {1: 0.5, 2: 0.6}, split="validation", by="accuracy")


def test_the_sealed_test_split_raises_until_read_test_opens_it(tmp_path, seal_test):
    from reprlab.data import load_images

    data = seal_test(load_images("digits", val_size=0))
    with pytest.raises(AssertionError, match="before the study made its choices"):
        x, y = data.test
    x, y = StudyContext("s", "smoke", tmp_path).read_test(data)
    assert len(x) == len(y) > 0


def test_results_json_and_the_report_show_the_choices(tmp_path, monkeypatch):
    from reprlab.studies import base

    def fake(ctx):
        ctx.choose("width", {"64": 0.81, "128": 0.84}, split="validation (10% of train)", by="accuracy")
        ctx.read_test(type("D", (), {"test": ()})())
        return StudyResult("fake", "", "a claim", ctx.preset, "reprlab study fake")

    monkeypatch.setitem(base._STUDIES, "fake", base.StudySpec("fake", "Fake study", fake, 1))
    monkeypatch.setattr(base, "_load_all", lambda: None)
    run_study("fake", "smoke", tmp_path, progress=False)
    saved = json.loads((tmp_path / "fake" / "results.json").read_text())
    assert saved["choices"] == [
        {"what": "width", "chosen": "128", "split": "validation (10% of train)", "by": "accuracy",
         "scores": {"64": 0.81, "128": 0.84}}
    ]  # fmt: skip
    html, md = build_report(tmp_path)
    for text in (html.read_text(), md.read_text()):
        assert "How choices were made" in text and "validation (10% of train)" in text and "128 0.84" in text
