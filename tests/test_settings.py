"""Settings a user can discover: `reprlab models NAME`, `train NAME --help`, `--print-config` (which
round-trips through --config), and choice values written the ways YAML and Lightning write them."""

import json

import pytest
import yaml

from reprlab.config import TrainerConfig, build, describe_fields
from reprlab.errors import ConfigError
from reprlab.registry import get_spec

DIGITS = ["--data", "digits", "--no-progress", "--trainer.tensorboard=false"]


def test_models_name_lists_every_setting_with_type_default_and_help(cli):
    rc, out, err = cli("models", "dcgan")
    assert rc == 0, err
    fields = get_spec("dcgan").config_cls.__dataclass_fields__
    for name in fields:
        assert f"--model.{name}=" in out, name
    line = next(x for x in out.splitlines() if "--model.ema=" in x)
    assert "float" in line and "(default 0.0)" in line and "EMA copy of G" in line


def test_models_unknown_name_is_one_line(cli):
    rc, _, err = cli("models", "no_such_model")
    assert rc == 2 and err.count("\n") == 1 and "unknown model 'no_such_model'" in err


def test_train_help_lists_the_models_and_the_trainers_settings(cli, capsys):
    rc, out, _ = cli("train", "vae_mlp", "--help")
    assert rc == 0
    for name in get_spec("vae_mlp").config_cls.__dataclass_fields__:
        assert f"--model.{name}" in out, name
    for key, *_ in describe_fields(TrainerConfig, "--trainer."):
        assert key in out, key
    assert "{bernoulli,gaussian}" in out and "weight of the KL term" in out
    rc, out, _ = cli("train", "--help")  # no model named: the trainer's settings still show
    assert rc == 0 and "--trainer.early_stop" in out and "model settings of" not in out


def test_every_trainer_setting_has_help():
    missing = [k for k, _, _, h in describe_fields(TrainerConfig) if not h]
    assert not missing, missing


def test_print_config_round_trips_through_config(cli, tmp_path):
    rc, out, err = cli("train", "ae_mlp", *DIGITS, "--epochs", "1", "--model.code_dim=5", "--print-config")
    assert rc == 0, err
    printed = yaml.safe_load(out)
    assert printed["model"]["code_dim"] == 5 and printed["model"]["input_shape"] == [1, 8, 8]
    assert not (tmp_path / "r").exists()
    (tmp_path / "c.yaml").write_text(out)
    rc, _, err = cli("train", "ae_mlp", "--config", tmp_path / "c.yaml", "--out", tmp_path / "r")
    assert rc == 0, err
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["model_config"] == printed["model"]
    assert saved["trainer"] == printed["trainer"] and saved["data"] == printed["data"]


def test_print_config_with_resume_is_refused(cli, tmp_path):
    rc, _, err = cli("train", "--resume", tmp_path, "--print-config")
    assert rc == 2 and err.count("\n") == 1 and "--print-config" in err


@pytest.mark.parametrize(
    "value, want", [(32, "32"), ("32", "32"), ("bf16", "bf16"), ("bf16-mixed", "bf16"), ("32-true", "32")]
)
def test_precision_accepts_yaml_numbers_and_lightnings_names(value, want):
    assert build(TrainerConfig, {"precision": value}, "trainer").precision == want


def test_a_choice_still_refuses_what_it_cannot_be(tmp_path, cli):
    with pytest.raises(ConfigError, match="choose one of: 32, bf16"):
        build(TrainerConfig, {"precision": "16-mixed"}, "trainer")
    with pytest.raises(ConfigError, match="choose one of"):
        build(TrainerConfig, {"precision": 16}, "trainer")
    (tmp_path / "c.yaml").write_text("trainer: {precision: 32, epochs: 1}\n")
    rc, out, err = cli("train", "ae_mlp", *DIGITS, "--config", tmp_path / "c.yaml", "--print-config")
    assert rc == 0 and yaml.safe_load(out)["trainer"]["precision"] == "32", err


def test_every_setting_of_every_model_has_help():
    from reprlab.registry import list_models

    missing = [
        f"{name}.{key}"
        for name in list_models()
        for key, _, _, h in describe_fields(get_spec(name).config_cls)
        if not h
    ]
    assert not missing, missing
