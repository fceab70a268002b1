"""The selection rule for the autoencoder family (DESIGN.md section 8): the `autoencoder` and `regularized` studies
train with the test split sealed, read it once through ctx.read_test after training, and choose nothing on it."""

from __future__ import annotations

import importlib
import json

import pytest

from reprlab.studies.base import StudyContext, run_study


@pytest.mark.parametrize("study", ["autoencoder", "regularized"])
def test_study_trains_with_the_test_split_sealed_and_reads_it_once(study, tmp_path, monkeypatch, seal_test):
    import reprlab.data

    real = reprlab.data.load_images
    loaded = []

    def sealed_loader(*args, **kwargs):
        data = seal_test(real(*args, **kwargs))
        loaded.append(data)
        return data

    monkeypatch.setattr(reprlab.data, "load_images", sealed_loader)
    opened = []
    sealed_read = StudyContext.read_test  # seal_test's: opens the sealed split

    def counting_read(self, data):
        opened.append(data)
        return sealed_read(self, data)

    monkeypatch.setattr(StudyContext, "read_test", counting_read)
    module = importlib.import_module(f"reprlab.studies.{study}")
    real_fit, fits = module.fit, []

    def fit_before_test(*args, **kwargs):  # every training run happens before the test split is opened
        assert not opened, "a model was trained after the test split was read"
        fits.append(1)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(module, "fit", fit_before_test)

    res = run_study(study, "smoke", tmp_path, progress=False)  # a sealed-split read before read_test would raise

    assert len(loaded) == 1 and opened == loaded  # the study loaded through the patched loader, opened it once
    assert len(fits) >= 3  # its models trained through the patched fit, all before the test split was opened
    out = json.loads((tmp_path / study / "results.json").read_text())
    assert out["verdict"] in ("supported", "not supported", "mixed") and len(res.findings) >= 2
    assert all("validation" in c["split"] and "test" not in c["split"].lower() for c in out["choices"])
    # the test numbers were computed after the split was opened: test-set tables hold real measurements
    assert any("test" in t["title"].lower() for t in out["tables"])
    assert any("No setting was chosen from data" in n for n in out["notes"])


def test_reading_the_sealed_test_split_early_fails_the_run(tmp_path, monkeypatch, seal_test):
    """The guard bites: a study that reads data.test before ctx.read_test raises under the sealed loader."""
    import reprlab.data
    from reprlab.studies import base

    real = reprlab.data.load_images
    monkeypatch.setattr(reprlab.data, "load_images", lambda *a, **k: seal_test(real(*a, **k)))

    def early(ctx):
        data, _ = ctx.images("digits")
        x_te, _ = data.test  # the mistake the guard exists to catch
        return base.StudyResult("early", "", "", ctx.preset, "")

    monkeypatch.setitem(base._STUDIES, "early", base.StudySpec("early", "Early reader", early, 1))
    monkeypatch.setattr(base, "_load_all", lambda: None)
    with pytest.raises(AssertionError, match="before the study made its choices"):
        run_study("early", "smoke", tmp_path, progress=False)
