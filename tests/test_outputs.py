"""Output files: an existing file is refused without --overwrite (and left byte for byte), --overwrite replaces
it, the command prints the path it really wrote, and a write that fails leaves neither a temp file nor half a
file. Also: hub weights never run pickled code, float settings are finite, and seeds are in range."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_subprocess

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp-" in p.name]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("output-runs")
    common = ["--data", "digits", "--epochs", "1", "--no-progress", "--trainer.tensorboard=false", "--model.hidden=32"]
    out = {}
    for name, model, extra in [("ae", "ae_mlp", ["--model.code_dim=4"]), ("vae", "vae_mlp", [])]:
        res = run_subprocess("train", model, *common, *extra, "--out", root / name)
        assert res.returncode == 0, res.stderr
        out[name] = root / name
    return out


# ---------------------------------------------------------------------------------------------------- encode
def test_encode_refuses_existing_outputs_and_overwrite_replaces_both(cli, runs, tmp_path):
    codes, labels = tmp_path / "codes.npy", tmp_path / "codes.labels.npy"
    codes.write_bytes(b"my codes")
    rc, out, err = cli("encode", runs["ae"], "-o", codes)
    assert rc == 2 and "--overwrite" in one_line(err) and str(codes) in err
    assert codes.read_bytes() == b"my codes" and not labels.exists()

    # only the labels file exists: it is refused too (it used to be replaced every time)
    codes.unlink()
    labels.write_bytes(b"my labels")
    rc, out, err = cli("encode", runs["ae"], "-o", codes)
    assert rc == 2 and "codes.labels.npy" in one_line(err)
    assert labels.read_bytes() == b"my labels" and not codes.exists()

    rc, out, err = cli("encode", runs["ae"], "-o", codes, "--overwrite")
    assert rc == 0, err
    assert np.load(codes).shape == (360, 4)
    y = np.load(labels)
    assert y.shape == (360,) and set(np.unique(y)) == set(range(10))
    assert f"wrote {codes} (360, 4) and {labels}" in out
    assert temps(tmp_path) == []


def test_encode_without_suffix_writes_and_checks_the_npy_files_numpy_would_write(cli, runs, tmp_path):
    rc, out, err = cli("encode", runs["ae"], "-o", tmp_path / "codes")
    assert rc == 0, err
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["codes.labels.npy", "codes.npy"]
    assert str(tmp_path / "codes.npy") in out and str(tmp_path / "codes.labels.npy") in out
    before = digest(tmp_path / "codes.npy")
    rc, out, err = cli("encode", runs["ae"], "-o", tmp_path / "codes")  # the same -o again: refused
    assert rc == 2 and "codes.npy already exists" in one_line(err)
    assert digest(tmp_path / "codes.npy") == before


def test_encode_checks_the_run_before_creating_the_output_folder(cli, runs, tmp_path):
    target = tmp_path / "new" / "deep" / "codes.npy"
    rc, _, err = cli("encode", tmp_path / "no-run", "-o", target)
    assert rc == 2 and "does not exist" in one_line(err)
    assert not (tmp_path / "new").exists()
    rc, out, err = cli("encode", runs["ae"], "-o", target)  # a good run: the folder is made when writing
    assert rc == 0 and target.is_file() and str(target) in out


# ---------------------------------------------------------------------------------------------------- sample
def test_sample_prints_the_png_it_wrote_and_refuses_it_next_time(cli, runs, tmp_path):
    rc, out, err = cli("sample", runs["vae"], "-n", "4", "-o", tmp_path / "grid")
    assert rc == 0, err
    grid = tmp_path / "grid.png"
    assert out.strip() == f"wrote {grid} (4 images)"
    assert grid.read_bytes()[:8] == PNG_MAGIC and not (tmp_path / "grid").exists()
    before = digest(grid)
    for name in ("grid", "grid.png"):
        rc, out, err = cli("sample", runs["vae"], "-n", "4", "-o", tmp_path / name, "--seed", "1")
        assert rc == 2 and "grid.png already exists" in one_line(err)
        assert digest(grid) == before
    rc, out, err = cli("sample", runs["vae"], "-n", "4", "-o", grid, "--seed", "1", "--overwrite")
    assert rc == 0 and digest(grid) != before and grid.read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]


def test_sample_with_a_file_in_the_path_is_one_line(cli, runs, tmp_path):
    (tmp_path / "FILE").write_text("x")
    rc, _, err = cli("sample", runs["vae"], "-o", tmp_path / "FILE" / "x.png")
    assert rc == 2 and "is a file, not a folder" in one_line(err)
    assert (tmp_path / "FILE").read_text() == "x"


# ---------------------------------------------------------------------------------------------------- eval --figure
def test_eval_figure_refuses_an_existing_file_before_evaluating(cli, runs, tmp_path):
    fig = tmp_path / "fig.png"
    fig.write_bytes(b"my picture")
    run_files = {p.name: digest(p) for p in runs["ae"].iterdir() if p.is_file()}
    rc, out, err = cli("eval", runs["ae"], "--figure", fig)
    assert rc == 2 and "--overwrite" in one_line(err)
    assert fig.read_bytes() == b"my picture"
    assert {p.name: digest(p) for p in runs["ae"].iterdir() if p.is_file()} == run_files  # no eval.json either

    rc, out, err = cli("eval", runs["ae"], "--figure", fig, "--overwrite")
    assert rc == 0, err
    metrics = json.loads(out)
    assert metrics["figure"] == str(fig) and fig.read_bytes()[:8] == PNG_MAGIC
    assert 0 < metrics["test/mse"] < 0.2


def test_eval_figure_without_suffix_reports_the_png_path(cli, runs, tmp_path):
    rc, out, err = cli("eval", runs["ae"], "--figure", tmp_path / "sub" / "recon")
    assert rc == 0, err
    written = Path(json.loads(out)["figure"])
    assert written == tmp_path / "sub" / "recon.png" and written.read_bytes()[:8] == PNG_MAGIC


# ---------------------------------------------------------------------------------------------------- failed writes
def _failing_writer(monkeypatch, target, name: str, code: int = errno.ENOSPC) -> None:
    """Make ``target.name`` write half its output and then fail as a full disk would."""
    real = getattr(target, name)

    def half_then_fail(*args, **kwargs):
        dest = args[1] if name == "savefig" else args[0]
        if hasattr(dest, "write"):
            dest.write(b"half a file")
        else:
            Path(dest).write_bytes(b"half a file")
        raise OSError(code, os.strerror(code), str(dest))

    assert callable(real)
    monkeypatch.setattr(target, name, half_then_fail)


def test_a_failed_encode_leaves_the_old_file_and_no_temp_file(cli, runs, tmp_path, monkeypatch):
    codes = tmp_path / "codes.npy"
    codes.write_bytes(b"old codes")
    _failing_writer(monkeypatch, np, "save")
    rc, _, err = cli("encode", runs["ae"], "-o", codes, "--overwrite")
    assert rc == 2 and "the disk is full" in one_line(err)
    assert codes.read_bytes() == b"old codes"
    assert temps(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["codes.npy"]


def test_a_failed_figure_leaves_no_png_and_no_temp_file(cli, runs, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    _failing_writer(monkeypatch, Figure, "savefig", errno.EROFS)
    rc, _, err = cli("sample", runs["vae"], "-n", "4", "-o", tmp_path / "grid.png")
    assert rc == 2 and "read-only" in one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_figure_helpers_write_atomically(tmp_path, monkeypatch):
    """Every figure helper goes through one atomic writer: a reader never sees half a PNG."""
    from reprlab import plots

    seen = []
    real = plots.atomic_write_with
    monkeypatch.setattr(plots, "atomic_write_with", lambda p, w: (seen.append(Path(p).name), real(p, w)))
    plots.image_grid(torch.rand(4, 1, 8, 8), tmp_path / "a.png")
    plots.line_plot([1, 2], {"x": ([1.0, 2.0], None)}, tmp_path / "b", "x", "y")
    plots.scatter_2d(np.random.rand(10, 2), np.arange(10) % 3, tmp_path / "c.png")
    plots.reconstruction_grid(torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8), tmp_path / "d.png")
    assert seen == ["a.png", "b.png", "c.png", "d.png"]
    assert all((tmp_path / n).read_bytes()[:8] == PNG_MAGIC for n in seen) and temps(tmp_path) == []
    with pytest.raises(Exception, match="give a .png file"):
        plots.figure_path(tmp_path / "e.npy")


# ---------------------------------------------------------------------------------------------------- report, study
def _result(study: str) -> dict:
    return {
        "study": study,
        "title": f"{study} title",
        "claim": "a claim",
        "preset": "smoke",
        "command": f"reprlab study {study}",
        "verdict": "supported",
        "seconds": 1.5,
        "findings": [{"claim": "c", "verdict": "supported", "evidence": "e"}],
        "tables": [{"title": "T", "columns": ["a", "b"], "rows": [[1, 2]], "note": ""}],
        "figures": [],
        "notes": ["n"],
    }


def test_report_refuses_a_folder_without_results_and_writes_nothing(cli, tmp_path):
    rc, out, err = cli("report", "--in", tmp_path)
    assert rc == 2 and "holds no study results" in one_line(err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text", ["{}", "[1, 2]", "not json", '{"study": "autoencoder"}'])
def test_report_names_the_bad_results_file(cli, tmp_path, text):
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "results.json").write_text(json.dumps(_result("good")))
    (tmp_path / "autoencoder").mkdir()
    bad = tmp_path / "autoencoder" / "results.json"
    bad.write_text(text)
    rc, out, err = cli("report", "--in", tmp_path)
    assert rc == 2 and str(bad) in one_line(err)
    assert not (tmp_path / "index.html").exists() and not (tmp_path / "report.md").exists()


def test_report_writes_and_prints_both_files(cli, tmp_path):
    (tmp_path / "autoencoder").mkdir()
    (tmp_path / "autoencoder" / "results.json").write_text(json.dumps(_result("autoencoder")))
    rc, out, err = cli("report", "--in", tmp_path)
    assert rc == 0, err
    html, md = tmp_path / "index.html", tmp_path / "report.md"
    assert out.strip() == f"wrote {html} and {md}"
    assert "autoencoder title" in html.read_text() and "| 1 | 2 |" in md.read_text()
    assert temps(tmp_path) == []


def test_report_orders_studies_by_their_results_alone(tmp_path):
    """The report orders by each results.json's ``order`` (no field: last, by name), without importing a study."""
    import os
    import subprocess
    import sys

    from conftest import REPO

    for name, order in (("zeta", 10), ("alpha", 30), ("mid", 20), ("old", None), ("beta", None)):
        (tmp_path / name).mkdir()
        r = _result(name) | ({"order": order} if order is not None else {})
        (tmp_path / name / "results.json").write_text(json.dumps(r))
    code = (
        "import json, sys; from pathlib import Path; from reprlab.report.html import collect; "
        "print(json.dumps([s['study'] for s in collect(Path(sys.argv[1]))])); "
        "print(sorted(m for m in sys.modules if m.startswith(('reprlab.studies', 'reprlab.train'))))"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    names, imported = out.stdout.splitlines()
    assert json.loads(names) == ["zeta", "mid", "alpha", "beta", "old"]
    assert imported == "[]"
    (tmp_path / "mid" / "results.json").write_text(json.dumps(_result("mid") | {"order": "2"}))
    from reprlab.errors import ReprlabError
    from reprlab.report.html import collect

    with pytest.raises(ReprlabError, match="'order' has the wrong type"):
        collect(tmp_path)


def test_study_out_file_is_refused_before_any_work(cli, tmp_path):
    f = tmp_path / "reports"
    f.write_text("my file\n")
    rc, out, err = cli("study", "autoencoder", "--preset", "smoke", "--out", f)
    assert rc == 2 and "is a file" in one_line(err)
    assert f.read_text() == "my file\n" and sorted(p.name for p in tmp_path.iterdir()) == ["reports"]
    from reprlab.errors import ConfigError
    from reprlab.studies.base import run_study

    with pytest.raises(ConfigError, match="is a file"):  # the library entry point checks too
        run_study("autoencoder", "smoke", f)


# ---------------------------------------------------------------------------------------------------- hub weights
class Planted:
    """Unpickling this touches MARKER: if the marker appears, a loader ran pickled code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_planted_pickle_in_the_torch_hub_cache_never_runs(tmp_path):
    """The issue's repro: a pickle at $TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth, then
    ``transfer --weights imagenet``. The file's hash is not the one its name claims, so it is never opened."""
    marker = tmp_path / "PWNED"
    ckpt = tmp_path / "torch-home" / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "resnet18-f37072fd.pth").write_bytes(pickle.dumps(Planted(marker)))
    pickle.loads(pickle.dumps(Planted(tmp_path / "self-check")))  # the payload works when unpickled ...
    assert (tmp_path / "self-check").exists()
    res = run_subprocess(
        "transfer", "--weights", "imagenet", "--target", "digits", "--mode", "frozen", "--out", tmp_path / "run",
        env={"TORCH_HOME": str(tmp_path / "torch-home")},
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "not torchvision's file" in one_line(res.stderr)
    assert not marker.exists()  # ... and here it never was
    assert not (tmp_path / "run").exists()


def test_hub_file_with_a_matching_hash_is_still_read_weights_only(tmp_path, monkeypatch):
    """Second layer: even a pickle whose name carries its true hash is read with weights_only=True."""
    from reprlab.errors import CheckpointError
    from reprlab.models import pretrained

    marker = tmp_path / "PWNED"
    payload = pickle.dumps({"conv1.weight": Planted(marker)})
    name = f"resnet18-{hashlib.sha256(payload).hexdigest()[:8]}.pth"
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / name).write_bytes(payload)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(pretrained, "IMAGENET_RESNET18_FILE", name)
    with pytest.raises(CheckpointError, match="torch can read safely"):
        pretrained.imagenet_resnet18_state_dict()
    assert not marker.exists()


def test_hub_file_loads_when_its_hash_matches_and_is_refused_when_one_byte_changes(tmp_path, monkeypatch):
    from reprlab.errors import CheckpointError
    from reprlab.models import pretrained

    state = {"conv1.weight": torch.randn(4, 3, 3, 3), "fc.bias": torch.randn(10)}
    raw = tmp_path / "raw.pth"
    torch.save(state, raw)
    name = f"resnet18-{digest(raw)[:8]}.pth"
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    raw.rename(ckpt / name)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(pretrained, "IMAGENET_RESNET18_FILE", name)
    loaded = pretrained.imagenet_resnet18_state_dict()
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)

    data = bytearray((ckpt / name).read_bytes())
    data[-1] ^= 1
    (ckpt / name).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="not torchvision's file"):
        pretrained.imagenet_resnet18_state_dict()
    (ckpt / name).unlink()
    with pytest.raises(CheckpointError, match="nothing is downloaded"):
        pretrained.imagenet_resnet18_state_dict()


def test_user_weights_file_with_a_pickle_is_refused_without_running_it(tmp_path):
    from reprlab.errors import CheckpointError
    from reprlab.models.pretrained import read_state_dict

    f = tmp_path / "weights.pth"
    f.write_bytes(pickle.dumps(Planted(tmp_path / "PWNED")))
    with pytest.raises(CheckpointError, match="torch can read safely"):
        read_state_dict(f)
    assert not (tmp_path / "PWNED").exists()


# ---------------------------------------------------------------------------------------------------- config values
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "NaN", "1e999", float("inf"), float("nan")])
def test_every_float_setting_must_be_finite(value):
    from reprlab.config import TrainerConfig, build
    from reprlab.errors import ConfigError
    from reprlab.registry import create_model

    for key in ("lr", "momentum", "weight_decay", "grad_clip"):
        with pytest.raises(ConfigError, match=f"trainer.{key}: (must be a finite number|expected float)"):
            build(TrainerConfig, {key: value}, "trainer")
    with pytest.raises(ConfigError, match="model.sparsity_weight: must be a finite number"):  # a model's, too
        create_model("sae_mlp", sparsity_weight=value)


def test_finite_floats_still_parse():
    from reprlab.config import TrainerConfig, build

    cfg = build(TrainerConfig, {"lr": "3e-4", "momentum": 0, "grad_clip": "none", "weight_decay": "1e-5"}, "trainer")
    assert (cfg.lr, cfg.momentum, cfg.grad_clip, cfg.weight_decay) == (3e-4, 0.0, None, 1e-5)


@pytest.mark.parametrize("seed, ok", [(0, True), (2**63 - 1, True), (-1, False), (2**63, False), (10**23, False)])
def test_seed_range(seed, ok):
    from reprlab.config import TrainerConfig
    from reprlab.errors import ConfigError
    from reprlab.train.engine import seed_everything

    if ok:
        assert TrainerConfig(seed=seed).seed == seed
        seed_everything(seed)  # torch, NumPy and Python all take every seed in range
        a = torch.rand(3)
        seed_everything(seed)
        assert torch.equal(a, torch.rand(3))
    else:
        with pytest.raises(ConfigError, match="trainer.seed must be a whole number from 0 to 2\\*\\*63-1"):
            TrainerConfig(seed=seed)


def test_largest_seed_samples(cli, runs, tmp_path):
    rc, out, err = cli("sample", runs["vae"], "-n", "2", "-o", tmp_path / "s.png", "--seed", str(2**63 - 1))
    assert rc == 0, err
    rc, _, err = cli("sample", runs["vae"], "-n", "2", "-o", tmp_path / "t.png", "--seed", str(2**63))
    assert rc == 2 and "2**63-1" in one_line(err) and not (tmp_path / "t.png").exists()


# ---------------------------------------------------------------------------------------------------- registry
def test_model_settings_that_contradict_the_data_are_refused_before_building():
    from reprlab.errors import ConfigError
    from reprlab.registry import build_config_for_data

    data = {"input_shape": (1, 8, 8), "num_classes": 10}
    cfg = build_config_for_data("ae_mlp", {"code_dim": "3"}, data, "digits")
    assert cfg.input_shape == (1, 8, 8) and cfg.code_dim == 3
    with pytest.raises(ConfigError, match=r"model.input_shape=\(1, 4, 4\) does not match the images of digits"):
        build_config_for_data("ae_mlp", {"input_shape": "1,4,4"}, data, "digits")
    with pytest.raises(ConfigError, match="model.num_classes=3 is fewer than the 10 classes"):
        build_config_for_data("classifier", {"num_classes": 3}, data, "digits")
    assert build_config_for_data("classifier", {"num_classes": 12}, data).num_classes == 12


def test_build_model_turns_construction_errors_into_one_line_but_not_memory_errors(monkeypatch):
    from reprlab.errors import ConfigError
    from reprlab.models.autoencoders import MLPAutoencoder
    from reprlab.registry import build_config, build_model

    cfg = build_config("ae_mlp", {"code_dim": 5})

    def broken(self, config):
        raise RuntimeError("Given groups=1, weight of size [8, 1, 3, 3], expected input to have 1 channels\nmore")

    monkeypatch.setattr(MLPAutoencoder, "__init__", broken)
    with pytest.raises(ConfigError, match=r"model 'ae_mlp' cannot be built with model.code_dim=5: Given groups=1"):
        build_model("ae_mlp", cfg)

    def oom(self, config):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 400000000000 bytes")

    monkeypatch.setattr(MLPAutoencoder, "__init__", oom)
    with pytest.raises(RuntimeError, match="can't allocate memory"):
        build_model("ae_mlp", cfg)

    def bug(self, config):
        raise AttributeError("a real bug")

    monkeypatch.setattr(MLPAutoencoder, "__init__", bug)
    with pytest.raises(AttributeError):  # not hidden
        build_model("ae_mlp", cfg)


# ---------------------------------------------------------------------------------------------------- cli faults
@pytest.mark.parametrize(
    "exc, expect",
    [
        (OSError(errno.ENOSPC, "No space left on device", "/data/x"), "cannot write or read /data/x: the disk is full"),
        (OSError(errno.EROFS, "Read-only file system", "/mnt/ro"), "read-only"),
        (PermissionError(errno.EACCES, "Permission denied", "/root/x"), "permission denied"),
        (OSError(errno.EPERM, "Operation not permitted", "/x"), "not permitted"),
        (OSError(errno.ENOMEM, "Cannot allocate memory"), "not enough memory"),
        (MemoryError(), "not enough memory to run this command"),
        (
            RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 102400000000 bytes"),
            "not enough memory to run this command (an allocation of 95.4 GiB failed)",
        ),  # fmt: skip
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"), "not enough memory"),
    ],
)
def test_machine_faults_are_one_line(cli, monkeypatch, exc, expect):
    from reprlab.commands import models

    def fail(args):
        raise exc

    monkeypatch.setattr(models, "run", fail)
    rc, out, err = cli("models")
    assert rc == 2 and expect in one_line(err)


@pytest.mark.parametrize(
    "exc",
    [OSError("no errno: maybe a bug"), OSError(errno.EBADF, "Bad file descriptor"), RuntimeError("shape mismatch")],
)
def test_other_errors_are_not_hidden(cli, monkeypatch, exc):
    from reprlab.commands import models

    def fail(args):
        raise exc

    monkeypatch.setattr(models, "run", fail)
    with pytest.raises(type(exc)):
        cli("models")


def test_g2p_error_echoes_a_long_word_cut_short():
    from reprlab.data.g2p import check_word
    from reprlab.errors import DataError

    word = "b" * 9999 + "7"
    with pytest.raises(DataError) as e:
        check_word(word)
    msg = str(e.value)
    assert len(msg) < 200 and "…(10000 characters)" in msg and "'7'" in msg
    with pytest.raises(DataError) as e:
        check_word("x" * 300)
    assert "300 letters" in str(e.value) and len(str(e.value)) < 200


def test_fd_checks_torch_fidelity_before_loading_anything(cli, tmp_path, monkeypatch):
    """With --inception-weights, the package and the file are checked first: here the run does not even
    exist, and the message is still about torch-fidelity (or the file), not the run."""
    import reprlab.train.checkpoint as ckpt

    weights = tmp_path / "pt_inception.pth"
    torch.save({"w": torch.zeros(2)}, weights)
    monkeypatch.setattr(ckpt, "load_run", lambda run: pytest.fail("the run was loaded before the check"))
    try:
        import torch_fidelity  # noqa: F401

        pytest.skip("torch-fidelity is installed here")
    except ImportError:
        pass
    rc, _, err = cli("fd", tmp_path / "no-run", "--inception-weights", weights)
    assert rc == 2 and "torch-fidelity" in one_line(err)
