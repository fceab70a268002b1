"""The `regularized` study runs end to end on its smoke preset and reports verdicts from its numbers."""

import json

from reprlab.studies.base import run_study


def test_smoke_preset_writes_tables_figures_and_verdicts(tmp_path):
    res = run_study("regularized", "smoke", tmp_path, progress=False)
    out = json.loads((tmp_path / "regularized" / "results.json").read_text())
    assert out["verdict"] in ("supported", "not supported", "mixed")
    assert len(out["findings"]) == 4 and all(
        f["verdict"] in ("supported", "not supported", "mixed") for f in out["findings"]
    )
    titles = " ".join(t["title"] for t in out["tables"])
    for what in ("Gaussian noise", "sparsity", "Linear probe", "log-likelihood"):
        assert what in titles
    for fig in res.figures:
        assert (tmp_path / "regularized" / fig.path).stat().st_size > 1000
    d = out["data"]
    # numbers are real: MSEs in (0, 1), sigmoid-code activations in (0, 1), NLL bound >= the IWAE estimate
    assert all(0 < v[0] < 1 for e in d["mse_vs_noise"].values() for v in e.values())
    assert all(0 < m < 1 for m in d["sparsity"]["sparse AE"]["mean"])
    assert d["vae_neg_elbo"][0] >= d["vae_nll"][0] - 0.5
    assert 0.1 < d["probe"]["raw pixels"][0] <= 1
