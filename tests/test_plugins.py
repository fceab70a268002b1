"""Outside packages add models and datasets through entry points (groups ``reprlab.models`` and
``reprlab.datasets``). Each test installs a fake distribution: a folder on ``sys.path`` holding a module and a
``*.dist-info`` with ``METADATA`` and ``entry_points.txt``, which ``importlib.metadata`` finds as it finds an
installed package."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import reprlab.data as data_pkg
import reprlab.registry as registry

PLUGIN_MODULE = '''
from dataclasses import dataclass

import torch
from torch import nn

from reprlab import register_model
from reprlab.data import ImageData, register_dataset
from reprlab.models.base import ReprModel


@dataclass(frozen=True)
class TinyConfig:
    input_shape: tuple[int, ...] = (1, 28, 28)
    scale: float = 1.0


@register_model("plug_linear_ae", config=TinyConfig)
class TinyAE(ReprModel):
    """A one-layer linear autoencoder from an outside package."""

    def __init__(self, config):
        super().__init__(config)
        d = 1
        for s in config.input_shape:
            d *= s
        self.enc = nn.Linear(d, 2)
        self.dec = nn.Linear(2, d)

    def encode(self, x):
        return self.enc(x.flatten(1))

    def loss(self, batch):
        x = batch["x"].flatten(1)
        return {"loss": ((self.dec(self.enc(x)) - x) ** 2).mean() * self.config.scale}


def _describe(data_dir):
    return {"found": True, "where": "generated", "sizes": "40 train / 10 test, 1x4x4, 2 classes", "how": None}


@register_dataset("plug-squares", "images", _describe)
def _load(data_dir=None, val_size=5000, limit=0):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 1, 4, 4, generator=g)
    y = torch.arange(50) % 2
    return ImageData("plug-squares", (x[:32], y[:32]), (x[32:40], y[32:40]), (x[40:], y[40:]), ("a", "b"), "generated")
'''


def install(root: Path, monkeypatch, entry_points: str, module: str | None = PLUGIN_MODULE) -> None:
    """A fake distribution ``reprlab-plug`` under ``root``, on sys.path, with a fresh registry to load into."""
    info = root / "reprlab_plug-0.1.dist-info"
    info.mkdir(parents=True)
    if module is not None:
        (root / "reprlab_plug.py").write_text(module)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: reprlab-plug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, "reprlab_plug", raising=False)
    # the plugins load on first use: start from a registry that has not looked yet, and drop what they add
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    monkeypatch.setattr(registry, "_LOADED", False)
    monkeypatch.setattr(data_pkg, "_DATASETS", dict(data_pkg._DATASETS))
    monkeypatch.setattr(data_pkg, "_PLUGINS_LOADED", False)


GOOD = "[reprlab.models]\nlinear = reprlab_plug\n\n[reprlab.datasets]\nsquares = reprlab_plug\n"


def test_a_plugin_model_and_dataset_are_registered_and_train(cli, tmp_path, monkeypatch):
    install(tmp_path / "site", monkeypatch, GOOD)
    rc, out, err = cli("models")
    assert rc == 0 and "plug_linear_ae" in out, err
    rc, out, err = cli("datasets")
    assert rc == 0 and "plug-squares" in out and "40 train / 10 test" in out
    run = tmp_path / "run"
    rc, out, err = cli("train", "plug_linear_ae", "--data", "plug-squares", "--epochs", "2", "--batch-size", "8",
                       "--model.scale=2", "--no-progress", "--trainer.loggers=none", "--out", run)  # fmt: skip
    assert rc == 0, err
    assert "plug-squares: 32 train / 8 val / 10 test" in out
    import reprlab

    model = reprlab.load(run)
    assert type(model).__name__ == "TinyAE" and model.config.input_shape == (1, 4, 4) and model.config.scale == 2.0


def test_an_entry_point_may_name_a_function_that_registers(tmp_path, monkeypatch):
    module = PLUGIN_MODULE.replace('@register_model("plug_linear_ae", config=TinyConfig)\n', "").replace(
        '@register_dataset("plug-squares", "images", _describe)\n', ""
    )
    module += (
        "\n\ndef setup():\n    register_model('plug_late', config=TinyConfig)(TinyAE)\n"
        "    register_dataset('plug-late', 'images', _describe)(_load)\n"
    )
    install(tmp_path / "site", monkeypatch, "[reprlab.models]\nlate = reprlab_plug:setup\n", module)
    assert "plug_late" in registry.list_models()


@pytest.mark.parametrize(
    "entry, expect",
    [
        ("[reprlab.models]\nbroken = reprlab_plug_missing\n", "ModuleNotFoundError"),
        ("[reprlab.models]\nbroken = reprlab_plug:no_such_name\n", "AttributeError"),
        ("[reprlab.datasets]\nbroken = reprlab_plug:explode\n", "ValueError: the plugin's own bug"),
    ],
)
def test_a_broken_plugin_is_one_line_naming_it(cli, tmp_path, monkeypatch, entry, expect):
    module = PLUGIN_MODULE + '\n\ndef explode():\n    raise ValueError("the plugin\'s own bug\\nmore text")\n'
    install(tmp_path / "site", monkeypatch, entry, module)
    command = "datasets" if "datasets" in entry else "models"
    rc, out, err = cli(command)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1, err
    assert "plugin 'broken'" in lines[0] and "reprlab-plug" in lines[0] and expect in lines[0]
    assert "Traceback" not in err
