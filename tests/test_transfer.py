"""Transfer learning: freeze policies change exactly what they should, weights load in torchvision format,
and bad input to `reprlab transfer` exits 2 with one line."""

import pytest
import torch

from reprlab.recipes.transfer import target_model
from reprlab.config import TrainerConfig
from reprlab.data import load_images
from reprlab.data.batches import TensorBatches
from reprlab.errors import CheckpointError, ConfigError, DataError
from reprlab.models.pretrained import load_backbone_weights, read_state_dict, torchvision_state_dict
from reprlab.registry import create_model
from reprlab.train.engine import Trainer, seed_everything


@pytest.fixture(scope="module")
def digits28():
    d = load_images("digits-28")
    return d.train[0][:64], d.train[1][:64]


def _train(model, x, y, steps=3, lr=1e-2):
    cfg = TrainerConfig(epochs=steps, batch_size=len(x), lr=lr, progress=False, tensorboard=False)
    Trainer(cfg).fit(model, TensorBatches({"x": x, "y": y}, len(x), shuffle=False))


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def source(digits28):
    seed_everything(0)
    m = create_model("classifier", width=8)
    _train(m, *digits28, steps=2)  # moves the BatchNorm statistics away from their (0, 1) start
    return m.eval()


def test_frozen_leaves_backbone_and_batchnorm_statistics_bit_for_bit(source, digits28):
    m = target_model(source, 10, "frozen")
    assert all(
        torch.equal(a, b) for a, b in zip(m.backbone.state_dict().values(), source.backbone.state_dict().values())
    )
    before, head = _state(m.backbone), _state(m.head)
    m.train()
    bns = [b for b in m.backbone.modules() if isinstance(b, torch.nn.BatchNorm2d)]
    assert bns and not any(b.training for b in bns), "a frozen backbone's BatchNorm must stay in eval mode"
    _train(m, *digits28)
    after = m.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), [
        k for k in before if not torch.equal(before[k], after[k])
    ]
    assert "layers.0.1.running_mean" in before and int(after["layers.0.1.num_batches_tracked"]) == int(
        before["layers.0.1.num_batches_tracked"]
    )
    assert not torch.equal(head["weight"], m.head.weight), "the head must train"


@pytest.mark.parametrize("k", [1, 2])
def test_last_k_changes_exactly_the_last_k_blocks(source, digits28, k):
    m = target_model(source, 10, "last-k", unfreeze=k)
    before = _state(m.backbone)
    _train(m, *digits28)
    after = m.backbone.state_dict()
    for key in before:
        block = int(key.split(".")[1])  # layers.<block>.<module>.<tensor>
        changed = not torch.equal(before[key], after[key])
        assert changed == (block >= 3 - k), f"{key}: changed={changed} with unfreeze={k}"


def _groups(model, lr):
    """The param groups of the optimizer the engine builds for ``model`` at base lr ``lr``."""
    from reprlab.train.engine import make_optimizer

    (groups,) = model.optimizer_groups()
    return make_optimizer(groups, TrainerConfig(lr=lr)).param_groups


def test_all_trains_the_backbone_at_the_lower_rate(source, digits28):
    m = target_model(source, 10, "all", backbone_lr_mult=0.25)
    groups = {g["name"]: g for g in _groups(m, 1e-2)}
    assert groups["backbone"]["lr"] == pytest.approx(2.5e-3) and groups["head"]["lr"] == pytest.approx(1e-2)
    assert len(groups["backbone"]["params"]) == len(list(m.backbone.parameters()))
    before = _state(m.backbone)
    _train(m, *digits28)
    assert all(not torch.equal(before[k], v) for k, v in m.backbone.state_dict().items())
    # from scratch there is nothing to protect: one rate for everything
    s = target_model(None, 10, "scratch", backbone_lr_mult=0.25, width=8)
    assert {g["lr"] for g in _groups(s, 1e-2)} == {1e-2}


def test_resnet18_last_k_freezes_by_block():
    m = create_model("classifier", backbone="resnet18", mode="last-k", unfreeze=2)
    names = ["stem", "layer1", "layer2", "layer3", "layer4"]
    trains = {n: all(p.requires_grad for p in b.parameters()) for n, b in zip(names, m.backbone.blocks())}
    frozen = {n: not any(p.requires_grad for p in b.parameters()) for n, b in zip(names, m.backbone.blocks())}
    assert [n for n in names if trains[n]] == ["layer3", "layer4"] and [n for n in names if frozen[n]] == names[:3]
    m.train()
    assert not m.backbone.bn1.training and not m.backbone.layer2[1].bn2.training and m.backbone.layer4[0].bn1.training


@pytest.mark.parametrize(
    "backbone, channels, features", [("small_cnn", 1, 32), ("resnet18", 1, 512), ("resnet18", 3, 512)]
)
def test_head_and_feature_shapes(backbone, channels, features):
    m = create_model("classifier", backbone=backbone, width=8, input_shape=(channels, 28, 28))
    x = torch.rand(2, channels, 28, 28)
    m.eval()
    assert m.forward_features(x).shape == (2, features) and m(x).shape == (2, 10)
    m.reset_head(7)
    assert m(x).shape == (2, 7) and m.head.weight.shape == (7, features) and m.config.num_classes == 7
    assert torch.equal(m.encode(x), m.forward_features(x))


def test_torchvision_state_dict_round_trips(tmp_path):
    import torchvision

    seed_everything(1)
    a = create_model("classifier", backbone="resnet18", input_shape=(3, 28, 28))
    sd = torchvision_state_dict(a)
    ref = torchvision.models.resnet18().state_dict()
    assert set(sd) == set(ref), "keys must be torchvision's"
    torch.save(sd, tmp_path / "r18.pth")
    seed_everything(2)
    b = create_model("classifier", backbone="resnet18", input_shape=(3, 28, 28))
    rep = load_backbone_weights(b, read_state_dict(tmp_path / "r18.pth"), strict=True)
    assert len(rep.loaded) == len(b.backbone.state_dict()) and not rep.skipped and not rep.ignored
    assert all(torch.equal(v, b.backbone.state_dict()[k]) for k, v in a.backbone.state_dict().items())


def test_imagenet_format_weights_strict_error_or_listed_partial_load():
    import torchvision

    ref = torchvision.models.resnet18().state_dict()  # 7x7 RGB stem and a 1000-class fc, as ImageNet's file has
    m = create_model("classifier", backbone="resnet18", input_shape=(1, 28, 28), num_classes=5)
    with pytest.raises(CheckpointError, match=r"conv1\.weight: \(64, 3, 7, 7\) vs \(64, 1, 3, 3\).*--strict false"):
        load_backbone_weights(m, ref, strict=True)
    rep = load_backbone_weights(m, ref, strict=False)
    assert rep.skipped == ["conv1.weight: (64, 3, 7, 7) vs (64, 1, 3, 3)"] and len(rep.loaded) == len(ref) - 3
    assert "head re-initialized for 5 classes" in rep.summary() and "(1000, 512)" in rep.summary()
    assert torch.equal(m.backbone.layer3[0].conv1.weight, ref["layer3.0.conv1.weight"])


def test_unreadable_or_foreign_weights_are_clear_errors(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="not a state dict"):
        read_state_dict(tmp_path / "list.pth")
    (tmp_path / "junk.pth").write_text("not a tensor archive")
    with pytest.raises(CheckpointError, match="not a state dict torch can read"):
        read_state_dict(tmp_path / "junk.pth")
    m = create_model("classifier", width=8)
    with pytest.raises(CheckpointError, match="no tensors that match"):
        load_backbone_weights(m, {"encoder.0.weight": torch.zeros(3)}, strict=False)


def test_config_rejects_k_beyond_the_blocks():
    with pytest.raises(ConfigError, match="has 3 blocks"):
        create_model("classifier", mode="last-k", unfreeze=4)
    with pytest.raises(ConfigError, match="1 or 3 channels"):
        create_model("classifier", backbone="resnet18", input_shape=(2, 28, 28))


def test_label_budget_and_input_fitting():
    from reprlab.data.transfer import fit_input, label_budget

    d = load_images("digits-28")
    x, y = label_budget(*d.train, 7, seed=3)
    assert torch.bincount(y).tolist() == [7] * 10
    with pytest.raises(DataError, match="more than the data has.*choose at most"):
        label_budget(*d.train, 1000)
    small = load_images("digits").train[0][:4]
    with pytest.raises(DataError, match="--resize"):
        fit_input(small, (1, 28, 28), False, "digits")
    assert fit_input(small, (3, 28, 28), True, "digits").shape == (4, 3, 28, 28)


def test_head_input_standardization(source, digits28):
    x, _ = digits28
    m = target_model(source, 10, "frozen", standardize_on=x)
    f = (m.features(x) - m.feature_mean) / m.feature_std
    live = m.feature_std > 1e-3  # dead (constant) features keep the floor of the clamp
    assert live.sum() >= 16 and f.mean(0).abs().max() < 1e-4 and (f.std(0)[live] - 1).abs().max() < 1e-3
    s = target_model(source, 10, "scratch", standardize_on=x)  # nothing pre-trained to measure
    assert torch.equal(s.feature_std, torch.ones_like(s.feature_std))


def test_wrong_image_size_is_an_error_not_a_silent_answer():
    m = create_model("classifier", width=8)
    with pytest.raises(DataError, match="images are 1x8x8 but the classifier takes 1x28x28"):
        m(torch.rand(2, 1, 8, 8))


@pytest.mark.parametrize(
    "backbone, channels, spatial", [("small_cnn", 1, 4 * (16 + 32)), ("resnet18", 3, 4 * (256 + 512))]
)
def test_spatial_features_pool_the_last_two_blocks_to_a_grid(backbone, channels, spatial):
    seed_everything(0)
    m = create_model("classifier", backbone=backbone, width=8, input_shape=(channels, 28, 28)).eval()
    x = torch.rand(3, channels, 28, 28)
    with torch.no_grad():
        outs = m.backbone.forward_blocks(x)
        assert len(outs) == len(m.backbone.blocks())
        assert torch.allclose(
            outs[-1].mean((2, 3)), m.forward_features(x), atol=1e-6
        )  # the pooled features are the last block's mean
    assert m.features(x, kind="spatial").shape == (3, spatial // 4 * 9)  # the default grid: 3x3
    s = m.features(x, kind="spatial", grid=2)
    assert s.shape == (3, spatial)
    top_left = outs[-1][:, :, : outs[-1].shape[2] // 2, : outs[-1].shape[3] // 2].mean(
        (2, 3)
    )  # even size: an exact quadrant
    if outs[-1].shape[2] % 2 == 0:
        assert torch.allclose(s.view(3, -1)[:, 4 * outs[-2].shape[1] :].view(3, -1, 4)[:, :, 0], top_left, atol=1e-5)
    with pytest.raises(ValueError, match="feature kind"):
        m.features(x, kind="gap")
    with pytest.raises(DataError, match="images are 1x8x8"):
        m.features(torch.rand(2, channels, 8, 8)[:, :1], kind="spatial")


def test_probe_head_starts_where_logistic_regression_is(source, digits28):
    from sklearn.linear_model import LogisticRegression

    x, y = digits28
    seed_everything(0)
    m = target_model(source, 10, "all", standardize_on=x, probe_on=(x, y))
    f = ((m.features(x) - m.feature_mean) / m.feature_std).numpy()
    want = LogisticRegression(max_iter=1000).fit(f, y.numpy()).predict(f)
    assert torch.equal(m.predict(x), torch.as_tensor(want))  # the head is that probe, before any step
    seed_everything(0)
    r = target_model(source, 10, "all", standardize_on=x)
    assert (m.predict(x) == y).float().mean() > (r.predict(x) == y).float().mean() + 0.3  # a random head is near chance
    with pytest.raises(DataError, match="a probe head needs every class"):
        target_model(source, 10, "all", standardize_on=x, probe_on=(x[y < 5], y[y < 5]))
