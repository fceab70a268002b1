"""CSV/TSV tables: parsing, standardisation fitted on the training rows only, and every refused input."""

import numpy as np
import pytest
import torch

from reprlab.data.tables import Standardizer, open_table, read_table
from reprlab.errors import DataError


def write_csv(path, header, rows, sep=","):
    path.write_text("\n".join([sep.join(header)] + [sep.join(str(v) for v in r) for r in rows]) + "\n")
    return path


@pytest.fixture
def table(tmp_path):
    """60 rows: two numeric columns, a text label; class 'b' rows sit at a larger scale than 'a' rows."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        lab = "a" if i % 3 else "b"
        rows.append([f"{rng.normal(10 if lab == 'a' else 50, 2):.6f}", f"{rng.normal(-3, 1):.6f}", lab])
    return write_csv(tmp_path / "t.csv", ["height", "weight", "kind"], rows)


def test_standardisation_comes_from_the_training_rows_only(table):
    t = open_table(table, label="kind", test_fraction=0.25, val_fraction=0.2, seed=1)
    raw = np.loadtxt(table, delimiter=",", skiprows=1, usecols=(0, 1))
    np.testing.assert_array_equal(t.raw, raw)
    tr = t.split.train
    np.testing.assert_allclose(t.stats.mean, raw[tr].mean(0), rtol=1e-12)
    np.testing.assert_allclose(t.stats.std, raw[tr].std(0), rtol=1e-12)
    # the statistics of all rows differ, so a fit on everything would be caught
    assert not np.allclose(t.stats.mean, raw.mean(0))
    np.testing.assert_allclose(t.x[tr].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(t.x[tr].std(0), 1, atol=1e-5)
    assert not np.allclose(t.x[t.split.test].mean(0), 0, atol=1e-3)
    assert t.x.dtype == np.float32 and t.columns == ("height", "weight") and t.classes == ("a", "b")
    np.testing.assert_array_equal(t.y, [0 if i % 3 else 1 for i in range(60)])
    # stratified: 'b' (20 rows) gives 5 of the 15 test rows
    assert len(t.split.test) == 15 and int((t.y[t.split.test] == 1).sum()) == 5
    b = next(t.batches("test", 100).epoch(0))
    assert torch.equal(b["x"], torch.from_numpy(t.x[t.split.test])) and b["y"].dtype == torch.int64


def test_saved_statistics_are_reapplied(table, tmp_path):
    t = open_table(table, label="kind", seed=1)
    saved = t.record()["stats"]
    rows = [["1.5", "2.5", "a"], ["3.5", "-1.0", "b"]]
    new = open_table(write_csv(tmp_path / "new.csv", ["height", "weight", "kind"], rows), label="kind", stats=saved)
    expect = (np.array([[1.5, 2.5], [3.5, -1.0]]) - t.stats.mean) / t.stats.std
    np.testing.assert_allclose(new.x, expect, rtol=1e-6)
    again = Standardizer.from_dict(saved)
    np.testing.assert_array_equal(again.mean, t.stats.mean)
    other = write_csv(tmp_path / "o.csv", ["h", "w", "kind"], rows)
    with pytest.raises(DataError, match="saved statistics are for height, weight"):
        open_table(other, label="kind", stats=saved)


def test_tsv_unlabelled_constant_column_and_numeric_labels(tmp_path):
    rows = [[i, 7, i % 2] for i in range(10)]
    p = write_csv(tmp_path / "t.tsv", ["a", "const", "y"], rows, sep="\t")
    t = open_table(p, test_fraction=0.2, val_fraction=0)
    assert t.y is None and t.columns == ("a", "const", "y") and t.stats.std[1] == 1.0
    assert np.all(t.x[:, 1] == 0)
    with pytest.raises(DataError, match="no label column; pass data.label"):
        t.require_labels()
    t = open_table(p, label="y")
    assert t.classes == ("0", "1") and t.columns == ("a", "const")
    labels10 = write_csv(tmp_path / "n.csv", ["x", "y"], [[i, v] for i, v in enumerate([10, 2, 2, 10, 1])])
    assert open_table(labels10, label="y").classes == ("1", "2", "10")  # by value, not by text


def test_drop_lets_a_text_column_through(tmp_path):
    p = write_csv(tmp_path / "t.csv", ["city", "x", "y"], [["Paris", 1, 0], ["Oslo", 2, 1], ["Rome", 3, 0]])
    with pytest.raises(
        DataError, match=r"column 'city' is not numeric \(line 2: 'Paris'\); drop it with data.drop=city"
    ):
        open_table(p, label="y")
    t = open_table(p, label="y", drop="city")
    assert t.columns == ("x",)


@pytest.mark.parametrize(
    "header, rows, kw, msg",
    [
        (["a", "b"], [[1, 2]], {}, r"has 1 data row\(s\); a table needs at least 2"),
        (["a", "b"], [[1, 2], [3, ""], [5, 6]], {}, r"column 'b' line 3 is empty or missing; fill the cell"),
        (["a", "b"], [[1, 2], ["NaN", 4]], {}, r"column 'a' line 3 is empty or missing"),
        (["a", "b"], [[1, 2], ["inf", 4]], {}, r"column 'a' line 3 is 'inf'"),
        (["a", "b"], [[1, 2], [3, 4]], {"label": "kind"}, r"no column 'kind' for the label; its columns: a, b"),
        (["a", "b"], [[1, 2], [3, 4]], {"drop": ["c"]}, r"no column 'c' to drop"),
        (["a", "a"], [[1, 2], [3, 4]], {}, r"names column 'a' more than once"),
        (["a", "b"], [[1, 2], [3, 4, 5]], {}, r"line 3 has 3 fields but the header has 2"),
        (["a", "y"], [[1, 0], [2, ""]], {"label": "y"}, r"label column 'y' line 3 is empty"),
        (["y"], [[0], [1]], {"label": "y"}, r"no feature columns besides the label"),
    ],
)
def test_bad_tables_are_refused_by_name(tmp_path, header, rows, kw, msg):
    p = write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(DataError, match=msg) as e:
        open_table(p, **kw)
    assert "\n" not in str(e.value)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "none.csv")
    p = tmp_path / "latin.csv"
    p.write_bytes("a,b\n1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="is not UTF-8"):
        read_table(p)


def test_fingerprint_follows_content(table, tmp_path):
    a = open_table(table, label="kind")
    assert open_table(table, label="kind").fingerprint == a.fingerprint
    lines = table.read_text().splitlines()
    lines[5] = lines[5].replace(lines[5].split(",")[0], "99.0")
    changed = tmp_path / "c.csv"
    changed.write_text("\n".join(lines) + "\n")
    assert open_table(changed, label="kind").fingerprint != a.fingerprint
