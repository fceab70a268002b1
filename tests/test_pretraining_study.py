"""The `pretraining` study's smoke preset: it runs, fills its tables and figures, and its verdicts follow the
numbers."""

import json

from reprlab.studies.base import run_study


def test_pretraining_study_smoke(tmp_path):
    res = run_study("pretraining", "smoke", tmp_path, progress=False)
    out = tmp_path / "pretraining"
    saved = json.loads((out / "results.json").read_text())
    assert saved["study"] == "pretraining" and saved["preset"] == "smoke"
    errors = saved["data"]["errors"]
    # 3 arms x 2 depths x 2 budgets, one seed each, all real error rates
    assert len(errors) == 12 and all(len(v) == 1 and 0 <= v[0] <= 1 for v in errors.values())
    # depth-1 nets learn digits well beyond chance (90% error) even in the smoke budget
    assert all(errors[f"{arm}|1|500"][0] < 0.6 for arm in ("random", "dae", "rbm")), errors
    # pre-training really ran: layer 1 of each stack reconstructs its input better than a constant 0.5 would
    assert all(v[0] < 0.15 for k, v in saved["data"]["recon"].items() if k.endswith("|1"))
    for f in saved["figures"]:
        assert (out / f["path"]).stat().st_size > 1000
    assert {f["path"] for f in saved["figures"]} >= {"filters_dae.png", "filters_rbm.png", "error_depth1.png"}
    # one seed has no spread: the verdicts say so instead of guessing
    assert all(f["verdict"] == "inconclusive" for f in saved["findings"])
    assert res.tables[0].rows and len(res.tables[0].rows) == 4
