"""Every bad input gets one clear line on stderr and exit code 2, and nothing is overwritten."""

import json

from pathlib import Path

import pytest

from conftest import run_subprocess
from test_data import make_fake_fashion


def one_line(err: str) -> str:
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "ae"
    res = run_subprocess(
        "train",
        "ae_mlp",
        "--data",
        "digits",
        "--epochs",
        "1",
        "--no-progress",
        "--trainer.tensorboard=false",
        "--model.code_dim=4",
        "--out",
        run,
    )
    assert res.returncode == 0, res.stderr
    return run


def test_train_eval_encode_end_to_end(cli, tmp_path, trained):
    rc, out, err = cli("eval", trained)
    assert rc == 0 and json.loads(out)["test/mse"] < 0.2
    assert (trained / "reconstructions.png").stat().st_size > 1000
    rc, out, err = cli("encode", trained, "-o", tmp_path / "codes.npy")
    import numpy as np

    assert rc == 0 and np.load(tmp_path / "codes.npy").shape == (360, 4)
    import reprlab

    m = reprlab.load(trained)
    assert m.config.code_dim == 4 and not m.training


def test_help_works(cli):
    rc, out, err = cli("--help")
    assert rc == 0 and "train" in out and "study" in out
    rc, out, err = cli("train", "--help")
    assert rc == 0 and "--model.KEY=VALUE" in out


@pytest.mark.parametrize(
    "args, expect",
    [
        (["train", "nope_model", "--data", "digits"], "unknown model 'nope_model'"),
        (["train", "ae_mlp", "--data", "digits", "--model.nope=1"], "unknown config key model.nope"),
        (["train", "ae_mlp", "--data", "digits", "--trainer.lr=-1"], "trainer.lr must be > 0"),
        (["train", "ae_mlp", "--data", "digits", "--trainer.epochs=abc"], "expected int"),
        (["train", "ae_mlp", "--data", "digits", "--bogus-flag"], "unrecognized argument"),
        (["train", "ae_mlp", "--data", "nope"], "unknown dataset 'nope'"),
        (["train", "ae_mlp", "--data", "digits", "--config", "/nonexistent.yaml"], "does not exist"),
        (["eval", "--bogus"], "error"),
        (["frobnicate"], "invalid choice"),
        (["sample", "/nonexistent-run"], "does not exist"),
        (["study", "nope"], "unknown study 'nope'"),
        (["study", "autoencoder", "--threads", "-1"], "--threads must be >= 0"),
    ],
)
def test_bad_input_exit_2_one_line(cli, args, expect):
    rc, out, err = cli(*args)
    assert rc == 2
    assert expect in one_line(err)


def test_missing_dataset_says_how_to_get_it(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("REPRLAB_DATA", raising=False)
    rc, _, err = cli("train", "ae_mlp", "--data-dir", tmp_path / "nowhere", "--out", tmp_path / "r")
    assert rc == 2 and "apt-get install dataset-fashion-mnist" in one_line(err)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "damage, expect",
    [
        ("truncate", "truncated"),
        ("magic", "not an unsigned-byte IDX"),
        ("count", "expected 60000"),
    ],
)
def test_corrupt_idx_exit_2(cli, tmp_path, damage, expect):
    make_fake_fashion(tmp_path, gz=False)
    f = tmp_path / "train-images-idx3-ubyte"
    raw = bytearray(f.read_bytes())
    if damage == "truncate":
        f.write_bytes(raw[: len(raw) // 2])
    elif damage == "magic":
        raw[2] = 0x0D
        f.write_bytes(raw)
    else:
        raw[4:8] = (59999).to_bytes(4, "big")
        f.write_bytes(raw[:-784])
    rc, _, err = cli("train", "ae_mlp", "--data-dir", tmp_path, "--epochs", "1", "--out", tmp_path / "r")
    assert rc == 2 and expect in one_line(err)


def test_existing_run_is_not_overwritten(cli, trained):
    before = (trained / "model.safetensors").read_bytes()
    rc, _, err = cli("train", "ae_mlp", "--data", "digits", "--out", trained, "--no-progress")
    assert rc == 2 and "--overwrite" in one_line(err)
    assert (trained / "model.safetensors").read_bytes() == before


def test_existing_output_file_is_not_overwritten(cli, tmp_path, trained):
    out = tmp_path / "codes.npy"
    out.write_bytes(b"precious")
    rc, _, err = cli("encode", trained, "-o", out)
    assert rc == 2 and "--overwrite" in one_line(err) and out.read_bytes() == b"precious"


@pytest.fixture
def run_copy(tmp_path, trained):
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(trained, dst)
    return dst


def test_truncated_checkpoint(cli, run_copy):
    w = run_copy / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    rc, _, err = cli("eval", run_copy)
    assert rc == 2 and "model.safetensors" in one_line(err)


def test_garbage_checkpoint(cli, run_copy):
    (run_copy / "model.safetensors").write_bytes(b"\x00" * 64)
    rc, _, err = cli("eval", run_copy)
    assert rc == 2 and "corrupt" in one_line(err)


def test_mismatched_checkpoint(cli, run_copy):
    cfg = json.loads((run_copy / "config.json").read_text())
    cfg["model_config"]["code_dim"] = 7
    (run_copy / "config.json").write_text(json.dumps(cfg))
    rc, _, err = cli("eval", run_copy)
    assert rc == 2 and "does not match the model" in one_line(err)


def test_corrupt_config_json(cli, run_copy):
    (run_copy / "config.json").write_text("{not json")
    rc, _, err = cli("eval", run_copy)
    assert rc == 2 and "not valid JSON" in one_line(err)


def test_corrupt_trainer_state_on_resume(cli, run_copy):
    (run_copy / "trainer_state.pt").write_bytes(b"garbage")
    rc, _, err = cli("train", "--resume", run_copy)
    assert rc == 2 and "trainer_state.pt" in one_line(err)


def test_resume_into_another_model(cli, run_copy):
    rc, _, err = cli("train", "ae_conv", "--resume", run_copy)
    assert rc == 2 and "cannot be resumed as ae_conv" in one_line(err)


def test_sample_on_model_that_cannot_sample(cli, trained, tmp_path):
    rc, _, err = cli("sample", trained, "-o", tmp_path / "g.png")
    assert rc == 2 and "cannot sample" in one_line(err)


def test_sample_needs_positive_n(cli, trained):
    rc, _, err = cli("sample", trained, "-n", "0")
    assert rc == 2 and "must be > 0" in one_line(err)


def test_diverging_run_exits_2_and_keeps_checkpoint(tmp_path):
    res = run_subprocess(
        "train",
        "ae_mlp",
        "--data",
        "digits",
        "--epochs",
        "3",
        "--no-progress",
        "--trainer.tensorboard=false",
        "--trainer.lr=1e12",
        "--trainer.optimizer=sgd",
        "--out",
        tmp_path / "r",
    )
    assert res.returncode == 2, res.stderr
    line = [l for l in res.stderr.splitlines() if l.startswith("reprlab: error")]
    assert line and "NaN/Inf at step" in line[0]
    assert (tmp_path / "r" / "trainer_state.pt").exists()


def test_datasets_command(cli):
    rc, out, _ = cli("datasets")
    assert rc == 0 and "digits" in out and "fashion-mnist" in out


def test_models_command(cli):
    rc, out, _ = cli("models")
    assert rc == 0 and "ae_mlp" in out
    # every model names the file that holds it, and that file exists
    src = Path(__file__).resolve().parents[1] / "src" / "reprlab"
    for line in out.splitlines():
        name, task, where = line.split()[:3]
        assert (src / where).is_file(), line


def test_study_threads_reset_before_each_study(cli, monkeypatch, tmp_path):
    """A study that sets torch's thread count (e.g. to 1) does not leak it into the next one."""
    import torch

    from reprlab.studies import base

    seen = []

    class Result:
        verdict = "supported"

    def fake_run_study(name, *args):
        seen.append((name, torch.get_num_threads()))
        torch.set_num_threads(1)  # as the one-thread studies do through their TrainerConfig
        return Result()

    monkeypatch.setattr(base, "run_study", fake_run_study)
    before = torch.get_num_threads()
    try:
        rc, _, _ = cli("study", "all", "--threads", "2", "--out", tmp_path)
    finally:
        torch.set_num_threads(before)
    assert rc == 0 and len(seen) == len(base.study_names()) > 1
    assert all(n == 2 for _, n in seen), seen
