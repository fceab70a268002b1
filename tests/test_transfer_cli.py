"""`reprlab transfer` end to end on digits, and its bad inputs: exit 2, one line, nothing overwritten."""

import json

import pytest
import torch

import reprlab
from reprlab.models.pretrained import torchvision_state_dict

FAST = ["--no-progress", "--trainer.tensorboard=false", "--trainer.threads=1"]


def one_line(err: str) -> str:
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    from reprlab.cli import main

    run = tmp_path_factory.mktemp("runs") / "src"
    assert (
        main(
            [
                "train",
                "classifier",
                "--data",
                "digits-28",
                "--epochs",
                "3",
                "--batch-size",
                "64",
                "--model.width=8",
                "--out",
                str(run),
                *FAST,
            ]
        )
        == 0
    )
    return run


def test_frozen_svm_and_fine_tuning_runs(cli, source, tmp_path):
    rc, out, err = cli(
        "transfer",
        "--source",
        source,
        "--target",
        "digits-28",
        "--mode",
        "frozen",
        "--head",
        "svm",
        "--labels-per-class",
        "10",
        "--out",
        tmp_path / "svm",
    )
    assert rc == 0, err
    assert json.loads((tmp_path / "svm" / "final_metrics.json").read_text())["test/acc"] > 0.5  # chance is 0.1
    rc, out, err = cli(
        "transfer",
        "--source",
        source,
        "--target",
        "digits-28",
        "--mode",
        "frozen",
        "--head",
        "logreg",
        "--features",
        "spatial",
        "--labels-per-class",
        "10",
        "--out",
        tmp_path / "spatial",
    )
    assert rc == 0, err
    got = json.loads((tmp_path / "spatial" / "final_metrics.json").read_text())
    assert got["features"] == "spatial" and got["test/acc"] > 0.5
    rc, out, err = cli(
        "transfer",
        "--source",
        source,
        "--target",
        "digits-28",
        "--mode",
        "last-k",
        "--unfreeze",
        "2",
        "--labels-per-class",
        "10",
        "--epochs",
        "2",
        "--head-init",
        "probe",
        "--out",
        tmp_path / "ft",
        *FAST,
    )
    assert rc == 0, err
    assert "100 labelled training images" in out
    m = reprlab.load(tmp_path / "ft")
    src = reprlab.load(source)
    first = "layers.0.0.weight"
    assert torch.equal(m.backbone.state_dict()[first], src.backbone.state_dict()[first]), (
        "block 1 is frozen with unfreeze=2"
    )
    assert not torch.equal(m.backbone.state_dict()["layers.2.0.weight"], src.backbone.state_dict()["layers.2.0.weight"])
    rc, out, err = cli("encode", tmp_path / "ft", "-o", tmp_path / "f.npy")
    import numpy as np

    assert rc == 0 and np.load(tmp_path / "f.npy").shape == (360, 32)  # backbone features of the test split


def test_weights_file_round_trip_through_cli(cli, source, tmp_path):
    src = reprlab.load(source)
    torch.save(torchvision_state_dict(src), tmp_path / "w.pth")
    rc, out, err = cli(
        "transfer",
        "--weights",
        tmp_path / "w.pth",
        "--backbone",
        "small_cnn",
        "--width",
        "8",
        "--target",
        "digits-28",
        "--mode",
        "frozen",
        "--labels-per-class",
        "5",
        "--epochs",
        "1",
        "--out",
        tmp_path / "run",
        *FAST,
    )
    assert rc == 0, err
    assert "loaded 18 backbone tensors" in out and "head re-initialized for 10 classes" in out
    m = reprlab.load(tmp_path / "run")
    for k, v in src.backbone.state_dict().items():
        assert torch.equal(v, m.backbone.state_dict()[k]), k


def test_mismatched_weights_strict_error_and_listed_partial_load(cli, source, tmp_path):
    sd = torchvision_state_dict(reprlab.load(source))
    sd["layers.0.0.weight"] = torch.zeros(8, 3, 3, 3)  # an RGB first layer
    torch.save(sd, tmp_path / "rgb.pth")
    args = [
        "transfer",
        "--weights",
        tmp_path / "rgb.pth",
        "--backbone",
        "small_cnn",
        "--width",
        "8",
        "--target",
        "digits-28",
        "--mode",
        "frozen",
        "--head",
        "logreg",
        "--labels-per-class",
        "5",
    ]
    rc, out, err = cli(*args, "--out", tmp_path / "a")
    assert rc == 2 and "layers.0.0.weight: (8, 3, 3, 3) vs (8, 1, 3, 3)" in one_line(err) and "--strict false" in err
    assert not (tmp_path / "a").exists()
    rc, out, err = cli(*args, "--strict", "false", "--out", tmp_path / "b")
    assert rc == 0, err
    assert "loaded 17 backbone tensors; skipped 1 with other shapes (layers.0.0.weight" in out


@pytest.mark.parametrize(
    "args, expect",
    [
        (["--mode", "last-k", "--unfreeze", "4"], "has 3 blocks; choose 1..3"),
        (["--mode", "frozen", "--labels-per-class", "500"], "--labels-per-class 500 is more than the data has"),
        (
            ["--mode", "frozen", "--target-override", "digits"],
            "digits images are 1x8x8 but the backbone takes 1x28x28; use --target digits-28",
        ),
        (["--mode", "all", "--head", "svm"], "use it with --mode frozen"),
        (["--mode", "frozen", "--features", "spatial"], "add --head svm or --head logreg"),
        (
            ["--mode", "frozen", "--head", "svm", "--head-init", "probe"],
            "use it with --mode frozen, last-k or all and --head linear",
        ),
        (["--mode", "frozen", "--model.width=4"], "--trainer.KEY=VALUE overrides only"),
    ],
)
def test_bad_input_exit_2_one_line(cli, source, tmp_path, args, expect):
    target = "digits-28"
    if "--target-override" in args:
        i = args.index("--target-override")
        target, args = args[i + 1], args[:i] + args[i + 2 :]
    rc, out, err = cli("transfer", "--source", source, "--target", target, *args, "--out", tmp_path / "x", *FAST)
    assert rc == 2 and expect in one_line(err)
    assert not (tmp_path / "x").exists()


def test_bad_weights_files_and_sources(cli, source, tmp_path):
    torch.save({"encoder.weight": torch.zeros(2)}, tmp_path / "other.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    common = ["--target", "digits-28", "--mode", "frozen", "--out", tmp_path / "x"]
    for path, expect in [
        (tmp_path / "other.pth", "no tensors that match the resnet18 backbone"),
        (tmp_path / "list.pth", "is not a state dict"),
        (tmp_path / "none.pth", "does not exist"),
    ]:
        rc, out, err = cli("transfer", "--weights", path, *common)
        assert rc == 2 and expect in one_line(err)
    rc, out, err = cli("transfer", *common)
    assert rc == 2 and "needs a pre-trained backbone" in one_line(err)
    rc, out, err = cli("transfer", "--source", tmp_path, *common)
    assert rc == 2 and "not a reprlab run" in one_line(err)


def test_resize_fixes_the_shape(cli, source, tmp_path):
    rc, out, err = cli(
        "transfer",
        "--source",
        source,
        "--target",
        "digits",
        "--resize",
        "--mode",
        "frozen",
        "--head",
        "svm",
        "--labels-per-class",
        "10",
        "--out",
        tmp_path / "r",
    )
    assert rc == 0, err
    assert json.loads((tmp_path / "r" / "final_metrics.json").read_text())["test/acc"] > 0.5


def test_encode_features(cli, source, tmp_path):
    import numpy as np

    rc, out, err = cli("encode", source, "--features", "-o", tmp_path / "f.npy")
    assert rc == 0, err
    f = np.load(tmp_path / "f.npy")
    m = reprlab.load(source)
    from reprlab.data import load_images

    x = load_images("digits-28").test[0]
    assert f.shape == (360, 32) and np.allclose(f, m.features(x).numpy(), atol=1e-5)
    rc, out, err = cli(
        "train", "ae_mlp", "--data", "digits", "--epochs", "1", "--model.code_dim=2", "--out", tmp_path / "ae", *FAST
    )
    assert rc == 0, err
    rc, out, err = cli("encode", tmp_path / "ae", "--features", "-o", tmp_path / "g.npy")
    assert rc == 2 and "has no backbone" in one_line(err) and not (tmp_path / "g.npy").exists()
