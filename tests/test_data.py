import gzip
import struct

import numpy as np
import pytest
import torch

from reprlab.data import TensorBatches, load_images
from reprlab.data.images import read_idx
from reprlab.errors import DataError
from conftest import needs_fashion


def write_idx(path, arr: np.ndarray, gz=False, magic=None):
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) if magic is None else magic
    header += b"".join(struct.pack(">I", d) for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def make_fake_fashion(folder, n_train=60000, n_test=10000, gz=True):
    rng = np.random.default_rng(0)
    sfx = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_train, 28, 28)), gz)
    write_idx(folder / f"train-labels-idx1-ubyte{sfx}", rng.integers(0, 10, n_train), gz)
    write_idx(folder / f"t10k-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_test, 28, 28)), gz)
    write_idx(folder / f"t10k-labels-idx1-ubyte{sfx}", rng.integers(0, 10, n_test), gz)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    arr = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    p = tmp_path / ("a.idx.gz" if gz else "a.idx")
    write_idx(p, arr, gz)
    np.testing.assert_array_equal(read_idx(p, 3, 2, (3, 4)), arr)


def test_idx_errors(tmp_path):
    arr = np.zeros((5, 2, 2))
    p = tmp_path / "x.idx"
    write_idx(p, arr, magic=struct.pack(">HBB", 0, 0x0D, 3))  # float type code
    with pytest.raises(DataError, match="not an unsigned-byte IDX"):
        read_idx(p, 3)
    write_idx(p, arr)
    with pytest.raises(DataError, match="holds 5 items, expected 6"):
        read_idx(p, 3, expect_count=6)
    with pytest.raises(DataError, match="2 dimensions|3 dimensions"):
        read_idx(p, 2)
    p.write_bytes(p.read_bytes()[:-3])
    with pytest.raises(DataError, match="truncated"):
        read_idx(p, 3)
    g = tmp_path / "y.idx.gz"
    g.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 8)[:-5])
    with pytest.raises(DataError, match="corrupt"):
        read_idx(g, 3)


def test_fashion_from_data_dir(tmp_path, monkeypatch):
    make_fake_fashion(tmp_path, gz=False)
    d = load_images("fashion-mnist", data_dir=str(tmp_path), val_size=5000, limit=100)
    assert d.train[0].shape == (100, 1, 28, 28) and d.val[0].shape == (5000, 1, 28, 28)
    assert d.test[0].dtype == torch.float32 and float(d.test[0].max()) <= 1.0
    assert d.num_classes == 10


def test_fashion_from_env(tmp_path, monkeypatch):
    make_fake_fashion(tmp_path)
    monkeypatch.setenv("REPRLAB_DATA", str(tmp_path))
    d = load_images("fashion-mnist", val_size=100)
    assert len(d.train[0]) == 59900


def test_wrong_count_is_clear(tmp_path):
    make_fake_fashion(tmp_path, n_test=9999)
    with pytest.raises(DataError, match="holds 9999 items, expected 10000"):
        load_images("fashion-mnist", data_dir=str(tmp_path))


def test_missing_data_dir_is_clear(tmp_path):
    with pytest.raises(DataError, match="does not exist.*apt-get install dataset-fashion-mnist"):
        load_images("fashion-mnist", data_dir=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="lacks train-images"):
        load_images("fashion-mnist", data_dir=str(tmp_path / "empty"))


def test_digits_always_there():
    d = load_images("digits", val_size=100)
    assert d.train[0].shape[1:] == (1, 8, 8) and len(d.test[0]) == 360


@needs_fashion
def test_real_fashion_mnist():
    d = load_images("fashion-mnist")
    assert d.train[0].shape == (55000, 1, 28, 28) and d.test[0].shape == (10000, 1, 28, 28)
    assert torch.bincount(d.test[1]).tolist() == [1000] * 10


def test_batches_cover_every_index_once_and_replay():
    x = torch.arange(103)
    src = TensorBatches({"x": x}, 10, seed=3)
    seen = torch.cat([b["x"] for b in src.epoch(0)])
    assert sorted(seen.tolist()) == list(range(103)) and src.num_batches() == 11
    again = torch.cat([b["x"] for b in src.epoch(0)])
    assert torch.equal(seen, again)
    assert not torch.equal(seen, torch.cat([b["x"] for b in src.epoch(1)]))
    # resuming mid-epoch yields exactly the rest
    rest = torch.cat([b["x"] for b in src.epoch(0, start=4)])
    assert torch.equal(rest, seen[40:])
    # DDP shards are disjoint and equal-sized
    r0 = torch.cat([b["x"] for b in src.epoch(0, 0, 2)])
    r1 = torch.cat([b["x"] for b in src.epoch(0, 1, 2)])
    assert len(r0) == len(r1) == 51 and not set(r0.tolist()) & set(r1.tolist())
