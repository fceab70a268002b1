"""A run folder never loses a user's files: --overwrite replaces only a run, one writer at a time,
resume honours new settings and leaves a finished run alone, checkpoints are finite, metrics survive a
kill, and identical runs write identical bytes."""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO, run_subprocess
from reprlab.config import TrainerConfig
from reprlab.data.batches import TensorBatches
from reprlab.errors import RunExistsError
from reprlab.registry import create_model
from reprlab.train import checkpoint as ck
from reprlab.train.engine import Trainer, seed_everything
from reprlab.train.rundir import LOCK, OpenRun, RunLock

BASIC = ["--data", "digits", "--no-progress", "--trainer.tensorboard=false"]
FAST = ["--data", "digits", "--no-progress", "--trainer.tensorboard=false", "--model.hidden=16", "--model.code_dim=4"]


def one_line(err: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def tree_hash(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (recursively) and its sha256."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file() and p.name != LOCK  # a lock file lives only while a writer holds the folder
    }


@pytest.fixture
def finished_run(cli, tmp_path):
    run = tmp_path / "run"
    rc, _, err = cli("train", "ae_mlp", *FAST, "--epochs", "2", "--out", run)
    assert rc == 0, err
    return run


# ------------------------------------------------------------------ --overwrite replaces only a run
def test_overwrite_refuses_a_folder_with_user_files(cli, tmp_path):
    u = tmp_path / "u"
    (u / "sub").mkdir(parents=True)
    (u / "a.txt").write_text("x")
    (u / "sub" / "b.txt").write_text("y")
    before = tree_hash(u)
    rc, _, err = cli("train", "ae_mlp", *FAST, "--epochs", "1", "--out", u, "--overwrite")
    assert rc == 2 and "not a reprlab run" in one_line(err)
    assert tree_hash(u) == before


def test_overwrite_refuses_a_run_holding_a_user_file(cli, finished_run):
    (finished_run / "notes.txt").write_text("mine")
    before = tree_hash(finished_run)
    rc, _, err = cli("train", "ae_mlp", *FAST, "--epochs", "1", "--out", finished_run, "--overwrite")
    assert rc == 2 and "notes.txt" in one_line(err) and "only replaces a run" in err
    assert tree_hash(finished_run) == before


def test_overwrite_of_the_working_directory_is_refused(tmp_path):
    cwd = tmp_path / "work"
    cwd.mkdir()
    (cwd / "precious.txt").write_text("keep me")
    for out in (".", ".."):
        res = subprocess.run(
            [sys.executable, "-m", "reprlab", "train", "ae_mlp", *FAST, "--epochs", "1", "--out", out, "--overwrite"],
            cwd=cwd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO / "src")), timeout=120,
        )  # fmt: skip
        assert res.returncode == 2, res.stderr
        assert "working directory" in one_line(res.stderr) or "not a reprlab run" in res.stderr
    assert (cwd / "precious.txt").read_text() == "keep me" and sorted(os.listdir(cwd)) == ["precious.txt"]


def test_overwrite_of_home_and_root_is_refused(cli, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.json").write_text('{"model": "ae_mlp"}')  # even a home that looks like a run
    monkeypatch.setenv("HOME", str(home))
    rc, _, err = cli("train", "ae_mlp", *FAST, "--epochs", "1", "--out", home, "--overwrite")
    assert rc == 2 and "home folder" in one_line(err) and (home / "config.json").exists()
    rc, _, err = cli("train", "ae_mlp", *FAST, "--epochs", "1", "--out", "/", "--overwrite")
    assert rc == 2 and "root folder" in one_line(err)


def test_overwrite_replaces_a_run_only_after_the_new_first_checkpoint(finished_run):
    old = tree_hash(finished_run)
    run = OpenRun(finished_run, overwrite=True)  # what a new run does first
    aside = finished_run.with_name(f".{finished_run.name}.replaced-{os.getpid()}")
    assert aside.is_dir() and tree_hash(aside) == old  # the old run is kept, whole, until the commit
    run.close()  # the new run failed before its first checkpoint: the old one comes back
    assert not aside.exists() and tree_hash(finished_run) == old
    run = OpenRun(finished_run, overwrite=True)
    run.commit()
    run.close()
    assert not aside.exists() and not any(finished_run.iterdir())


def test_pretrain_overwrite_refuses_user_files(cli, tmp_path):
    u = tmp_path / "u"
    u.mkdir()
    (u / "a.txt").write_text("x")
    rc, _, err = cli("pretrain", "--layers", "8", "--data", "digits", "--epochs", "1", "--out", u, "--overwrite")
    assert rc == 2 and "not a reprlab run" in one_line(err) and (u / "a.txt").read_text() == "x"


def test_symlink_and_file_outputs_are_refused(cli, tmp_path, finished_run):
    link = tmp_path / "link"
    link.symlink_to(finished_run)
    before = tree_hash(finished_run)
    rc, _, err = cli("train", "ae_mlp", *FAST, "--epochs", "1", "--out", link, "--overwrite")
    assert rc == 2 and "symbolic link" in one_line(err) and tree_hash(finished_run) == before
    f = tmp_path / "file"
    f.write_text("x")
    for cmd in (["train", "ae_mlp", *FAST], ["pretrain", "--layers", "8", "--data", "digits"]):
        rc, _, err = cli(*cmd, "--epochs", "1", "--out", f)
        assert rc == 2 and "not a folder" in one_line(err) and f.read_text() == "x"


# ------------------------------------------------------------------ one writer at a time
def test_a_second_writer_is_refused_while_the_first_runs(tmp_path):
    run = tmp_path / "R"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    first = subprocess.Popen(
        [sys.executable, "-m", "reprlab", "train", "ae_mlp", *FAST, "--epochs", "100000", "--seed", "1",
         "--out", str(run)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / ck.STATE).exists():
            time.sleep(0.05)
        assert (run / ck.STATE).exists(), "the first run never wrote a checkpoint"
        for extra in ([], ["--overwrite"]):
            res = run_subprocess("train", "vae_mlp", *FAST, "--epochs", "1", "--seed", "2", "--out", run, *extra)
            assert res.returncode == 2 and f"in use by pid {first.pid}" in one_line(res.stderr)
        res = run_subprocess("train", "--resume", run, "--no-progress")
        assert res.returncode == 2 and f"in use by pid {first.pid}" in one_line(res.stderr)
    finally:
        first.kill()
        first.wait()
    # the first writer's run is intact: its config and weights agree, and it resumes to the end
    assert json.loads((run / ck.CONFIG).read_text())["model"] == "ae_mlp"
    assert ck.weights_metadata(run / ck.WEIGHTS)["model"] == "ae_mlp"
    step = ck.load_state(run / ck.STATE)["step"]
    res = run_subprocess("train", "--resume", run, f"--trainer.max_steps={step + 5}", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert ck.load_state(run / ck.STATE)["step"] == step + 5
    assert "taking over the lock" in res.stdout  # the killed writer's lock file, taken over with a notice


def test_a_lock_is_exclusive_and_released(tmp_path):
    lock = RunLock(tmp_path)
    assert (tmp_path / LOCK).read_text().split()[0] == str(os.getpid())
    code = "import sys; from reprlab.train.rundir import RunLock; RunLock(sys.argv[1])"
    other = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO / "src")),
    )  # fmt: skip
    assert other.returncode != 0 and f"in use by pid {os.getpid()}" in other.stderr
    lock.release()
    assert not (tmp_path / LOCK).exists()
    assert (
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], env=dict(os.environ, PYTHONPATH=str(REPO / "src"))
        ).returncode
        == 0
    )


def test_torchrun_checks_the_existing_run(finished_run):
    before = tree_hash(finished_run)
    torchrun = Path(sys.executable).with_name("torchrun")
    res = subprocess.run(
        [str(torchrun), "--nproc-per-node", "1", "-m", "reprlab", "train", "ae_mlp", *FAST, "--epochs", "1",
         "--out", str(finished_run)],
        capture_output=True, text=True, timeout=180,
        env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src")),
    )  # fmt: skip
    assert res.returncode != 0 and "already holds a run" in res.stderr
    assert tree_hash(finished_run) == before


# ------------------------------------------------------------------ resume
def test_resume_takes_a_new_lr_and_records_new_settings(cli, tmp_path):
    run = tmp_path / "N"
    rc, _, err = cli("train", "ae_mlp", *BASIC, "--epochs", "6", "--lr", "1e6", "--out", run)
    assert rc == 2 and "diverged" in one_line(err)
    rc, out, err = cli("train", "--resume", run, "--lr", "1e-3", "--no-progress")
    assert rc == 0, err
    assert "trainer.lr=0.001 (was 1000000.0)" in out
    cfg = json.loads((run / ck.CONFIG).read_text())
    assert cfg["trainer"]["lr"] == 1e-3
    final = json.loads((run / "final_metrics.json").read_text())
    assert final["epoch"] == 6 and torch.isfinite(torch.tensor(final["test/loss"]))


def test_every_checkpoint_holds_finite_weights(cli, tmp_path):
    run = tmp_path / "N"
    rc, _, err = cli(
        "train", "ae_mlp", *BASIC, "--epochs", "6", "--lr", "1e6", "--trainer.checkpoint_every=1", "--out", run
    )
    assert rc == 2 and "NaN/Inf" in one_line(err)
    for name in (ck.WEIGHTS,):
        assert all(torch.isfinite(v).all() for v in load_file(run / name).values())
    assert all(torch.isfinite(v).all() for v in ck.load_state(run / ck.STATE)["model"].values())
    rc, out, err = cli("eval", run)
    assert rc == 0 and json.loads(out)["test/loss"] == json.loads(out)["test/loss"], err  # finite, not NaN


def test_resuming_a_finished_run_changes_nothing(cli, finished_run):
    before = tree_hash(finished_run)
    rc, _, err = cli("train", "--resume", finished_run, "--no-progress")
    assert rc == 0 and "already finished" in one_line(err)
    assert tree_hash(finished_run) == before


def test_resume_with_more_epochs_is_recorded(cli, finished_run):
    rc, _, err = cli("train", "--resume", finished_run, "--epochs", "4", "--trainer.max_steps=30", "--no-progress")
    assert rc == 0, err
    cfg = json.loads((finished_run / ck.CONFIG).read_text())["trainer"]
    assert cfg["epochs"] == 4 and cfg["max_steps"] == 30
    # a plain resume (max_steps lifted) now continues to epoch 4, not to the 2 epochs first asked for
    rc, _, err = cli("train", "--resume", finished_run, "--trainer.max_steps=0", "--no-progress")
    assert rc == 0, err
    lines = [json.loads(x) for x in (finished_run / ck.METRICS).read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2, 3, 3, 4] or [x["epoch"] for x in lines][-1] == 4


def test_resume_refuses_settings_that_fix_the_position(cli, finished_run):
    before = tree_hash(finished_run)
    for flag in (["--batch-size", "7"], ["--seed", "5"], ["--trainer.optimizer=sgd"], ["--model.code_dim=5"]):
        rc, _, err = cli("train", "--resume", finished_run, "--epochs", "3", *flag, "--no-progress")
        assert rc == 2 and "cannot change on --resume" in one_line(err), flag
    assert tree_hash(finished_run) == before


def test_a_trainer_state_without_rng_is_refused(cli, finished_run):
    state = ck.load_state(finished_run / ck.STATE)
    del state["rng"]
    ck.save_state(finished_run / ck.STATE, state)
    rc, _, err = cli("train", "--resume", finished_run, "--epochs", "3", "--no-progress")
    assert rc == 2 and "lacks 'rng'" in one_line(err)


def test_stale_temp_files_are_removed_when_the_run_is_opened(cli, finished_run):
    stale = finished_run / f".{ck.STATE}.tmp-99999"
    stale.write_bytes(b"half a file")
    rc, _, err = cli("train", "--resume", finished_run, "--epochs", "3", "--no-progress")
    assert rc == 0, err
    assert not stale.exists()


def test_weights_of_another_model_are_refused(finished_run):
    cfg = json.loads((finished_run / ck.CONFIG).read_text())
    cfg["model"] = "dae_mlp"  # same tensor names as ae_mlp
    (finished_run / ck.CONFIG).write_text(json.dumps(cfg))
    with pytest.raises(Exception, match="holds ae_mlp weights but .* names dae_mlp"):
        ck.load_run(finished_run)


# ------------------------------------------------------------------ metrics survive a kill
def _metrics(run):
    drop = ("epoch_seconds", "train_seconds")
    return [
        {k: v for k, v in json.loads(x).items() if k not in drop} for x in (run / ck.METRICS).read_text().splitlines()
    ]


def _ae():
    seed_everything(0)
    return create_model("ae_mlp", input_shape=(1, 4, 4), code_dim=3, hidden=(8,))


def _data():
    g = torch.Generator().manual_seed(0)
    return TensorBatches({"x": torch.rand(96, 1, 4, 4, generator=g)}, 16)


def test_a_kill_between_the_state_and_the_metrics_write_loses_no_epoch(tmp_path, monkeypatch):
    cfg = TrainerConfig(epochs=3, batch_size=16, progress=False, tensorboard=False)
    Trainer(cfg, tmp_path / "ref").fit(_ae(), _data())
    real = ck.atomic_write_text
    calls = {"n": 0}

    def killed_at_epoch_2(path, text):
        if Path(path).name == ck.METRICS and text.count("\n") == 2:
            raise KeyboardInterrupt  # the state of epoch 2 is written, its metrics line is not
        return real(path, text)

    monkeypatch.setattr(ck, "atomic_write_text", killed_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, tmp_path / "run").fit(_ae(), _data())
    monkeypatch.setattr(ck, "atomic_write_text", real)
    assert len((tmp_path / "run" / ck.METRICS).read_text().splitlines()) == 1  # the line is missing on disk
    Trainer(cfg, tmp_path / "run", resume=True).fit(_ae(), _data())
    assert _metrics(tmp_path / "run") == _metrics(tmp_path / "ref")
    assert calls["n"] == 0


def test_a_mid_epoch_resume_keeps_the_epochs_running_sums(tmp_path):
    cfg = dict(epochs=3, batch_size=16, progress=False, tensorboard=False)
    Trainer(TrainerConfig(**cfg), tmp_path / "ref").fit(_ae(), _data())
    Trainer(TrainerConfig(max_steps=8, **cfg), tmp_path / "run").fit(_ae(), _data())  # stops inside epoch 2
    Trainer(TrainerConfig(**cfg), tmp_path / "run", resume=True).fit(_ae(), _data())
    ref, run = _metrics(tmp_path / "ref"), _metrics(tmp_path / "run")
    assert [m["epoch"] for m in run] == [1, 2, 2, 3]  # the cut epoch's partial line, then the whole epoch
    assert run[2] == ref[1] and run[3] == ref[2] and run[0] == ref[0]


# ------------------------------------------------------------------ identical runs, identical bytes
def test_identical_runs_write_identical_weight_files(tmp_path):
    digests = []
    for i in range(2):  # separate processes: safetensors' metadata order changed from process to process
        res = run_subprocess("train", "ae_mlp", *FAST, "--epochs", "1", "--out", tmp_path / f"r{i}")
        assert res.returncode == 0, res.stderr
        digests.append(hashlib.sha256((tmp_path / f"r{i}" / ck.WEIGHTS).read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_canonical_safetensors_is_a_valid_file_with_sorted_metadata(tmp_path):
    model = _ae()
    ck.save_weights(tmp_path / "w.safetensors", model, {"z": "1", "a": "2", "model": "ae_mlp"})
    raw = (tmp_path / "w.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert n % 8 == 0 and raw[8 : 8 + n].decode().startswith('{"__metadata__":{"a":"2","model":"ae_mlp","z":"1"}')
    loaded = load_file(tmp_path / "w.safetensors")
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())


def test_open_run_refuses_a_folder_filled_while_it_waited(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text('{"model": "ae_mlp"}')
    with pytest.raises(RunExistsError, match="already holds a run"):
        OpenRun(tmp_path / "r")


def test_an_error_under_ddp_is_one_line(tmp_path):
    """Both processes fail alike; only rank 0 speaks, and Fabric's start-up banner is not printed."""
    res = run_subprocess(
        "train", "ae_mlp", *FAST, "--epochs", "2", "--devices", "2", "--trainer.early_stop=val/acc:2",
        "--out", tmp_path / "ddp", timeout=240,
    )  # fmt: skip
    assert res.returncode == 2 and "val/acc" in one_line(res.stderr)
    assert res.stdout.count("data: ") == 1


@pytest.mark.parametrize("code, says", [(28, "disk is full"), (30, "read-only")])  # ENOSPC, EROFS
def test_a_failing_disk_is_one_line_and_keeps_the_last_checkpoint(cli, finished_run, monkeypatch, code, says):
    import errno

    assert code in (errno.ENOSPC, errno.EROFS)
    import reprlab.io as rio

    before = tree_hash(finished_run)

    def failing(path):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(ck, "atomic_write_bytes", lambda path, data: rio.atomic_write_with(path, failing))
    rc, _, err = cli("train", "--resume", finished_run, "--epochs", "3", "--no-progress")
    monkeypatch.undo()
    assert rc == 2 and says in one_line(err)
    assert not list(finished_run.glob(".*.tmp-*"))  # the failed write left no temp file
    after = tree_hash(finished_run)
    for name in (ck.STATE, ck.WEIGHTS, ck.METRICS):  # the last good checkpoint is as it was
        assert after[name] == before[name]
    rc, _, err = cli("train", "--resume", finished_run, "--epochs", "3", "--no-progress")
    assert rc == 0, err  # and it resumes once the disk is back
