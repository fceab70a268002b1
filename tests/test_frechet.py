"""Fréchet distance, KID, the Inception-FID code path (with a tiny stand-in network), the cached
feature classifier and class coverage."""

import numpy as np
import pytest
import torch
from scipy import linalg
from torch import nn

from conftest import needs_fashion
from reprlab.errors import ConfigError
from reprlab.metrics import frechet_distance, kernel_distance
from reprlab.metrics.classifier_features import (
    FeatureClassifier,
    FeatureClassifierConfig,
    class_coverage,
    classifier_features,
    fd_classifier,
)
from reprlab.metrics.frechet import check_weights_file, inception_fid


def _scipy_fd(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def _gauss(n, d, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ a + shift


def test_fd_of_a_set_with_itself_is_zero():
    x = _gauss(500, 6, 0)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fd_matches_scipy_sqrtm_formula(seed):
    a, b = _gauss(400, 5, seed), _gauss(300, 5, seed + 10, shift=0.3)
    want = _scipy_fd(a, b)
    assert want > 0.1
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_fd_grows_with_a_mean_shift_as_its_squared_length():
    x = _gauss(1000, 4, 3)
    ds = [frechet_distance(x, x + s) for s in (0.5, 1.0, 2.0)]
    # same covariance: FD is exactly ||shift||^2 = 4 s^2
    assert ds == pytest.approx([4 * 0.25, 4 * 1.0, 4 * 4.0], rel=1e-6)


def test_fd_rejects_too_few_samples():
    with pytest.raises(ConfigError, match="N >= 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    x = _gauss(1200, 8, 0)
    a, b = x[:600], x[600:]  # two samples of one distribution
    same, _ = kernel_distance(a, b, subsets=10, subset_size=300)
    # the same distribution: the unbiased MMD^2 is centred on 0
    shifted, _ = kernel_distance(a, b + 1.0, subsets=10, subset_size=300)
    assert abs(same) < 0.05 * shifted
    more, _ = kernel_distance(a, b + 2.0, subsets=10, subset_size=300)
    assert more > shifted > 0


class TinyStandIn(nn.Module):
    """Stands in for Inception-v3: (B, 3, H, W) in [0, 1] -> (B, 6) features."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 6, 3, stride=2), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.net(x)


def test_inception_fid_code_path_with_a_stand_in_network():
    g = torch.Generator().manual_seed(0)
    real = torch.rand(300, 1, 12, 12, generator=g)
    fake = torch.rand(300, 1, 12, 12, generator=g) * 0.6 + 0.2
    net = TinyStandIn()
    got = inception_fid(real, fake, extractor=net, batch_size=64)
    with torch.no_grad():
        want = frechet_distance(net(real.expand(-1, 3, -1, -1)), net(fake.expand(-1, 3, -1, -1)))
    assert want > 1e-4
    assert got == pytest.approx(want, rel=1e-4)


def test_weights_file_checks(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        check_weights_file(tmp_path / "missing.pth")
    with pytest.raises(ConfigError, match="not a file"):
        check_weights_file(tmp_path)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ConfigError, match="is empty"):
        check_weights_file(empty)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not weights at all")
    assert check_weights_file(junk) == junk
    # a non-empty but unusable file: a clear error (missing torch-fidelity, or a file it cannot load)
    with pytest.raises(ConfigError, match="torch-fidelity|not usable"):
        inception_fid(torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8), junk)


def test_class_coverage_counts_classes_over_five_percent():
    m = FeatureClassifier(FeatureClassifierConfig(channels=(4,), feature_dim=8), classes=3)
    # make the head predict from the bias alone: class 2 for every image
    with torch.no_grad():
        m.head.weight.zero_()
        m.head.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))
    hist, n = class_coverage(m, torch.rand(50, 1, 8, 8))
    assert hist.tolist() == [0.0, 0.0, 1.0] and n == 1
    assert classifier_features(m, torch.rand(7, 1, 8, 8)).shape == (7, 8)


@needs_fashion
def test_fd_classifier_is_trained_once_then_loaded_from_the_cache(tmp_path):
    cfg = FeatureClassifierConfig(channels=(4, 8), feature_dim=16, epochs=2, n_train=3000, batch_size=50)
    a, info_a = fd_classifier(cfg=cfg, cache=tmp_path, verbose=False)
    b, info_b = fd_classifier(cfg=cfg, cache=tmp_path, verbose=False)
    assert info_a["cached"] is False and info_b["cached"] is True
    assert info_a["test_accuracy"] > 0.4  # 3,000 images, two epochs of a tiny net: well above 0.1 chance
    x = torch.rand(20, 1, 28, 28)
    assert torch.equal(classifier_features(a, x), classifier_features(b, x))
    assert len(list(tmp_path.glob("fd-classifier-*.safetensors"))) == 1
