"""Domain adaptation: the criteria against their formulas, the domains, the models, the CLI and the estimator."""

import itertools
import math

import numpy as np
import pytest
import torch

from conftest import needs_fashion
from reprlab.data.domains import (
    FASHION_M_PHOTOS,
    FASHION_M_TEST_PHOTOS,
    FASHION_M_TRAIN_PHOTOS,
    PairedBatches,
    blend_with_photos,
    photo_of_each,
    brightness_stratified_split,
    load_domain_pair,
    make_moons_split,
    photo_luminance,
)
from reprlab.errors import ConfigError, DataError
from reprlab.metrics.domain import (
    CorrelationAlignmentLoss,
    DomainAdversarialLoss,
    MaximumMeanDiscrepancyLoss,
    dann_lambda,
    grad_reverse,
    proxy_a_distance,
)
from reprlab.registry import create_model


# ----------------------------------------------------------------------------- criteria
def test_gradient_reversal_flips_and_scales_exactly():
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 3, dtype=torch.float64)
    y = grad_reverse(x, 0.37)
    assert torch.equal(y, x)  # identity forward
    (y * w).sum().backward()
    assert torch.equal(x.grad, -0.37 * w)
    x.grad = None
    (grad_reverse(x, 0.0) * w).sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(w))


def test_dann_lambda_schedule():
    assert dann_lambda(0.0) == 0.0
    assert dann_lambda(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert dann_lambda(1.0) == pytest.approx(0.99991, abs=1e-5)
    vals = [dann_lambda(p / 10) for p in range(11)]
    assert all(a < b for a, b in zip(vals, vals[1:]))


def test_mmd_is_zero_for_identical_samples_and_grows_with_shift():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 4, generator=g)
    b = torch.randn(200, 4, generator=g)
    mmd = MaximumMeanDiscrepancyLoss()
    assert float(mmd(a, a)) == pytest.approx(0.0, abs=1e-6)
    shifts = [0.0, 0.25, 0.5, 1.0, 2.0]
    vals = [float(mmd(a, b + s)) for s in shifts]
    assert vals[0] < 0.02  # two samples of one distribution
    assert all(x < y for x, y in zip(vals, vals[1:])), vals
    assert vals[-1] > 20 * vals[0]
    # the unbiased estimate is about 0 (it can be negative) for two samples of one distribution
    assert abs(float(MaximumMeanDiscrepancyLoss(unbiased=True)(a, b))) < 0.01


def test_unbiased_mmd_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 3, generator=g, dtype=torch.float64)
    y = torch.randn(5, 3, generator=g, dtype=torch.float64) + 0.5
    mults, sigma2 = (0.5, 1.0, 2.0), 1.7

    def k(u, v):
        d2 = float(((u - v) ** 2).sum())
        return sum(math.exp(-d2 / (2 * m * sigma2)) for m in mults) / len(mults)

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    got = float(MaximumMeanDiscrepancyLoss(mults, bandwidth=sigma2, unbiased=True)(x, y))
    assert got == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    # the biased (V-statistic) version adds the diagonal k(x, x) = 1 terms
    xx_b = (xx * n * (n - 1) + n) / n**2
    yy_b = (yy * m * (m - 1) + m) / m**2
    assert float(MaximumMeanDiscrepancyLoss(mults, bandwidth=sigma2)(x, y)) == pytest.approx(
        xx_b + yy_b - 2 * xy, rel=1e-10
    )


def test_coral_matches_its_formula_and_is_zero_for_equal_covariances():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(50, 6, generator=g, dtype=torch.float64)
    b = torch.randn(40, 6, generator=g, dtype=torch.float64) * 2
    coral = CorrelationAlignmentLoss()
    cs, ct = np.cov(a.numpy(), rowvar=False), np.cov(b.numpy(), rowvar=False)
    assert float(coral(a, b)) == pytest.approx(((cs - ct) ** 2).sum() / (4 * 36), rel=1e-10)
    # a mean shift or a row permutation leaves the covariance, hence the loss, at 0
    assert float(coral(a, a + 3.0)) == pytest.approx(0.0, abs=1e-12)
    assert float(coral(a, a[torch.randperm(50, generator=g)])) == pytest.approx(0.0, abs=1e-12)


def test_domain_adversarial_loss_reverses_the_feature_gradient():
    torch.manual_seed(0)
    disc = torch.nn.Linear(3, 1)
    f_s = torch.randn(4, 3, requires_grad=True)
    f_t = torch.randn(4, 3, requires_grad=True)
    DomainAdversarialLoss(disc, coeff=0.5)(f_s, f_t).backward()
    g_rev = f_s.grad.clone()
    # the same loss without reversal: the discriminator's gradient w.r.t. its input
    f_s2 = f_s.detach().requires_grad_()
    logits = disc(torch.cat([f_s2, f_t.detach()])).squeeze(-1)
    torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.cat([torch.ones(4), torch.zeros(4)])).backward()
    assert torch.allclose(g_rev, -0.5 * f_s2.grad)
    assert disc.weight.grad is not None and torch.isfinite(disc.weight.grad).all()


def test_proxy_a_distance_low_for_same_high_for_separable():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 5)), rng.normal(size=(400, 5))
    assert proxy_a_distance(a, b) < 0.3
    assert proxy_a_distance(a, b + 3.0) > 1.9


# ----------------------------------------------------------------------------- domains
def test_fashion_m_blend_is_deterministic_and_uses_only_given_photos():
    imgs = np.zeros((64, 28, 28), dtype=np.uint8)
    imgs[:, 10:18, 10:18] = 200
    red = np.zeros((40, 50, 3), dtype=np.uint8)
    red[..., 0] = 90  # noqa: E702
    blue = np.zeros((60, 30, 3), dtype=np.uint8)
    blue[..., 2] = 70  # noqa: E702
    a = blend_with_photos(imgs, [red, blue], seed=3)
    assert a.shape == (64, 3, 28, 28) and a.dtype == np.uint8
    assert np.array_equal(a, blend_with_photos(imgs, [red, blue], seed=3))
    assert not np.array_equal(blend_with_photos(imgs[:, :, :], [red + 1, blue], seed=3), a)
    # |patch - image|: the background is the photo's colour, the square is |colour - 200|
    bg = a[:, :, 0, 0]
    assert {tuple(c) for c in bg} == {(90, 0, 0), (0, 0, 70)}
    assert {tuple(c) for c in a[:, :, 12, 12]} == {(110, 200, 200), (200, 200, 130)}
    # a different seed assigns photos differently
    assert not np.array_equal(blend_with_photos(imgs, [red, blue], seed=4)[:, :, 0, 0], bg)


def test_photo_of_each_names_the_photo_each_blend_used():
    imgs = np.zeros((300, 28, 28), dtype=np.uint8)  # a black image: the blend is the photo crop itself
    flats = [np.full((40, 40, 3), 10 * (k + 1), dtype=np.uint8) for k in range(3)]  # photo k is grey 10(k+1)
    for seed in (0, 7):
        used = blend_with_photos(imgs, flats, seed)[:, 0, 0, 0] // 10 - 1
        assert np.array_equal(photo_of_each(300, 3, seed), used)
        assert set(used.tolist()) == {0, 1, 2}


@needs_fashion
def test_fashion_m_photo_names_match_the_real_blends():
    # every test image equals |crop of its named photo - garment| for some crop position
    from reprlab.data.domains import fashion_m_photo_names, load_fashion_m, load_photo
    from reprlab.data.images import load_fashion_mnist

    x, _ = load_fashion_m("test")
    names = fashion_m_photo_names("test", len(x))
    assert len(names) == len(x) and set(names) == set(FASHION_M_TEST_PHOTOS)
    grey = (load_fashion_mnist("test")[0][:, 0] * 255).round().to(torch.int16).numpy()
    blend = (x * 255).round().to(torch.int16).numpy()
    for i in range(3):
        photo = load_photo(names[i]).astype(np.int16)  # (H, W, 3)
        h, w = photo.shape[0] - 27, photo.shape[1] - 27
        # crop corners whose top-left pixel fits, then the whole 28 x 28 crop at each of them
        fits = (np.abs(photo[:h, :w] - grey[i, 0, 0]) == blend[i][:, 0, 0]).all(-1)
        match = [
            (np.abs(photo[r : r + 28, c : c + 28].transpose(2, 0, 1) - grey[i]) == blend[i]).all()
            for r, c in zip(*fits.nonzero())
        ]
        assert any(match), f"test image {i} is not a blend of {names[i]}"
    with pytest.raises(ConfigError):
        fashion_m_photo_names("val", 10)


def test_fashion_m_train_and_test_photos_are_disjoint():
    assert set(FASHION_M_TRAIN_PHOTOS).isdisjoint(FASHION_M_TEST_PHOTOS)
    assert len(FASHION_M_TEST_PHOTOS) >= 2 and len(FASHION_M_TRAIN_PHOTOS) >= 2
    assert set(FASHION_M_TRAIN_PHOTOS) | set(FASHION_M_TEST_PHOTOS) == set(FASHION_M_PHOTOS)


def test_fashion_m_photo_split_is_the_stated_brightness_rule():
    # sorted by mean luminance and alternated, the darkest to train: the constants are that rule's output
    assert brightness_stratified_split(FASHION_M_PHOTOS) == (FASHION_M_TRAIN_PHOTOS, FASHION_M_TEST_PHOTOS)
    lum_tr = [photo_luminance(p) for p in FASHION_M_TRAIN_PHOTOS]
    lum_te = [photo_luminance(p) for p in FASHION_M_TEST_PHOTOS]
    assert lum_tr == sorted(lum_tr) and lum_te == sorted(lum_te)
    # both splits span dark to bright photos, interleaved
    assert all(a < b for a, b in zip(lum_tr, lum_te)) and all(b < a for b, a in zip(lum_te, lum_tr[1:]))
    assert min(lum_tr) < 40 and max(lum_te) > 150


@needs_fashion
def test_fashion_m_dataset_deterministic_and_disjoint_source_target(tmp_path, monkeypatch):
    from reprlab.data import domains

    monkeypatch.setenv("REPRLAB_CACHE", str(tmp_path))
    x1, y1 = domains.load_fashion_m("test", seed=5)
    domains._FASHION_M.clear()
    x2, y2 = domains.load_fashion_m("test", seed=5)  # from the disk cache this time
    assert x1.shape == (10000, 3, 28, 28) and torch.equal(x1, x2) and torch.equal(y1, y2)
    assert list(tmp_path.glob("fashion-m-test-seed5-*.npy"))
    assert not torch.equal(domains.load_fashion_m("test", seed=6)[0][:100], x1[:100])


@needs_fashion
def test_fashion_source_and_target_are_reconciled_and_disjoint():
    s, t = load_domain_pair("fashion-mnist", "fashion-m", limit=100)
    assert s.input_shape == t.input_shape == (3, 28, 28)  # the grey source is copied to 3 channels
    assert torch.equal(s.train[0][:, 0], s.train[0][:, 2])
    # both come from Fashion-MNIST's training images: the source takes the first half, the target the second
    from reprlab.data.images import load_fashion_mnist

    grey = load_fashion_mnist("train")[0]
    assert torch.equal(s.train[0][:, :1], grey[:100]) and torch.equal(
        t.train[1], load_fashion_mnist("train")[1][27500:27600]
    )


def test_moons_target_is_the_rotated_source():
    from reprlab.data import get_dataset
    from reprlab.data.domains import MOONS_ANGLE

    xs, ys = make_moons_split("train")
    assert xs.shape == (1000, 2) and set(ys.tolist()) == {0, 1}
    c = torch.tensor([0.5, 0.25])

    def axis_angle(x, y):  # direction (degrees) from the lower moon's mean to the upper moon's
        d = x[y == 0].mean(0) - x[y == 1].mean(0)
        return math.degrees(math.atan2(float(d[1]), float(d[0])))

    # the registered target, as the domains task loads it, is the source turned by MOONS_ANGLE about the centre:
    # the line between the two moons turns by that angle (measured 34.8 degrees for 35, 90.2 for 90), the centre stays
    target = get_dataset("moons-rotated").load()
    for angle, (xt, yt) in ((MOONS_ANGLE, target.train), (90.0, make_moons_split("train", rotate=90.0))):
        turned = (axis_angle(xt, yt) - axis_angle(xs, ys) + 180) % 360 - 180
        assert turned == pytest.approx(angle, abs=2.0), (angle, turned)
        assert torch.allclose(xt.mean(0), xs.mean(0), atol=0.05)
        # a rotation keeps the distances to the centre
        assert torch.allclose((xt - c).norm(dim=1).mean(), (xs - c).norm(dim=1).mean(), atol=0.05)
    assert MOONS_ANGLE >= 20  # a shift large enough to cost source-only accuracy (see the DANN tests)


def test_domain_pair_errors():
    with pytest.raises(DataError, match="different label sets"):
        load_domain_pair("moons", "digits")
    with pytest.raises(ConfigError, match="two different domains"):
        load_domain_pair("moons", "moons")
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_domain_pair("moons", "nope")


def test_channel_counts_that_cannot_be_reconciled(monkeypatch):
    from reprlab.data import _DATASETS, DatasetEntry, ImageData

    def fake(c):
        def load(data_dir=None, val_size=0, limit=0):
            x = torch.rand(20, c, 8, 8)
            y = torch.arange(20) % 10
            return ImageData(f"fake{c}", (x, y), (x[:0], y[:0]), (x, y), tuple(str(i) for i in range(10)), "test")

        return DatasetEntry(f"fake{c}", "images", load, lambda _: {"found": True})

    for c in (1, 2, 3):
        monkeypatch.setitem(_DATASETS, f"fake{c}", fake(c))
    with pytest.raises(DataError, match="cannot be reconciled"):
        load_domain_pair("fake2", "fake3")
    s, t = load_domain_pair("digits", "fake3")  # 1 channel is copied to 3
    assert s.input_shape == t.input_shape == (3, 8, 8)


def test_paired_batches_cover_the_source_and_cycle_the_target():
    xs, ys = torch.arange(10.0)[:, None], torch.arange(10)
    xt, yt = 100 + torch.arange(4.0)[:, None], torch.arange(4)
    pb = PairedBatches((xs, ys), (xt, yt), 3, seed=0)
    batches = list(pb.epoch(0))
    assert pb.num_batches() == 4 == len(batches)
    assert sorted(torch.cat([b["y_s"] for b in batches]).tolist()) == list(range(10))
    for b in batches:
        assert len(b["x_t"]) == len(b["x_s"]) and torch.equal(b["x_t"][:, 0] - 100, b["i_t"].float())
    again = list(pb.epoch(0))
    assert all(torch.equal(a["i_t"], b["i_t"]) for a, b in zip(batches, again))
    with pytest.raises(DataError):
        PairedBatches((xs, ys), (xt[:0], yt[:0]), 3)


# ----------------------------------------------------------------------------- models
def _train_moons(name, epochs, seed=0, **model):
    from reprlab.recipes.training import train_model
    from reprlab.train.engine import evaluate_model

    tree = {
        "model": model,
        "trainer": {
            "epochs": epochs,
            "batch_size": 64,
            "seed": seed,
            "progress": False,
            "tensorboard": False,
            "threads": 1,
        },
        "data": {"name": "moons"},
    }
    m, _, task, metrics = train_model(name, tree, None, quiet=True)
    return evaluate_model(m, task.test)["acc"], m, metrics


def test_dann_beats_source_only_on_rotated_moons():
    # one seed of adversarial training is noisy (0.78 vs 0.75 at seed 0), so compare over three
    src = [_train_moons("da_source_only", 100, seed=s)[0] for s in range(3)]
    runs = [_train_moons("da_dann", 100, seed=s) for s in range(3)]
    dann = [r[0] for r in runs]
    assert all(r[1].criterion.grl.coeff > 0.99 for r in runs)  # the schedule reached λ ≈ 1
    mean_src, mean_dann = sum(src) / 3, sum(dann) / 3
    assert mean_src < 0.85 and mean_dann > mean_src + 0.05, (src, dann)
    assert sum(d > s for s, d in zip(src, dann)) >= 2, (src, dann)


def test_pseudo_label_table_refreshes_every_epoch():
    torch.manual_seed(0)
    m = create_model("da_pseudo_label", input_shape=(2,), num_classes=2, num_target=6, threshold=0.5)
    b = {
        "x_s": torch.randn(6, 2),
        "y_s": torch.tensor([0, 1] * 3),
        "x_t": torch.randn(6, 2),
        "y_t": torch.tensor([0, 1] * 3),
        "i_t": torch.arange(6),
    }
    out = m.loss(b)
    assert float(out["pl_used"]) == 0.0 and float(out["adapt"]) == 0.0  # first epoch: no pseudo-labels yet
    m.on_epoch_end(0)
    with torch.no_grad():
        expect = torch.softmax(m(b["x_t"]), 1).max(1)
    assert torch.allclose(m.pl_conf, expect.values) and torch.equal(m.pl_label, expect.indices)
    out = m.loss(b)
    assert float(out["pl_used"]) == 1.0 and float(out["adapt"]) > 0  # every max-probability of 2 classes is >= 0.5


def test_input_standardization_removes_brightness_and_contrast():
    from reprlab.models.adaptation import InputStandardization

    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 8, 8, generator=g)
    z = InputStandardization("channel")(x)
    assert torch.allclose(z.mean((2, 3)), torch.zeros(6, 3), atol=1e-5)
    assert torch.allclose(z.std((2, 3), unbiased=False), torch.ones(6, 3), atol=0.1)  # eps=1e-2 against std ~0.29
    # a per-image, per-channel gain and offset (a brighter or darker photo) does not change what the network sees
    gain, offset = torch.rand(6, 3, 1, 1, generator=g) + 0.5, torch.rand(6, 3, 1, 1, generator=g)
    m = create_model("da_dann", input_shape=(3, 8, 8), num_classes=3, channels=(4,), feature_dim=8)
    assert torch.allclose(m(x), m(x * gain + offset), atol=1e-2)
    zi = InputStandardization("image")(x)
    assert torch.allclose(zi.mean((1, 2, 3)), torch.zeros(6), atol=1e-5)
    none = create_model(
        "da_dann", input_shape=(3, 8, 8), num_classes=3, channels=(4,), feature_dim=8, standardize="none"
    )
    assert not any(isinstance(mod, InputStandardization) for mod in none.modules())
    assert not torch.allclose(none(x), none(x + 0.5), atol=1e-2)
    with pytest.raises(ConfigError, match="model.standardize must be one of channel, image, none"):
        create_model("da_mmd", input_shape=(3, 8, 8), num_classes=3, standardize="pixel")


def test_source_only_never_reads_the_target():
    torch.manual_seed(0)
    m = create_model("da_source_only", input_shape=(3, 8, 8), num_classes=3, channels=(4,), feature_dim=8)
    b = m.example_batch(4)
    b["x_t"] = torch.full_like(b["x_t"], float("nan"))
    out = m.loss(b)
    assert torch.isfinite(out["loss"]) and "adapt" not in out


def test_models_reject_plain_image_batches():
    m = create_model("da_dann", input_shape=(2,), num_classes=2)
    with pytest.raises(ConfigError, match="domains"):
        m.loss({"x": torch.rand(4, 2), "y": torch.zeros(4, dtype=torch.long)})


# ----------------------------------------------------------------------------- CLI
def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "args, expect",
    [
        (["--method", "nope"], "choose one of: source-only, mmd, coral, dann, pseudo-label, target-oracle"),
        (["--source", "moons", "--target", "digits"], "different label sets"),
        (["--source", "moons", "--method", "pseudo-label", "--threshold", "1.5"], "model.threshold must be in (0, 1)"),
        (["--source", "moons", "--method", "pseudo-label", "--model.threshold=0"], "model.threshold must be in (0, 1)"),
        (
            ["--source", "moons", "--method", "dann", "--threshold", "0.5"],
            "--threshold applies to --method pseudo-label",
        ),
        (["--source", "digits"], "name a --target"),
        (["--source", "moons", "--target", "moons"], "two different domains"),
        (["--source", "moons", "--model.nope=1"], "unknown config key model.nope"),
        (["--source", "moons", "--model.standardize=pixel"], "model.standardize must be one of channel, image, none"),
    ],
)
def test_adapt_bad_input_exit_2_one_line(cli, tmp_path, args, expect):
    rc, out, err = cli("adapt", *args, "--epochs", "1", "--no-progress", "--out", tmp_path / "run")
    assert rc == 2
    assert expect in one_line(err)
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_adapt_end_to_end_and_no_overwrite(cli, tmp_path):
    import json

    run = tmp_path / "run"
    args = [
        "adapt",
        "--source",
        "moons",
        "--method",
        "coral",
        "--epochs",
        "2",
        "--no-progress",
        "--trainer.tensorboard=false",
        "--out",
        run,
    ]
    rc, out, err = cli(*args)
    assert rc == 0, err
    res = json.loads((run / "final_metrics.json").read_text())
    assert 0.3 < res["target/test_acc"] <= 1 and res["method"] == "coral" and res["target"] == "moons-rotated"
    before = (run / "model.safetensors").read_bytes()
    rc, out, err = cli(*args)
    assert rc == 2 and "--overwrite" in one_line(err)
    assert (run / "model.safetensors").read_bytes() == before
    rc, out, err = cli("eval", run)
    assert rc == 0 and json.loads(out)["test/acc"] == pytest.approx(res["target/test_acc"])
    assert not any(k.startswith("target/test_acc/") for k in res)  # per-photo accuracy is for Fashion-M only


@needs_fashion
def test_adapt_on_fashion_m_reports_accuracy_by_test_photo(cli, tmp_path):
    import json

    run = tmp_path / "run"
    rc, out, err = cli(
        "adapt",
        "--method",
        "source-only",
        "--limit",
        "256",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--model.channels=4,8",
        "--no-progress",
        "--trainer.tensorboard=false",
        "--out",
        run,
    )
    assert rc == 0, err
    res = json.loads((run / "final_metrics.json").read_text())
    by_photo = {k.rsplit("/", 1)[1]: v for k, v in res.items() if k.startswith("target/test_acc/")}
    assert set(by_photo) == set(FASHION_M_TEST_PHOTOS)
    # the photos partition the test set, so their accuracies, weighted by photo counts, give the overall one
    from reprlab.data.domains import fashion_m_photo_names

    names = fashion_m_photo_names("test", 10000)
    total = sum(by_photo[p] * names.count(p) for p in by_photo) / len(names)
    assert total == pytest.approx(res["target/test_acc"], abs=1e-6)
    assert "target test accuracy by photo: rocket" in out and "held-out images blended from the training photos" in out


# ----------------------------------------------------------------------------- sklearn
def test_sklearn_estimator_adapts_on_moons():
    from reprlab.sklearn import DomainAdaptationClassifier

    xs, ys = make_moons_split("train")
    xt, yt = make_moons_split("train", rotate=35.0)
    xte, yte = make_moons_split("test", rotate=35.0)
    names = np.array(["up", "down"])
    clf = DomainAdaptationClassifier(method="dann", epochs=40, random_state=0).fit(xs.numpy(), names[ys], xt.numpy())
    assert list(clf.classes_) == ["down", "up"] and clf.predict(xte.numpy()[:3]).dtype.kind == "U"
    p = clf.predict_proba(xte.numpy())
    assert p.shape == (500, 2) and np.allclose(p.sum(1), 1)
    assert clf.score(xte.numpy(), names[yte]) > 0.6
    with pytest.raises(ValueError, match="y_t"):
        DomainAdaptationClassifier(method="target-oracle").fit(xs.numpy(), ys.numpy(), xt.numpy())
    with pytest.raises(ConfigError, match="unknown adaptation method"):
        DomainAdaptationClassifier(method="nope").fit(xs.numpy(), ys.numpy())


def test_sklearn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    from reprlab.sklearn import DomainAdaptationClassifier

    check_estimator(DomainAdaptationClassifier(method="coral", epochs=10, random_state=0))


# ----------------------------------------------------------------------------- study
def test_smoke_study_writes_results_with_consistent_numbers(tmp_path):
    import json

    from reprlab.studies.adaptation import gap_closed
    from reprlab.studies.base import run_study

    res = run_study("adaptation", "smoke", tmp_path, progress=False)
    data = json.loads((tmp_path / "adaptation" / "results.json").read_text())
    moons = data["data"]["moons"]
    acc = moons["target_acc"]
    assert set(acc) == {"source-only", "mmd", "coral", "dann", "pseudo-label", "target-oracle"}
    assert all(0.3 <= a[0] <= 1.0 for a in acc.values())
    assert acc["target-oracle"][0] > 0.95  # trained on the target labels of an easy task
    lo, hi = acc["source-only"][0], acc["target-oracle"][0]
    assert moons["gap_closed"]["dann"][0] == pytest.approx((acc["dann"][0] - lo) / (hi - lo))
    assert gap_closed(acc, "mmd") == moons["gap_closed"]["mmd"]
    assert all(0 <= v <= 2 for v in moons["proxy_a_distance"].values())
    for fig in ("gap_closed.png", "tsne_moons.png", "moons_boundaries.png"):
        assert (tmp_path / "adaptation" / fig).stat().st_size > 5000
    assert {f.verdict for f in res.findings} <= {"supported", "not supported", "mixed"}


@needs_fashion
def test_study_scores_fashion_m_by_photo_and_on_held_out_training_photo_images(tmp_path, monkeypatch):
    import json

    from reprlab.data.domains import fashion_m_photo_names
    from reprlab.studies import adaptation
    from reprlab.studies.base import run_study

    tiny = dict(
        limit=128,
        epochs=1,
        batch=64,
        optimizer="sgd",
        lrs=(3e-2,),
        lr_schedule="cosine",
        model=dict(channels=(4, 8), standardize="channel"),
        test_limit=600,
        every=1,
        n_val=200,
    )
    monkeypatch.setitem(adaptation.PRESETS, "smoke", {"fashion": tiny})
    res = run_study("adaptation", "smoke", tmp_path, progress=False)
    fashion = json.loads((tmp_path / "adaptation" / "results.json").read_text())["data"]["fashion"]
    names = fashion_m_photo_names("test", 10000)[:600]
    for method, runs in fashion["by_photo"].items():
        groups = runs[0]
        assert list(groups) == [adaptation.TRAIN_PHOTOS_HELD_OUT, *FASHION_M_TEST_PHOTOS]
        # the test photos partition the 600 scored test images
        overall = sum(groups[p] * names.count(p) for p in FASHION_M_TEST_PHOTOS) / len(names)
        assert overall == pytest.approx(fashion["target_acc"][method][0], abs=1e-6)
        assert 0 <= groups[adaptation.TRAIN_PHOTOS_HELD_OUT] <= 1
    table = next(t for t in res.tables if "by photo" in t.title)
    assert [r[0] for r in table.rows] == [
        adaptation.TRAIN_PHOTOS_HELD_OUT,
        *(f"test photo {p}" for p in FASHION_M_TEST_PHOTOS),
    ]
    dann_finding = next(f for f in res.findings if "60%" in f.claim)
    assert "on held-out images of the photos it adapted to" in dann_finding.evidence


def test_photo_table_gap_is_per_seed_and_undefined_where_the_oracle_is_not_above_source_only():
    from reprlab.studies.adaptation import TRAIN_PHOTOS_HELD_OUT, _photo_table

    def seeds(held, rocket):
        return [{TRAIN_PHOTOS_HELD_OUT: h, "rocket": r} for h, r in zip(held, rocket)]

    by_image = {m: seeds([0.5, 0.5], [0.5, 0.5]) for m in ("mmd", "coral", "pseudo-label")}
    by_image["source-only"] = seeds([0.4, 0.5], [0.6, 0.5])
    by_image["dann"] = seeds([0.6, 0.6], [0.55, 0.6])
    by_image["target-oracle"] = seeds([0.8, 0.7], [0.5, 0.7])  # rocket, seed 0: oracle below source-only
    table = _photo_table(by_image, 5000)
    held, rocket = table.rows
    assert held[0] == TRAIN_PHOTOS_HELD_OUT and held[-1].startswith("0.5 ± ")  # (0.2/0.4, 0.1/0.2) = (0.5, 0.5)
    assert rocket[0] == "test photo rocket" and rocket[-1] == "n/a (oracle not above source-only in 1 of 2 seeds)"
