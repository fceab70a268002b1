"""Experiment loggers (trainer.loggers): MLflow against a local store and W&B offline log exactly the values of
metrics.jsonl at the same steps and the run's config, with no network; a resumed run continues the same tracker
run; an unknown logger or a tracker whose package is missing is one line and exit 2, before any folder is made."""

from __future__ import annotations

import glob
import json
import struct
import sys
from pathlib import Path

import pytest
import torch

from reprlab.config import TrainerConfig, build
from reprlab.data.batches import TensorBatches
from reprlab.errors import ConfigError
from reprlab.registry import create_model
from reprlab.train.engine import Trainer, seed_everything
from reprlab.train.loggers import selected

TRAIN = ["train", "ae_mlp", "--data", "digits", "--epochs", "2", "--no-progress", "--model.hidden=16"]


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _numbers(row: dict) -> dict[str, float]:
    return {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _one_line_error(rc: int, err: str) -> str:
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---------------------------------------------------------------------------------------------- config
def test_logger_names_parse_and_tensorboard_false_removes_it():
    assert build(TrainerConfig, {"loggers": "CSV, mlflow,csv"}).loggers == ("csv", "mlflow")
    assert build(TrainerConfig, {"loggers": ["wandb", "tensorboard"]}).loggers == ("wandb", "tensorboard")
    assert build(TrainerConfig, {"loggers": "none"}).loggers == ()
    assert TrainerConfig().loggers == ("csv", "tensorboard")
    assert selected(TrainerConfig(tensorboard=False)) == ["csv"]
    assert selected(TrainerConfig(loggers=("tensorboard", "mlflow"), tensorboard=False)) == ["mlflow"]
    with pytest.raises(ConfigError, match="unknown logger 'neptune'; choose from csv, tensorboard, mlflow, wandb"):
        build(TrainerConfig, {"loggers": "csv,neptune"})


@pytest.mark.parametrize("loggers, folders", [("csv,tensorboard", {"logs", "tb"}), ("csv", {"logs"}), ("none", set())])
def test_builtin_loggers_write_only_what_is_selected(tmp_path, loggers, folders):
    seed_everything(0)
    m = create_model("ae_mlp", input_shape=(1, 4, 4), code_dim=2, hidden=(4,))
    cfg = build(TrainerConfig, {"epochs": 1, "batch_size": 16, "progress": False, "loggers": loggers})
    data = TensorBatches({"x": torch.rand(32, 1, 4, 4)}, 16)
    Trainer(cfg, tmp_path / "run").fit(m, data)
    assert {p.name for p in (tmp_path / "run").iterdir() if p.is_dir()} == folders


def test_unknown_logger_is_one_line(cli, tmp_path):
    rc, _, err = cli(*TRAIN, "--trainer.loggers=csv,neptune", "--out", tmp_path / "run")
    line = _one_line_error(rc, err)
    assert "unknown logger 'neptune'" in line and "mlflow, wandb" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("tracker", ["mlflow", "wandb"])
def test_missing_tracker_package_names_the_extra(cli, tmp_path, monkeypatch, tracker):
    monkeypatch.setitem(sys.modules, tracker, None)  # `import mlflow` now fails as if it were not installed
    rc, _, err = cli(*TRAIN, f"--trainer.loggers=csv,{tracker}", "--out", tmp_path / "run")
    line = _one_line_error(rc, err)
    assert f"pip install 'reprlab[{tracker}]'" in line
    assert not (tmp_path / "run").exists(), "refused before the run folder is made"


# ---------------------------------------------------------------------------------------------- MLflow
def _mlflow_equals_metrics_jsonl(uri: str, run: Path) -> dict[str, str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run_id = json.loads((run / "trackers.json").read_text())["mlflow"]["run_id"]
    info = client.get_run(run_id)
    assert info.info.status == "FINISHED"
    rows = _rows(run)
    compared = 0
    for key in _numbers(rows[0]):
        history = {m.step: m.value for m in client.get_metric_history(run_id, key)}
        for row in rows:
            assert history[row["step"]] == row[key], (key, row["step"])  # the same float, not a rounded one
            compared += 1
    assert compared >= 2 * 6  # epoch, step, train/loss, val/loss, lr, ... in each of the rows
    return info.data.params


def test_mlflow_file_store_logs_metrics_jsonl_and_config(cli, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    uri = (tmp_path / "store").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps its file store behind this switch
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "reprlab-test")
    run = tmp_path / "run"
    rc, out, err = cli(*TRAIN, "--trainer.loggers=csv,mlflow", "--trainer.lr=0.003", "--out", run)
    assert rc == 0, err
    # stderr holds only the training stage's one progress line, nothing from MLflow
    assert [x for x in err.splitlines() if x.strip()] == [x for x in err.splitlines() if " steps in " in x], err
    params = _mlflow_equals_metrics_jsonl(uri, run)
    config = json.loads((run / "config.json").read_text())
    assert params["model"] == "ae_mlp" and float(params["trainer.lr"]) == config["trainer"]["lr"] == 0.003
    assert params["model_config.hidden"] == "[16]" and params["seed"] == "0"
    assert len(_rows(run)) == 2 and (tmp_path / "store").is_dir() and not (run / "mlruns").exists()


@pytest.mark.slow
def test_mlflow_default_store_is_in_the_run_folder_and_resume_continues_its_run(cli, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = tmp_path / "run"
    rc, _, err = cli(*TRAIN[:4], "--epochs", "1", *TRAIN[6:], "--trainer.loggers=mlflow", "--out", run)
    assert rc == 0, err
    first = json.loads((run / "trackers.json").read_text())["mlflow"]["run_id"]
    rc, _, err = cli("train", "--resume", run, "--epochs", "2", "--no-progress")
    assert rc == 0, err
    assert json.loads((run / "trackers.json").read_text())["mlflow"]["run_id"] == first
    uri = "sqlite:///" + str((run / "mlruns" / "mlflow.db").resolve())
    _mlflow_equals_metrics_jsonl(uri, run)
    assert len(_rows(run)) == 2 and not (run / "logs").exists() and not (run / "tb").exists()


# ---------------------------------------------------------------------------------------------- W&B
def _wandb_records(path: str):
    """The records of a .wandb transaction log: a 7-byte header, then LevelDB-log records in 32 KiB blocks
    (checksum u32, length u16, type u8: 1 full, 2 first, 3 middle, 4 last), each a wandb Record protobuf."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B"
    pos, block, part = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _crc, n, kind = struct.unpack("<IHB", data[pos : pos + 7])
        part += data[pos + 7 : pos + 7 + n]
        pos += 7 + n
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(part)
            part = b""
            yield rec


def test_wandb_offline_logs_metrics_jsonl_and_config(cli, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    (tmp_path / "wb").mkdir()
    run = tmp_path / "run"
    rc, out, err = cli(*TRAIN, "--trainer.loggers=csv,wandb", "--trainer.lr=0.003", "--out", run)
    assert rc == 0, err
    run_id = json.loads((run / "trackers.json").read_text())["wandb"]["id"]
    files = glob.glob(str(tmp_path / "wb" / "wandb" / f"offline-run-*-{run_id}" / f"run-{run_id}.wandb"))
    assert len(files) == 1, "the run's log goes to WANDB_DIR"
    history: dict[int, dict] = {}
    config = {}
    for rec in _wandb_records(files[0]):
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            row = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item}
            history.setdefault(row["_step"], {}).update(row)
        elif kind in ("run", "config"):
            items = rec.run.config.update if kind == "run" else rec.config.update
            config.update({i.key: json.loads(i.value_json) for i in items})
    rows = _rows(run)
    assert sorted(history) == [r["step"] for r in rows]
    for row in rows:
        for key, value in _numbers(row).items():
            assert history[row["step"]][key] == value, (key, row["step"])
    assert config["model"] == "ae_mlp" and config["trainer"]["lr"] == 0.003 and config["model_config"]["hidden"] == [16]
