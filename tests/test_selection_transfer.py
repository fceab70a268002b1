"""The transfer study makes its choices on validation and reads the test split only after them (issue 19)."""

from __future__ import annotations

import json

from conftest import needs_fashion


@needs_fashion
def test_transfer_study_chooses_on_validation_with_the_test_split_sealed(tmp_path, monkeypatch, seal_test):
    from reprlab.data import load_images
    from reprlab.studies import transfer
    from reprlab.studies.base import run_study

    loaded = []

    def sealed(*args, **kwargs):
        loaded.append(args[0])
        return seal_test(load_images(*args, **kwargs))

    monkeypatch.setattr(transfer, "load_images", sealed)
    run_study("transfer", "smoke", tmp_path, progress=False)  # any read of a test split before the choices raises
    assert {"fashion-mnist-0-4", "fashion-mnist-5-9", "fashion-mnist", "digits-28"} <= set(loaded)
    data = json.loads((tmp_path / "transfer" / "results.json").read_text())
    best = [c for c in data["choices"] if c["what"].endswith("best transfer method")]
    assert [c["what"] for c in best] == [
        "(a) across classes, 10 labels/class: best transfer method",
        "(b) across tasks, 10 labels/class: best transfer method",
    ]
    for c in data["choices"]:
        assert "validation" in c["split"] and "test" not in c["split"].lower()
        assert c["scores"][c["chosen"]] == max(c["scores"].values())
    for c, key in zip(best, ("a", "b")):
        runs = data["data"][key]["runs"]["10/0"]
        assert set(c["scores"]) == set(runs) - {"scratch"}  # every transfer method, scratch excluded
        for m, score in c["scores"].items():  # the score is the method's validation accuracy (one seed at smoke)
            assert score == runs[m]["val_acc"] and 0.0 <= runs[m]["test_acc"] <= 1.0
    # the finding and the target compare the method chosen on validation, not the argmax of test accuracy
    acc = [f for f in data["findings"] if f["claim"].startswith("Transfer improves accuracy")][0]
    assert all(f"({k}) 10/class: {c['chosen']} " in acc["evidence"] for c, k in zip(best, ("a", "b")))
