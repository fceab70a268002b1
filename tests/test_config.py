import pytest

from reprlab.config import DataConfig, TrainerConfig, build, load_yaml, parse_overrides, to_dict
from reprlab.errors import ConfigError
from reprlab.registry import build_config, create_model, list_models


def test_overrides_parse_and_coerce():
    tree = parse_overrides(["--trainer.lr=3e-4", "--trainer.epochs", "3", "--model.hidden=64,32"])
    cfg = build(TrainerConfig, tree["trainer"], "trainer")
    assert cfg.lr == pytest.approx(3e-4) and cfg.epochs == 3
    m = build_config("ae_mlp", tree["model"])
    assert m.hidden == (64, 32)


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as e:
        build(TrainerConfig, {"learning_rate": 0.1}, "trainer")
    assert "trainer.learning_rate" in str(e.value) and "trainer.lr" in str(e.value)


@pytest.mark.parametrize(
    "values, text",
    [
        ({"epochs": "three"}, "expected int"),
        ({"lr": -1.0}, "lr must be > 0"),
        ({"optimizer": "rmsprop"}, "choose one of"),
        ({"progress": "maybe"}, "expected bool"),
        ({"epochs": 2.5}, "expected int"),
    ],
)
def test_bad_values(values, text):
    with pytest.raises(ConfigError, match=text):
        build(TrainerConfig, values, "trainer")


def test_configs_are_frozen_and_round_trip():
    cfg = build(TrainerConfig, {"lr": "0.01", "grad_clip": "none"})
    with pytest.raises(Exception):
        cfg.lr = 1.0  # frozen
    assert build(TrainerConfig, to_dict(cfg)) == cfg


def test_yaml_loading(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("trainer:\n  lr: 0.002\nmodel:\n  code_dim: 4\n")
    assert load_yaml(p)["trainer"]["lr"] == 0.002
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "nope.yaml")


def test_registry():
    assert {"ae_mlp", "ae_conv"} <= set(list_models())
    m = create_model("ae_mlp", code_dim=3, input_shape=(1, 8, 8))
    assert m.config.code_dim == 3 and m.registry_name == "ae_mlp"
    with pytest.raises(ConfigError, match="unknown model 'nope'.*ae_mlp"):
        create_model("nope")
    with pytest.raises(ConfigError, match="code_dim must be >= 1"):
        create_model("ae_mlp", code_dim=0)


def test_data_config_checks():
    with pytest.raises(ConfigError):
        build(DataConfig, {"limit": -5}, "data")
