"""reprlab pretrain / finetune end to end on digits, and their bad inputs (exit 2, one line, nothing overwritten)."""

import json

import pytest

FLAGS = ["--data", "digits", "--data.val_size=100", "--no-progress", "--trainer.tensorboard=false"]


def one_line(err: str) -> str:
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from reprlab.cli import main

    out = tmp_path_factory.mktemp("pt") / "stack"
    assert (
        main(
            [
                "pretrain",
                "--layers",
                "32,16",
                "--layer-type",
                "rbm",
                "--epochs",
                "5",
                "--batch-size",
                "32",
                "--out",
                str(out),
                *FLAGS,
            ]
        )
        == 0
    )
    return out


def test_pretrain_writes_a_finished_stack(stack):
    meta = json.loads((stack / "stack.json").read_text())
    assert meta["status"] == "finished" and meta["layers"] == [32, 16] and meta["layer_type"] == "rbm"
    assert meta["trainer"]["lr"] == 0.01  # the RBM default when --lr is not given
    assert [s["layer"] for s in meta["scores"]] == [1, 2]
    # layer 1 reconstructs its held-out input better than the mean image would (digits: ~0.06)
    assert meta["scores"][0]["eval/recon"] < 0.05
    for l in (1, 2):
        assert (stack / f"layer{l}" / "model.safetensors").is_file() and (stack / f"layer{l}" / "done.json").is_file()


def test_finetune_starts_from_the_stack(cli, stack, tmp_path):
    import reprlab
    from reprlab.recipes.pretraining import load_stack

    w0 = load_stack(stack)[0].layers[0].W.detach()
    dist = {}
    for arm, extra in (("pre", []), ("random", ["--random-init"])):
        out = tmp_path / arm
        rc, _, err = cli("finetune", stack, "--labels", 200, "--epochs", 2, "--out", out, *extra, *FLAGS[2:])
        assert rc == 0, err
        res = json.loads((out / "final_metrics.json").read_text())
        assert res["labels"] == 200 and 0 <= res["test/error"] <= 1
        model = reprlab.load(out)
        assert model.config.hidden == (32, 16)
        dist[arm] = float((model.layers[0].weight.detach() - w0).abs().mean())
    # two short epochs move the pre-trained weights a little; the random net is nowhere near them
    assert dist["pre"] < 0.2 * dist["random"], dist
    # and the fine-tuning run can be resumed (here: it is finished, so it only re-evaluates)
    rc, _, err = cli("finetune", "--resume", tmp_path / "pre", "--no-progress")
    assert rc == 0, err


def test_interrupted_pretrain_resumes_from_the_cli(cli, stack, tmp_path):
    import shutil

    part = tmp_path / "part"
    shutil.copytree(stack, part)
    meta = json.loads((part / "stack.json").read_text())
    meta["status"] = "pretraining"
    (part / "stack.json").write_text(json.dumps(meta))
    (part / "layer2" / "done.json").unlink()  # as if killed while layer 2 trained
    rc, _, err = cli("finetune", part, "--labels", 100)
    assert rc == 2 and "not a finished stack" in one_line(err)
    first = (part / "layer1" / "model.safetensors").read_bytes()
    rc, out, err = cli("pretrain", "--resume", part, "--no-progress")
    assert rc == 0, err
    assert (part / "layer1" / "model.safetensors").read_bytes() == first
    assert json.loads((part / "stack.json").read_text())["status"] == "finished"
    rc, _, err = cli("pretrain", "--resume", part, "--no-progress")
    assert rc == 2 and "already a finished stack" in one_line(err)


@pytest.mark.parametrize(
    "args, expect",
    [
        (["pretrain", "--data", "digits"], "--layers is required"),
        (["pretrain", "--layers", "", "--data", "digits"], "--layers must be comma-separated"),
        (["pretrain", "--layers", "500,abc", "--data", "digits"], "'abc' is not a whole number"),
        (["pretrain", "--layers", "500,0", "--data", "digits"], "sizes must be >= 1"),
        (["pretrain", "--layers", "8", "--layer-type", "vae", "--data", "digits"], "--layer-type 'vae' is not valid"),
        (["pretrain", "--layers", "8", "--corruption", "1.5", "--data", "digits"], "--corruption must be in [0, 1)"),
        (["pretrain", "--layers", "8", "--data", "nope"], "unknown dataset 'nope'"),
        (["pretrain", "--layers", "8", "--data", "digits", "--model.hidden=3"], "takes no --model"),
        (["finetune", "/nonexistent-stack"], "does not exist"),
        (["finetune"], "name a stack directory"),
    ],
)
def test_bad_input_exit_2_one_line(cli, tmp_path, args, expect):
    rc, out, err = cli(*args, "--out", tmp_path / "x") if args[0] == "pretrain" else cli(*args)
    assert rc == 2 and expect in one_line(err)
    assert not (tmp_path / "x").exists()  # nothing was created


def test_finetune_bad_label_budgets_and_runs(cli, stack, tmp_path):
    for labels, expect in ((5, "smaller than the number of classes (10)"), (100000, "larger than the 1337")):
        rc, _, err = cli("finetune", stack, "--labels", labels, "--out", tmp_path / "ft")
        assert rc == 2 and expect in one_line(err)
    rc, _, err = cli("finetune", stack / "layer1", "--labels", 100)
    assert rc == 2 and "is not a pre-trained stack" in one_line(err)
    rc, _, err = cli("finetune", stack, "--depth", 3)
    assert rc == 2 and "--depth must be between 1 and 2" in one_line(err)
    assert not (tmp_path / "ft").exists()


def test_existing_stack_is_not_overwritten(cli, stack):
    before = (stack / "layer1" / "model.safetensors").read_bytes()
    rc, _, err = cli("pretrain", "--layers", "8", "--out", stack, *FLAGS)
    assert rc == 2 and "--overwrite" in one_line(err) and f"--resume {stack}" in err
    assert (stack / "layer1" / "model.safetensors").read_bytes() == before
