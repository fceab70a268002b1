"""The `transfer` study's smoke preset: both settings, all five methods, tables, figures and findings."""

import json

from conftest import needs_fashion


@needs_fashion
def test_transfer_study_smoke(tmp_path):
    from reprlab.studies.base import run_study

    res = run_study("transfer", "smoke", tmp_path, progress=False)
    data = json.loads((tmp_path / "transfer" / "results.json").read_text())
    assert data["verdict"] in ("supported", "not supported", "mixed", "inconclusive")
    assert len(data["findings"]) == 4 and all(f["evidence"] for f in data["findings"])
    for key in ("a", "b"):
        runs = data["data"][key]["runs"]["10/0"]
        assert set(runs) == {
            "scratch",
            "frozen + linear",
            "frozen + SVM",
            "frozen + logreg",
            "frozen + SVM, spatial",
            "fine-tune last-k",
            "fine-tune all",
        }
        for m, r in runs.items():
            assert 0.0 <= r["test_acc"] <= 1.0, m
        # scratch reaches its own final validation accuracy, by the last checkpoint at the latest
        assert runs["scratch"]["curve"][-1]["step"] == 10 and runs["scratch"]["seconds"] > 0
        assert (tmp_path / "transfer" / f"tsne_{key}.png").stat().st_size > 1000
    acc = [t for t in res.tables if t.title.startswith("(a)") and "test accuracy" in t.title][0]
    assert [r[0] for r in acc.rows] == [
        "scratch",
        "frozen + linear",
        "frozen + SVM",
        "frozen + logreg",
        "frozen + SVM, spatial",
        "fine-tune last-k",
        "fine-tune all",
    ]
    assert any(t.title == "Targets of the issue" for t in res.tables)
