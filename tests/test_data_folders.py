"""Image folders: layouts, labels, splits, conversions, the decode-once cache, streaming, bad input."""

import multiprocessing as mp
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from reprlab.data import TensorBatches
from reprlab.data import folders as F
from reprlab.data.arraybatches import ArrayBatches, open_npy_memmap
from reprlab.data.folders import list_folder, open_folder, write_image_folder
from reprlab.data.splits import split_from_record
from reprlab.errors import DataError
from conftest import REPO, needs_fashion


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    c = tmp_path / "cache"
    monkeypatch.setenv("REPRLAB_CACHE", str(c))
    return c / "folders"


@pytest.fixture(scope="module")
def digits_u8():
    from sklearn.datasets import load_digits

    d = load_digits()
    return np.round(d.images / 16.0 * 255).astype(np.uint8), d.target.astype(np.int64)


def opened(path, **kw):
    return open_folder(path, progress=False, **kw)


def test_class_folders_give_labels_in_written_order(tmp_path, digits_u8):
    u, y = digits_u8
    write_image_folder(tmp_path / "d", u[:300], y[:300])
    d = opened(tmp_path / "d")
    assert d.classes == tuple(str(i) for i in range(10)) and d.num_classes == 10
    assert d.input_shape == (1, 8, 8) and isinstance(d.x, np.memmap)
    np.testing.assert_array_equal(np.asarray(d.x)[:, 0], u[:300])
    np.testing.assert_array_equal(d.y, y[:300])
    assert d.files[0] == f"{y[0]}/00000.png" and d.files[1].endswith("00001.png")


def test_png_folder_equals_in_memory_arrays_bitwise(tmp_path, digits_u8):
    """The folder's cache and batches hold exactly the in-memory values, so training can be bitwise equal."""
    u, y = digits_u8
    n = 400
    write_image_folder(tmp_path / "d", u[:n], y[:n])
    d = opened(tmp_path / "d", seed=7)
    xt = torch.from_numpy(u[:n].copy()).unsqueeze(1).float().div_(255.0)  # what the built-in loaders do
    yt = torch.from_numpy(y[:n])
    for part, shuffle in (("train", True), ("val", False), ("test", False)):
        idx = torch.from_numpy(d.split.part(part))
        ref = TensorBatches({"x": xt[idx], "y": yt[idx]}, 32, shuffle=shuffle, seed=3)
        got = d.batches(part, 32, seed=3)
        assert got.num_batches() == ref.num_batches() and got.num_batches(2) == ref.num_batches(2)
        for epoch in (0, 1):
            pairs = list(zip(ref.epoch(epoch), got.epoch(epoch), strict=True))
            for a, b in pairs:
                assert b["x"].dtype == torch.float32 and torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])
        # DDP shards and a resumed epoch (start=k) match too
        for a, b in zip(ref.epoch(2, rank=1, world_size=2, start=1), got.epoch(2, rank=1, world_size=2, start=1)):
            assert torch.equal(a["x"], b["x"])


@needs_fashion
def test_fashion_png_folder_equals_idx_images(tmp_path):
    from reprlab.data.images import load_fashion_mnist

    x, y = load_fashion_mnist("train")
    n = 1500
    u = (x[:n, 0] * 255).round().to(torch.uint8).numpy()
    write_image_folder(tmp_path / "f", u, y[:n].numpy())
    d = opened(tmp_path / "f", val_fraction=0.0, test_fraction=0.0)
    b = next(d.batches("train", n, shuffle=False).epoch(0))
    assert torch.equal(b["x"], x[:n]) and torch.equal(b["y"], y[:n])


def test_train_test_subfolders_are_the_split(tmp_path, digits_u8):
    u, y = digits_u8
    write_image_folder(tmp_path / "d" / "train", u[:200], y[:200])
    write_image_folder(tmp_path / "d" / "test", u[200:260], y[200:260])
    d = opened(tmp_path / "d", val_fraction=0.1, test_fraction=0.5)
    assert d.split.method == "given"
    np.testing.assert_array_equal(d.split.test, np.arange(200, 260))
    assert all(d.files[i].startswith("test/") for i in d.split.test)
    assert set(d.split.val) <= set(range(200)) and len(d.split.val) == pytest.approx(20, abs=5)
    np.testing.assert_array_equal(np.asarray(d.x)[d.split.test, 0], u[200:260])
    np.testing.assert_array_equal(d.y[d.split.test], y[200:260])


def test_flat_folder_is_unlabelled(tmp_path, digits_u8):
    u, _ = digits_u8
    write_image_folder(tmp_path / "flat", u[:50])
    d = opened(tmp_path / "flat")
    assert d.y is None and not d.labelled and d.classes == ()
    b = next(d.batches("train", 8).epoch(0))
    assert set(b) == {"x"} and b["x"].shape == (8, 1, 8, 8)
    with pytest.raises(DataError, match="has no labels.*one sub-folder per class"):
        d.require_labels()


def test_one_class_is_refused_when_labels_are_needed(tmp_path, digits_u8):
    u, _ = digits_u8
    write_image_folder(tmp_path / "one", u[:20], np.zeros(20, dtype=int), classes=["cats"])
    d = opened(tmp_path / "one")
    d.require_labels(min_classes=1)
    with pytest.raises(DataError, match=r"has 1 class \('cats'\).*at least 2"):
        d.require_labels()


def test_stratified_split_is_seeded_and_recorded(tmp_path, digits_u8):
    u, y = digits_u8
    write_image_folder(tmp_path / "d", u[:500], y[:500])
    a = opened(tmp_path / "d", seed=3, test_fraction=0.2, val_fraction=0.1)
    b = opened(tmp_path / "d", seed=3, test_fraction=0.2, val_fraction=0.1)
    c = opened(tmp_path / "d", seed=4, test_fraction=0.2, val_fraction=0.1)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(a.split.part(part), b.split.part(part))
    assert not np.array_equal(a.split.test, c.split.test)
    parts = [set(a.split.train), set(a.split.val), set(a.split.test)]
    assert sum(map(len, parts)) == 500 and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    # stratified: each class keeps its share of the test part (within rounding)
    for c_ in range(10):
        members = np.sum(a.y == c_)
        assert abs(np.sum(a.y[a.split.test] == c_) - 0.2 * members) <= 1
    rec = a.record()["split"]
    assert rec["method"] == "stratified" and rec["seed"] == 3
    again = split_from_record(rec, len(a), a.y)
    np.testing.assert_array_equal(again.test, a.split.test)
    with pytest.raises(DataError, match="no longer gives the recorded split"):
        split_from_record(rec, len(a), np.roll(a.y, 1))


def _write_rgb(path, arr):
    Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(path)


def test_size_and_channels_with_known_pixels(tmp_path):
    # 8 wide x 4 high: 2 columns of 255, 4 of a (200, 100, 50) colour, 2 of 0; the center square is the colour
    img = np.zeros((4, 8, 3), dtype=np.uint8)
    img[:, :2] = 255
    img[:, 2:6] = (200, 100, 50)
    (tmp_path / "rgb").mkdir()
    _write_rgb(tmp_path / "rgb" / "a.png", img)
    d = opened(tmp_path / "rgb", size=4, test_fraction=0, val_fraction=0)
    assert d.input_shape == (3, 4, 4)
    np.testing.assert_array_equal(d.x[0].transpose(1, 2, 0), np.broadcast_to([200, 100, 50], (4, 4, 3)))
    g = opened(tmp_path / "rgb", size=2, channels=1, test_fraction=0, val_fraction=0)
    # ITU-R 601 luma: 200*.299 + 100*.587 + 50*.114 = 124.2; a constant square resizes to the constant
    assert g.input_shape == (1, 2, 2) and np.all(np.asarray(g.x) == 124)
    (tmp_path / "gray").mkdir()
    Image.fromarray(np.full((5, 5), 77, dtype=np.uint8)).save(tmp_path / "gray" / "g.png")
    c = opened(tmp_path / "gray", channels=3, test_fraction=0, val_fraction=0)
    assert c.input_shape == (3, 5, 5) and np.all(np.asarray(c.x) == 77)
    b = next(c.batches("train", 1).epoch(0))["x"]
    assert torch.equal(b, torch.full((1, 3, 5, 5), 77 / 255.0))
    # a JPEG photo, resized: shape and channels as asked
    (tmp_path / "jpg").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)).save(tmp_path / "jpg" / "p.jpg")
    j = opened(tmp_path / "jpg", size=16, test_fraction=0, val_fraction=0)
    assert j.input_shape == (3, 16, 16)


def test_mixed_sizes_need_size(tmp_path):
    (tmp_path / "m").mkdir()
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "m" / "a.png")
    Image.fromarray(np.zeros((10, 12), dtype=np.uint8)).save(tmp_path / "m" / "b.png")
    with pytest.raises(DataError, match=r"b\.png is 12x10 but the first image is 8x8; pass data\.size"):
        opened(tmp_path / "m")
    assert opened(tmp_path / "m", size=6).input_shape == (1, 6, 6)


def test_grayscale_then_colour_needs_channels(tmp_path):
    (tmp_path / "m").mkdir()
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp_path / "m" / "a.png")
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / "m" / "b.png")
    with pytest.raises(DataError, match=r"b\.png is in colour.*data\.channels=3"):
        opened(tmp_path / "m")
    assert opened(tmp_path / "m", channels=3).input_shape == (3, 4, 4)


def test_bad_folders_are_refused_in_one_line(tmp_path, digits_u8):
    u, y = digits_u8
    cases = []
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    cases.append((tmp_path / "empty", r"holds no PNG or JPEG images \(found 1 other files, e\.g\. notes\.txt\)"))
    write_image_folder(tmp_path / "trunc", u[:3])
    bad = tmp_path / "trunc" / "00001.png"
    bad.write_bytes(bad.read_bytes()[:40])
    cases.append((tmp_path / "trunc", r"00001\.png: cannot read the image"))
    write_image_folder(
        tmp_path / "tj", np.random.default_rng(0).integers(0, 256, (2, 64, 64), dtype=np.uint8), fmt="jpg"
    )
    j = tmp_path / "tj" / "00001.jpg"
    j.write_bytes(j.read_bytes()[: len(j.read_bytes()) // 2])
    cases.append((tmp_path / "tj", r"00001\.jpg: cannot read the image \(image file is truncated"))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.png").write_bytes(b"not a png at all")
    cases.append((tmp_path / "junk", r"x\.png: cannot read the image"))
    write_image_folder(tmp_path / "mixed", u[:4], y[:4])
    Image.fromarray(u[0]).save(tmp_path / "mixed" / "loose.png")
    cases.append((tmp_path / "mixed", "holds both images .* and sub-folders"))
    (tmp_path / "ec" / "a").mkdir(parents=True)
    write_image_folder(tmp_path / "ec" / "b", u[:2])
    cases.append((tmp_path / "ec", r"class folder .*ec/a holds no PNG or JPEG"))
    cases.append((tmp_path / "missing", "does not exist"))
    for path, msg in cases:
        with pytest.raises(DataError, match=msg) as e:
            opened(path)
        assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="data.size=0"):
        opened(tmp_path / "mixed", size=0)
    with pytest.raises(DataError, match="data.channels=2"):
        opened(tmp_path / "mixed", channels=2)


def test_cache_is_built_once_and_reused_without_decoding(tmp_path, digits_u8, monkeypatch, cache):
    u, y = digits_u8
    write_image_folder(tmp_path / "d", u[:120], y[:120])
    calls = []
    real = F._decode
    monkeypatch.setattr(F, "_decode", lambda *a: (calls.append(a[0]), real(*a))[1])
    first = opened(tmp_path / "d", workers=1)
    assert len(calls) == 121  # the first image once to learn the shape, then every image
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".")] == [first.cache.name]

    def refuse(*a):
        raise AssertionError("decoded again")

    monkeypatch.setattr(F, "_decode", refuse)
    second = opened(tmp_path / "d")
    assert second.cache == first.cache and second.fingerprint == first.fingerprint
    np.testing.assert_array_equal(np.asarray(second.x), np.asarray(first.x))
    # another size is another cache
    monkeypatch.setattr(F, "_decode", real)
    assert opened(tmp_path / "d", size=4).cache != first.cache


def test_changed_file_rebuilds_and_changes_the_fingerprint(tmp_path, digits_u8):
    u, y = digits_u8
    files = write_image_folder(tmp_path / "d", u[:60], y[:60])
    a = opened(tmp_path / "d")
    st = os.stat(files[5])
    Image.fromarray(255 - u[5]).save(files[5])
    os.utime(files[5], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    b = opened(tmp_path / "d")
    assert b.cache != a.cache and b.fingerprint != a.fingerprint
    np.testing.assert_array_equal(np.asarray(b.x)[5, 0], 255 - u[5])
    # a touch without a change of content rebuilds the cache (mtime) but keeps the content fingerprint
    os.utime(files[7], ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**9))
    c = opened(tmp_path / "d")
    assert c.cache != b.cache and c.fingerprint == b.fingerprint


def _build_in_child(root, cache_root, lock, counter, barrier, out):
    real = F._decode

    def slow(*a):
        with counter.get_lock():
            counter.value += 1
        time.sleep(0.002)  # long enough for both processes to be building at once
        return real(*a)

    F._decode = slow
    listing = list_folder(root)
    barrier.wait()
    path = F.ensure_cache(listing, progress=False, workers=1, cache_root=cache_root, lock=lock)
    out.put(str(path))


@pytest.mark.parametrize("lock", [True, False])
def test_two_processes_building_at_once_leave_one_valid_cache(tmp_path, digits_u8, lock):
    u, y = digits_u8
    n = 150
    write_image_folder(tmp_path / "d", u[:n], y[:n])
    ctx = mp.get_context("fork")
    counter, barrier, out = ctx.Value("i", 0), ctx.Barrier(2), ctx.Queue()
    root = tmp_path / "c"
    procs = [
        ctx.Process(target=_build_in_child, args=(tmp_path / "d", root, lock, counter, barrier, out)) for _ in range(2)
    ]
    for p in procs:
        p.start()
    paths = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert paths[0] == paths[1]
    # with the lock one process decodes and the other waits; without it both decode and the first rename wins
    assert counter.value == (n + 1 if lock else 2 * (n + 1))
    entries = sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock"))
    assert entries == [os.path.basename(paths[0])]  # no temp folder left behind
    d = opened(tmp_path / "d", cache_root=root)
    assert str(d.cache) == paths[0]
    np.testing.assert_array_equal(np.asarray(d.x)[:, 0], u[:n])


def test_parallel_decode_equals_serial(tmp_path, digits_u8):
    u, y = digits_u8
    write_image_folder(tmp_path / "d", u[:600], y[:600])
    a = open_folder(tmp_path / "d", progress=False, workers=1, cache_root=tmp_path / "c1")
    b = open_folder(tmp_path / "d", progress=True, workers=2, cache_root=tmp_path / "c2")
    assert a.fingerprint == b.fingerprint
    np.testing.assert_array_equal(np.asarray(a.x), np.asarray(b.x))


def test_batch_source_keeps_the_memory_map(tmp_path, digits_u8):
    u, y = digits_u8
    write_image_folder(tmp_path / "d", u[:64], y[:64])
    src = opened(tmp_path / "d").batches("train", 16)
    assert isinstance(src.arrays["x"], np.memmap) and not src.streams()
    streamed = ArrayBatches(src.arrays, 16, seed=0, indices=src.indices, map_limit=0)
    assert streamed.streams() and isinstance(streamed.arrays["x"], np.memmap)
    for a, b in zip(src.epoch(0), streamed.epoch(0), strict=True):
        assert torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])


_RSS_SCRIPT = """
import sys, numpy as np
from reprlab.data.arraybatches import ArrayBatches, open_npy_memmap
def hwm():
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) // 1024
limit = None if sys.argv[2] == 'none' else int(sys.argv[2])
mm = open_npy_memmap(sys.argv[1])
warm = ArrayBatches({'x': np.zeros((512, *mm.shape[1:]), np.uint8)}, 256, seed=0)
for b in warm.epoch(0):  # first-use allocations of numpy and torch, before the baseline
    pass
src = ArrayBatches({'x': mm}, 256, seed=0, map_limit=limit)
h0 = hwm()
total = 0.0
for b in src.epoch(1):
    total += float(b['x'][:, 0, 0, 0].sum())
print(hwm() - h0, src.streams(), total)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_data_larger_than_a_memory_cap_streams(tmp_path):
    """A 160 MB cache read by a source capped at 32 MB: the peak resident set grows by far less than the
    data, while reading through the map (the control) makes most of it resident."""
    n, shape = 40_000, (1, 64, 64)
    path = tmp_path / "x.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (n, *shape)})
        rng = np.random.default_rng(0)
        for _ in range(0, n, 5000):
            f.write(rng.integers(0, 256, (5000, *shape), dtype=np.uint8).tobytes())
    assert open_npy_memmap(path).nbytes == n * 4096
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")

    def run(limit):
        r = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, str(path), limit], capture_output=True, text=True, env=env, timeout=300
        )
        assert r.returncode == 0, r.stderr
        grew, streams, total = r.stdout.split()
        return int(grew), streams == "True", float(total)

    grew, streams, total = run(str(32 << 20))
    grew_map, streams_map, total_map = run("none")
    assert streams and not streams_map
    assert total == total_map  # the same values either way
    data_mb = n * 4096 >> 20
    assert grew < 0.4 * data_mb, f"streaming {data_mb} MB grew the resident set by {grew} MB"
    assert grew_map > 0.6 * data_mb, f"the control read through the map grew by only {grew_map} MB"


def test_a_pickled_batch_source_sends_where_the_map_lives_not_its_bytes(tmp_path):
    import pickle

    x = np.random.default_rng(0).integers(0, 256, (2000, 1, 32, 32), dtype=np.uint8)  # 2 MB
    np.save(tmp_path / "x.npy", x)
    for limit in (None, 0):
        src = ArrayBatches({"x": open_npy_memmap(tmp_path / "x.npy")}, 100, seed=1, map_limit=limit)
        blob = pickle.dumps(src)
        assert len(blob) < 100_000
        back = pickle.loads(blob)
        assert isinstance(back.arrays["x"], np.memmap) and back.streams() == src.streams()
        for a, b in zip(src.epoch(3), back.epoch(3), strict=True):
            assert torch.equal(a["x"], b["x"])
