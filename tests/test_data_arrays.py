"""Arrays from .npz/.npy files, and the --data spec parser that picks a reader."""

import numpy as np
import pytest
import torch

from reprlab.data.arrays import open_arrays
from reprlab.data.spec import open_data, parse_data_spec
from reprlab.errors import DataError


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRLAB_CACHE", str(tmp_path / "cache"))


def test_npz_features_with_string_labels(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6)).astype(np.float64)
    y = np.array(["cat", "dog"])[rng.integers(0, 2, 50)]
    np.savez(tmp_path / "a.npz", x=x, y=y)
    d = open_arrays(tmp_path / "a.npz", test_fraction=0.2, val_fraction=0.0, seed=2)
    assert d.kind == "features" and d.input_shape == (6,) and d.classes == ("cat", "dog")
    np.testing.assert_array_equal(d.y, (y == "dog").astype(int))
    b = next(d.batches("train", 100, shuffle=False).epoch(0))
    assert b["x"].dtype == torch.float32 and len(b["x"]) == len(d.split.train)
    assert torch.equal(b["x"], torch.from_numpy(x[d.split.train]).float())
    d.require_labels()


def test_npy_images_are_memory_mapped_and_scaled(tmp_path):
    u = np.random.default_rng(0).integers(0, 256, (40, 7, 9), dtype=np.uint8)
    np.save(tmp_path / "x.npy", u)
    d = open_arrays(tmp_path / "x.npy")
    assert d.kind == "images" and d.input_shape == (1, 7, 9) and isinstance(d.x, np.memmap) and d.y is None
    b = next(d.batches("test", 100).epoch(0))
    assert torch.equal(b["x"], torch.from_numpy(u[d.split.test]).unsqueeze(1).float().div_(255.0))
    with pytest.raises(DataError, match="has no labels"):
        d.require_labels()


def test_channels_last_images_and_given_test_part(tmp_path):
    u = np.random.default_rng(0).integers(0, 256, (30, 5, 6, 3), dtype=np.uint8)
    ut = np.random.default_rng(1).integers(0, 256, (10, 5, 6, 3), dtype=np.uint8)
    np.savez(tmp_path / "c.npz", x=u, y=np.arange(30) % 3, x_test=ut, y_test=np.arange(10) % 3)
    d = open_arrays(tmp_path / "c.npz", val_fraction=0.0)
    assert d.channels_last and d.input_shape == (3, 5, 6) and d.split.method == "given"
    np.testing.assert_array_equal(d.split.test, np.arange(30, 40))
    b = next(d.batches("test", 10).epoch(0))
    assert torch.equal(b["x"], torch.from_numpy(ut).permute(0, 3, 1, 2).float().div_(255.0))


def test_fingerprint_is_remembered_and_follows_content(tmp_path):
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    np.save(tmp_path / "x.npy", x)
    a = open_arrays(tmp_path / "x.npy").fingerprint
    assert open_arrays(tmp_path / "x.npy").fingerprint == a
    x[3, 1] = -1
    np.save(tmp_path / "x.npy", x)
    assert open_arrays(tmp_path / "x.npy").fingerprint != a


@pytest.mark.parametrize(
    "arrays, msg",
    [
        ({"features": np.zeros((4, 2))}, r"has no array 'x' \(it holds features\)"),
        ({"x": np.zeros(4)}, r"x has shape \(4,\)"),
        ({"x": np.zeros((4, 2)), "y": np.zeros(3)}, r"one label per row of x \(4\)"),
        ({"x": np.zeros((4, 2)), "y": np.array([0.5, 1, 0, 1])}, "not whole numbers"),
        ({"x": np.array([[0.0, 1], [np.nan, 2], [3, 4]])}, r"x row 1 holds NaN"),
        ({"x": np.zeros((1, 3))}, r"has 1 row\(s\)"),
    ],
)
def test_bad_arrays_are_refused(tmp_path, arrays, msg):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=msg):
        open_arrays(tmp_path / "bad.npz")


def test_data_spec_picks_the_reader(tmp_path):
    (tmp_path / "imgs").mkdir()
    for name in ("a.npz", "b.npy", "t.csv", "t.tsv", "lex.txt", "lex.dict"):
        (tmp_path / name).write_text("x")
    assert parse_data_spec("digits").kind == "builtin"
    assert parse_data_spec(str(tmp_path / "imgs")).kind == "folder"
    assert parse_data_spec(str(tmp_path / "a.npz")).kind == "arrays"
    assert parse_data_spec(str(tmp_path / "b.npy")).kind == "arrays"
    assert parse_data_spec(str(tmp_path / "t.csv")).kind == "table"
    assert parse_data_spec(str(tmp_path / "t.tsv")).kind == "table"
    assert parse_data_spec(str(tmp_path / "lex.txt"), task="g2p").kind == "lexicon"
    assert parse_data_spec(str(tmp_path / "t.tsv"), task="g2p").kind == "lexicon"
    # prefixes force a reader
    assert parse_data_spec(f"csv:{tmp_path / 'lex.txt'}").kind == "table"
    assert parse_data_spec(f"lexicon:{tmp_path / 'lex.dict'}").kind == "lexicon"
    assert parse_data_spec(f"folder:{tmp_path / 'imgs'}").kind == "folder"
    s = parse_data_spec(str(tmp_path / "imgs"), options={"size": "32", "channels": "3", "seed": "4"})
    assert s.options == {"size": 32, "channels": 3, "seed": 4}
    s = parse_data_spec(str(tmp_path / "t.csv"), options={"label": "y", "drop": "a, b"})
    assert s.options == {"label": "y", "drop": ("a", "b")}


def test_a_builtin_name_stays_builtin_even_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    (tmp_path / "digits").mkdir()
    monkeypatch.chdir(tmp_path)
    assert parse_data_spec("digits").kind == "builtin"
    assert parse_data_spec("./digits").kind == "folder"
    assert parse_data_spec("folder:digits").kind == "folder"


@pytest.mark.parametrize(
    "text, task, options, msg",
    [
        ("no-such-set", "images", None, r"unknown dataset 'no-such-set': not a built-in \(.*digits"),
        ("{tmp}/missing.csv", "images", None, "missing.csv does not exist"),
        ("{tmp}/lex.txt", "images", None, r"no reader for \.txt files"),
        ("{tmp}/noext", "images", None, "no reader for files without a suffix"),
        ("npz:{tmp}/lex.txt", "images", None, r"arrays are read from \.npz or \.npy files"),
        ("folder:{tmp}/lex.txt", "images", None, "is a file, not a folder"),
        ("csv:{tmp}/imgs", "images", None, "is a folder; the table reader takes a file"),
        ("csv:", "images", None, "give a path after 'csv:'"),
        ("{tmp}/imgs", "images", {"label": "y"}, r"--data.label does not apply to folder .*it takes size"),
        ("{tmp}/imgs", "images", {"size": "big"}, r"--data.size='big' is not a valid value"),
        ("digits", "images", {"size": 8}, "does not apply to digits"),
        ("", "images", None, "--data is empty"),
    ],
)
def test_bad_data_specs(tmp_path, text, task, options, msg):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "lex.txt").write_text("x")
    (tmp_path / "noext").write_text("x")
    with pytest.raises(DataError, match=msg) as e:
        parse_data_spec(text.format(tmp=tmp_path), task, options)
    assert "\n" not in str(e.value)


def test_open_data_dispatches(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros((10, 3)), y=np.arange(10) % 2)
    d = open_data(parse_data_spec(str(tmp_path / "a.npz"), options={"seed": 1}))
    assert d.record()["kind"] == "arrays" and d.split.seed == 1
    with pytest.raises(DataError, match="built-in"):
        open_data(parse_data_spec("digits"))
