"""``reprlab.fit``: arrays, tensors, (x, y) and any torch Dataset, trained by the engine; exact resume.

A Dataset is read through a DataLoader (with worker processes) in the same seeded order as reprlab's own
arrays, so a ``TensorDataset`` over an array trains to the same weights as the array itself; a run stopped
by ``max_steps`` and resumed ends with the bytes of an uninterrupted one.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

import reprlab
from reprlab.errors import ConfigError, DataError

from conftest import run_subprocess


def table(n: int = 200, d: int = 6, seed: int = 0) -> np.ndarray:
    """Real-valued rows at several scales (outside [0, 1])."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)) * np.arange(1, d + 1)).astype(np.float32)


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class DictImages(Dataset):
    """uint8 (1, 8, 8) images as dict items, with torchvision's ``classes`` attribute."""

    classes = ("dark", "light")

    def __init__(self, n: int = 96):
        g = torch.Generator().manual_seed(0)
        self.y = torch.arange(n) % 2
        self.x = (torch.rand(n, 1, 8, 8, generator=g) * 120 + 120 * self.y.view(-1, 1, 1, 1)).to(torch.uint8)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": int(self.y[i])}


def test_an_array_a_tensor_and_a_dataset_of_it_train_to_the_same_weights():
    x = table()
    kw = dict(epochs=2, batch_size=32, seed=5, code_dim=3, hidden=(16,))
    m_np = reprlab.fit("ae_mlp", x, **kw)
    m_t = reprlab.fit("ae_mlp", torch.from_numpy(x), **kw)
    m_ds = reprlab.fit("ae_mlp", TensorDataset(torch.from_numpy(x)), workers=2, **kw)
    assert same(m_np, m_t) and same(m_np, m_ds)
    assert not m_np.training  # returned in eval mode
    # the table's range settings were filled in: the data is outside [0, 1]
    assert m_np.config.output == "identity" and m_np.config.loss == "mse" and m_np.config.input_shape == (6,)
    other = reprlab.fit("ae_mlp", x, **{**kw, "seed": 6})
    assert not same(m_np, other)


def test_a_dataset_run_resumes_bitwise_after_a_stop(tmp_path):
    ds = TensorDataset(torch.from_numpy(table(150)))
    kw = dict(epochs=3, batch_size=16, seed=2, latent_dim=3, hidden=(16,), workers=2)
    full, run = reprlab.fit("vae_mlp", ds, out=tmp_path / "full", **kw)
    assert run == tmp_path / "full" and (run / "final_metrics.json").is_file()
    _, cut = reprlab.fit("vae_mlp", ds, out=tmp_path / "cut", max_steps=14, **kw)  # mid-epoch 2 (10 per epoch)
    assert json.loads((cut / "config.json").read_text())["data_source"]["type"] == "Dataset TensorDataset"
    assert (cut / "model.safetensors").read_bytes() != (run / "model.safetensors").read_bytes()
    resumed, _ = reprlab.fit("vae_mlp", ds, out=cut, resume=True, **kw)
    assert (cut / "model.safetensors").read_bytes() == (run / "model.safetensors").read_bytes()
    assert same(full, resumed)
    assert resumed.config.likelihood == "gaussian"


def test_an_array_run_refuses_other_data_on_resume(tmp_path):
    x = table(60)
    reprlab.fit("ae_mlp", x, out=tmp_path / "r", max_steps=2, batch_size=16, hidden=(8,))
    y = x.copy()
    y[0, 0] += 1
    with pytest.raises(DataError, match="not the data"):
        reprlab.fit("ae_mlp", y, out=tmp_path / "r", resume=True, batch_size=16, hidden=(8,))
    # the CLI cannot read the run's data again, and says what to do instead
    res = run_subprocess("eval", tmp_path / "r")
    assert res.returncode == 2 and "reprlab.fit" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_labelled_data_trains_a_classifier_and_unlabelled_is_refused():
    ds = DictImages()
    model = reprlab.fit("classifier", ds, epochs=4, batch_size=16, lr=3e-3, width=8, workers=0)
    assert model.config.num_classes == 2 and model.config.input_shape == (1, 8, 8)
    with torch.no_grad():
        pred = model(ds.x.float() / 255).argmax(1)
    assert (pred == ds.y).float().mean() > 0.9  # dark and light images are easy to tell apart
    x, y = table(), (table()[:, 0] > 0).astype(int)
    m = reprlab.fit("stacked_classifier", (x, y), epochs=1, hidden=(8,))
    assert m.config.num_classes == 2
    with pytest.raises(DataError, match="trains on labels"):
        reprlab.fit("stacked_classifier", x, epochs=1)


def test_a_path_and_validation_data(tmp_path):
    csv = tmp_path / "t.csv"
    x = table(80, 3)
    csv.write_text("a,b,c\n" + "\n".join(",".join(f"{v:.4f}" for v in r) for r in x) + "\n")
    m = reprlab.fit("ae_mlp", csv, epochs=1, hidden=(8,), code_dim=2)
    assert m.config.input_shape == (3,) and m.config.output == "identity"
    m = reprlab.fit("ae_mlp", x, val=x[:10], epochs=1, hidden=(8,), code_dim=2, early_stop="val/loss:2")
    assert m.config.input_shape == (3,)
    with pytest.raises(DataError, match="shape"):
        reprlab.fit("ae_mlp", x, val=table(10, 4), epochs=1)


@pytest.mark.parametrize(
    "data, kw, err, match",
    [
        (table(), {"nope": 1}, ConfigError, "unknown setting 'nope'"),
        ({"x": 1}, {}, DataError, "cannot train on a dict"),
        (np.full((4, 3), np.nan, dtype=np.float32), {}, DataError, "NaN"),
        (table(), {"resume": True}, ConfigError, "give out=RUN"),
        (table(), {"lr": -1}, ConfigError, "trainer.lr must be > 0"),
    ],
)
def test_bad_calls_are_one_line_errors(data, kw, err, match):
    with pytest.raises(err, match=match) as e:
        reprlab.fit("ae_mlp", data, epochs=1, **kw)
    assert "\n" not in str(e.value)


def test_dataset_batches_under_ddp_shard_like_a_distributed_sampler():
    """Each rank reads its DistributedSampler share (equal counts, disjoint, seeded by the epoch); ``start``
    skips batches exactly."""
    from torch.utils.data import DistributedSampler

    from reprlab.data.dataset_batches import DatasetBatches

    ds = TensorDataset(torch.arange(50).float().view(-1, 1))
    src = DatasetBatches(ds, 4, shuffle=True, seed=3)
    seen = []
    for rank in (0, 1):
        rows = torch.cat([b["x"] for b in src.epoch(1, rank, 2)]).view(-1).long().tolist()
        s = DistributedSampler(range(50), num_replicas=2, rank=rank, shuffle=True, seed=3, drop_last=True)
        s.set_epoch(1)
        assert rows == list(s) and len(rows) == 25 and src.num_batches(2) == 7
        tail = torch.cat([b["x"] for b in src.epoch(1, rank, 2, start=3)]).view(-1).long().tolist()
        assert tail == rows[12:]
        seen += rows
    assert len(set(seen)) == 50
    first = [b["x"].view(-1).tolist() for b in src.epoch(0)]
    assert first == [b["x"].view(-1).tolist() for b in src.epoch(0)] != [b["x"].view(-1).tolist() for b in src.epoch(1)]


def test_own_data_under_ddp_through_the_cli(tmp_path):
    """Two gloo processes train on a CSV (each rank reads its shard of the cached split)."""
    x = table(64, 4)
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,c,d\n" + "\n".join(",".join(f"{v:.4f}" for v in r) for r in x) + "\n")
    res = run_subprocess(
        "train", "ae_mlp", "--data", csv, "--devices", "2", "--epochs", "2", "--batch-size", "8",
        "--model.hidden=8", "--no-progress", "--trainer.loggers=none", "--out", tmp_path / "ddp", timeout=240,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    cfg = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert cfg["data_source"]["kind"] == "table" and cfg["model_config"]["output"] == "identity"
    assert np.isfinite(json.loads((tmp_path / "ddp" / "final_metrics.json").read_text())["test/loss"])
