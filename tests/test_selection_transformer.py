"""The selection rule in the `transformer` study: choices on the CMUdict dev split, the test list read last."""

from __future__ import annotations

import json

from reprlab.studies.base import run_study


def test_transformer_study_chooses_on_dev_and_reads_the_test_list_last(tmp_path, monkeypatch, seal_test):
    from reprlab.data.g2p import G2PSplit, standard_split
    from reprlab.studies import transformer

    sealed = seal_test(standard_split())
    assert isinstance(sealed, G2PSplit)
    monkeypatch.setattr(transformer, "standard_split", lambda: sealed)  # the loader the study uses
    res = run_study("transformer", "smoke", tmp_path, progress=False)

    saved = json.loads((tmp_path / "transformer" / "results.json").read_text())
    choices = saved["choices"]
    assert [c["what"] for c in choices] == ["Transformer: decoding", "LSTM+attention: decoding"]
    for c in choices:
        assert "validation" in c["split"] and "dev" in c["split"] and "test" not in c["split"].lower()
        assert set(c["scores"]) == set(transformer.DECODINGS)
        assert c["chosen"] == min(c["scores"], key=c["scores"].get)  # the lower dev WER wins
        assert all(0 <= v <= 100 for v in c["scores"].values())
    # the test WER was measured after the choice, with the chosen decoding
    assert res.data["decoding"] == {c["what"].split(":")[0]: c["chosen"] for c in choices}
    for runs in res.data["runs"].values():
        assert all(0 <= r["wer"] <= 1 and set(r["dev_wer"]) == set(transformer.DECODINGS) for r in runs)
