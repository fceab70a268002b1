"""Classifier backbones at the data's size: small_cnn, resnet18 (ImageNet stem from 64 px) and timm:NAME build,
train one engine step and round-trip through a run folder at 28, 32 and 64 px with 1 or 3 channels; timm and
torchvision weights files load tensor for tensor; a file matching under 90% of the backbone is refused with
its counts; bad names and sizes are one line."""

from __future__ import annotations

import pytest
import torch
import torchvision
from safetensors.torch import save_file

import reprlab
from reprlab.config import TrainerConfig, to_dict
from reprlab.data.batches import TensorBatches
from reprlab.errors import CheckpointError, ConfigError
from reprlab.models.pretrained import load_backbone_weights, read_state_dict
from reprlab.registry import create_model
from reprlab.train.engine import Trainer, seed_everything

TIMM = "test_resnet"  # timm's smallest ResNet (0.37 M parameters): seconds on a CPU
SHAPES = [(c, s, s) for s in (28, 32, 64) for c in (1, 3)]
FAST = ["--no-progress", "--trainer.loggers=none", "--trainer.threads=1"]


@pytest.fixture(scope="module")
def timm():
    return pytest.importorskip("timm")


def _one_line_error(rc: int, err: str) -> str:
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _random_stats(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm non-trivial running statistics, so a load that skipped them would show."""
    g = torch.Generator().manual_seed(seed)
    for bn in net.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=g) * 0.1)
            bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=g) + 0.5)
    return net.eval()


# ---------------------------------------------------------------------------------------------- any size
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("backbone", ["small_cnn", "resnet18", f"timm:{TIMM}"])
def test_classifier_builds_trains_and_round_trips_at_the_data_size(tmp_path, backbone, shape, request):
    if backbone.startswith("timm:"):
        request.getfixturevalue("timm")
    seed_everything(0)
    model = create_model("classifier", backbone=backbone, input_shape=shape, num_classes=3, width=4)
    x, y = torch.rand(8, *shape), torch.arange(8) % 3
    assert model(x).shape == (8, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainerConfig(epochs=1, batch_size=8, progress=False, loggers=(), threads=1)
    run = {"model": "classifier", "model_config": to_dict(model.config)}
    Trainer(cfg, tmp_path / "run", run).fit(model, TensorBatches({"x": x, "y": y}, 8))
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any(k.startswith("backbone.") for k in changed) and "head.weight" in changed, "one step trains"
    loaded = reprlab.load(tmp_path / "run")
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert [k for k in loaded.state_dict()] == list(after)


@pytest.mark.parametrize(
    "values, expect",
    [
        (dict(backbone="small_cnn", input_shape=(1, 4, 4)), "at least 8x8 pixels (e.g. 28, 32, 64, 224), got 1x4x4"),
        (dict(backbone="resnet18", input_shape=(3, 7, 40)), "at least 8x8 pixels"),
        (dict(backbone="resnet18", stem="imagenet", input_shape=(3, 16, 16)), "with the ImageNet stem takes images"),
        (dict(backbone="resnet18", input_shape=(2, 32, 32)), "takes 1 or 3 channels, got 2"),
        (dict(backbone="vgg"), "model.backbone must be small_cnn, resnet18 or timm:NAME"),
        (dict(backbone="timm:"), "model.backbone must be small_cnn, resnet18 or timm:NAME"),
    ],
)
def test_sizes_and_names_a_builtin_backbone_cannot_take_are_one_line(values, expect):
    with pytest.raises(ConfigError, match=expect.replace("(", r"\(").replace(")", r"\)")):
        create_model("classifier", **values)


def test_timm_size_it_cannot_run_on_names_the_sizes_it_runs_on(timm):
    with pytest.raises(ConfigError) as e:  # a ViT's 16-pixel patches do not tile 28x28
        create_model("classifier", backbone="timm:test_vit", input_shape=(1, 28, 28))
    msg = str(e.value)
    assert "timm model test_vit cannot run on 1x28x28 images" in msg and "\n" not in msg
    works = msg.split("it runs on ")[1]
    assert "32x32" in works and "64x64" in works and "28x28" not in works
    vit = create_model("classifier", backbone="timm:test_vit", input_shape=(3, 32, 32), num_classes=2)
    assert vit(torch.rand(2, 3, 32, 32)).shape == (2, 2)


# ---------------------------------------------------------------------------------------------- ResNet-18 stems
def test_resnet18_uses_the_imagenet_stem_from_64_px_and_matches_torchvision():
    small = create_model("classifier", backbone="resnet18", input_shape=(3, 32, 32)).backbone
    assert small.stem == "small" and small.conv1.kernel_size == (3, 3) and isinstance(small.maxpool, torch.nn.Identity)
    seed_everything(1)
    tv = _random_stats(torchvision.models.resnet18())
    state = tv.state_dict()
    m = create_model("classifier", backbone="resnet18", input_shape=(3, 64, 64), num_classes=4)
    assert m.backbone.stem == "imagenet" and m.backbone.conv1.kernel_size == (7, 7)
    rep = load_backbone_weights(m, state, strict=True)
    assert len(rep.loaded) == len(m.backbone.state_dict()) == len(state) - 2  # all but fc.weight, fc.bias
    tv.fc = torch.nn.Identity()
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(m.eval().backbone(x), tv(x), rtol=0, atol=1e-6)
    # torchvision's ImageNet files predate BatchNorm's num_batches_tracked counters: not missing weights
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    rep = load_backbone_weights(m, old, strict=True)
    assert len(rep.loaded) == len(old) - 2 and not rep.reinitialized


def test_a_resnet50_file_is_refused_by_the_resnet18_with_its_counts():
    r50 = torchvision.models.resnet50().state_dict()
    m = create_model("classifier", backbone="resnet18", input_shape=(1, 28, 28))
    own = m.backbone.state_dict()
    body = {k: v for k, v in r50.items() if not k.startswith("fc.")}
    matched = sum(k in own and v.shape == own[k].shape for k, v in body.items())
    shapes = sum(k in own and v.shape != own[k].shape for k, v in body.items())
    unexpected = sum(k not in own for k in body)
    assert matched / len(own) < 0.9  # the file that "loaded 96 backbone tensors" without a word
    before = {k: v.clone() for k, v in own.items()}
    for strict in (True, False):
        with pytest.raises(CheckpointError) as e:
            load_backbone_weights(m, r50, strict=strict, where="resnet50.pth")
        assert (
            f"{matched} matched, 0 missing from the file, {unexpected} unexpected in the file, {shapes} with other "
            "shapes" in str(e.value)
        )
    assert all(torch.equal(before[k], v) for k, v in m.backbone.state_dict().items()), "nothing loaded"
    rep = load_backbone_weights(m, r50, strict=False, min_match=0.75)  # lowered on purpose
    assert len(rep.loaded) == matched
    with pytest.raises(ConfigError, match="must be a fraction in"):
        load_backbone_weights(m, r50, strict=False, min_match=1.5)


# ---------------------------------------------------------------------------------------------- timm
def _timm_file(timm, tmp_path, fmt: str, in_chans: int, drop: float = 0.0):
    """A randomly initialised timm model (with a 7-class head) saved as .safetensors or .pth; ``drop``: the share
    of its backbone tensors left out of the file."""
    seed_everything(3)
    net = _random_stats(timm.create_model(TIMM, pretrained=False, num_classes=7, in_chans=in_chans))
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    body = [k for k in state if not k.startswith("fc.") and not k.endswith("num_batches_tracked")]
    for k in body[len(body) - int(drop * len(body)) :] if drop else []:
        del state[k]
    path = tmp_path / f"{TIMM}.{fmt}"
    if fmt == "safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return net, path


@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_timm_weights_file_loads_every_tensor_and_gives_timms_features(timm, tmp_path, fmt):
    net, path = _timm_file(timm, tmp_path, fmt, in_chans=3)
    m = create_model("classifier", backbone=f"timm:{TIMM}", input_shape=(3, 32, 32), num_classes=4)
    rep = load_backbone_weights(m, read_state_dict(path), strict=True, where=str(path))
    assert len(rep.loaded) == len(m.backbone.state_dict()) == len(net.state_dict()) - 2
    assert "the file's head (7, 96) is not used" in rep.head
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        want = net.forward_head(net.forward_features(x), pre_logits=True)
        torch.testing.assert_close(m.eval().backbone(x), want, rtol=0, atol=1e-6)
    # and the other way: a reprlab backbone's state loads into timm's own model, key for key
    fresh = timm.create_model(TIMM, pretrained=False, num_classes=0, in_chans=3)
    fresh.load_state_dict(m.backbone.state_dict(), strict=True)


def test_timm_freeze_policies_and_spatial_features(timm):
    seed_everything(0)
    m = create_model("classifier", backbone=f"timm:{TIMM}", input_shape=(3, 32, 32), num_classes=3, mode="last-k")
    blocks = m.backbone.blocks()
    info = m.backbone.net.feature_info
    assert len(blocks) == len(info) == 5
    assert sum(p.numel() for b in blocks for p in b.parameters()) == sum(p.numel() for p in m.backbone.parameters())
    trains = [all(p.requires_grad for p in b.parameters()) for b in blocks]
    assert trains == [False, False, False, False, True]
    before = {k: v.clone() for k, v in m.backbone.state_dict().items()}
    x, y = torch.rand(16, 3, 32, 32), torch.arange(16) % 3
    cfg = TrainerConfig(epochs=2, batch_size=8, lr=1e-2, progress=False, loggers=(), threads=1)
    Trainer(cfg).fit(m, TensorBatches({"x": x, "y": y}, 8))
    after = m.backbone.state_dict()
    last = info[-1]["module"] + "."  # layer4.
    for k in before:
        assert torch.equal(before[k], after[k]) != k.startswith(last), k  # BatchNorm statistics included
    f = m.features(x[:4], kind="spatial")
    assert f.shape == (4, 9 * (info[-2]["num_chs"] + info[-1]["num_chs"]))  # pooled to 3x3
    with pytest.raises(ConfigError, match="has 5 blocks; choose 1..5"):
        create_model("classifier", backbone=f"timm:{TIMM}", input_shape=(3, 32, 32), mode="last-k", unfreeze=6)


def test_transfer_cli_loads_a_timm_file_and_refuses_one_that_matches_too_few(cli, timm, tmp_path):
    _, good = _timm_file(timm, tmp_path, "safetensors", in_chans=1)
    args = ["transfer", "--backbone", f"timm:{TIMM}", "--target", "digits-28", "--mode", "frozen"]
    args += ["--labels-per-class", "3", "--epochs", "1", *FAST]
    rc, out, err = cli(*args, "--weights", good, "--out", tmp_path / "ok")
    assert rc == 0, err
    n = len(create_model("classifier", backbone=f"timm:{TIMM}", input_shape=(1, 28, 28)).backbone.state_dict())
    assert f"loaded {n} backbone tensors" in out
    m, sd = reprlab.load(tmp_path / "ok"), read_state_dict(good)
    assert all(torch.equal(v, sd[k]) for k, v in m.backbone.state_dict().items())

    (tmp_path / "part").mkdir()
    _, part = _timm_file(timm, tmp_path / "part", "pth", in_chans=1, drop=0.25)
    body = len([k for k in sd if not k.startswith("fc.") and not k.endswith("num_batches_tracked")])
    missing = int(0.25 * body)
    rc, out, err = cli(*args, "--weights", part, "--strict", "false", "--out", tmp_path / "no")
    line = _one_line_error(rc, err)
    assert f"{n - missing} matched, {missing} missing from the file, 0 unexpected in the file" in line
    assert "--weights-min-match" in line and not (tmp_path / "no").exists()
    rc, out, err = cli(
        *args, "--weights", part, "--strict", "false", "--weights-min-match", "0.7", "--out", tmp_path / "lo"
    )
    assert rc == 0, err
    assert f"re-initialized {missing} missing from the file" in out


def test_unknown_timm_name_is_one_line_with_close_names(cli, timm, tmp_path):
    rc, _, err = cli(
        "train",
        "classifier",
        "--data",
        "digits-28",
        "--model.backbone=timm:resnet_18",
        *FAST,
        "--out",
        tmp_path / "run",
    )
    line = _one_line_error(rc, err)
    assert "timm has no model 'resnet_18'" in line and "resnet18" in line.split("close names:")[1]
    assert not (tmp_path / "run").exists()


def test_missing_timm_names_the_extra(cli, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "timm", None)
    rc, _, err = cli(
        "train", "classifier", "--data", "digits-28", f"--model.backbone=timm:{TIMM}", *FAST, "--out", tmp_path / "run"
    )
    assert "pip install 'reprlab[timm]'" in _one_line_error(rc, err)


def test_train_classifier_cli_with_a_timm_backbone(cli, timm, tmp_path):
    rc, out, err = cli(
        "train",
        "classifier",
        "--data",
        "digits-28",
        f"--model.backbone=timm:{TIMM}",
        "--model.mode=last-k",
        "--model.unfreeze=2",
        "--epochs",
        "1",
        *FAST,
        "--out",
        tmp_path / "run",
    )
    assert rc == 0, err
    m = reprlab.load(tmp_path / "run")
    assert tuple(m.config.input_shape) == (1, 28, 28) and m.config.backbone == f"timm:{TIMM}"
    assert [all(p.requires_grad for p in b.parameters()) for b in m.backbone.blocks()] == [False] * 3 + [True] * 2
