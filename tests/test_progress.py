"""Progress: bars on a terminal; otherwise (a log, --no-progress) one line per finished stage on stderr,
and nothing from a stage that fails, so its error stays the one line."""

import pytest
import torch

from reprlab import progress
from reprlab.config import TrainerConfig
from reprlab.data.batches import TensorBatches
from reprlab.registry import create_model
from reprlab.train.engine import Trainer


@pytest.fixture(autouse=True)
def auto_mode():
    progress.configure(None)
    yield
    progress.configure(None)


def test_a_finished_stage_prints_one_line_when_stderr_is_not_a_terminal(capsys):
    with progress.stage("decode test words", total=3, unit="words") as bar:
        for _ in range(3):
            bar.advance()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("decode test words: 3 words in ") and err[0].endswith(" s")


def test_nested_stages_each_print_their_line_inner_first(capsys):
    with progress.stage("study"):
        with progress.stage("seed 0", total=2, unit="steps") as bar:
            bar.advance(2)
        with progress.stage("seed 1"):
            pass
    lines = [x.split(":")[0] for x in capsys.readouterr().err.splitlines()]
    assert lines == ["seed 0", "seed 1", "study"]


def test_a_failing_stage_prints_nothing(capsys):
    with pytest.raises(ValueError), progress.stage("doomed", total=5, unit="items"):
        raise ValueError("bad")
    assert capsys.readouterr().err == ""


def test_no_progress_forces_lines_even_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    progress.configure(False)
    assert not progress.bars_enabled()
    with progress.stage("work", total=1, unit="items") as bar:
        bar.advance()
    assert capsys.readouterr().err.startswith("work: 1 items in ")


def test_a_training_run_without_bars_prints_one_line(capsys):
    model = create_model("ae_mlp", input_shape=(1, 4, 4), code_dim=2, hidden=(4,))
    x = torch.rand(32, 1, 4, 4)
    Trainer(TrainerConfig(epochs=2, batch_size=8, progress=False, tensorboard=False), description="tiny").fit(
        model, TensorBatches({"x": x}, 8)
    )
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("tiny epoch 2/2 loss ") and ": 8 steps in " in err[0]


def test_iwae_reports_its_progress(capsys):
    from reprlab.metrics.nll import iwae_nll

    vae = create_model("vae_mlp", input_shape=(1, 4, 4), latent_dim=2, hidden=(4,))
    iwae_nll(vae, torch.rand(6, 1, 4, 4), k=3)
    assert capsys.readouterr().err.startswith("IWAE NLL (k=3): 6 examples in ")


LONG_COMMANDS = ["adapt", "encode", "eval", "fd", "finetune", "g2p", "pretrain", "score", "study", "train", "transfer"]


@pytest.mark.parametrize("command", LONG_COMMANDS)
def test_every_long_command_takes_no_progress_and_it_turns_bars_off(command, monkeypatch):
    from reprlab import cli

    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    seen = {}

    def record(args, *rest):
        seen["bars"] = progress.bars_enabled()
        return 0

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    sub.set_defaults(func=record)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    positional = {
        "encode": ["RUN", "-o", "x.npy"],
        "eval": ["RUN"],
        "fd": ["RUN"],
        "g2p": ["RUN"],
        "score": ["RUN"],
        "study": ["gan"],
        "transfer": ["--target", "digits", "--mode", "frozen"],
    }
    assert cli.main([command, *positional.get(command, []), "--no-progress"]) == 0
    assert seen["bars"] is False
    assert cli.main([command, *positional.get(command, [])]) == 0
    assert seen["bars"] is True
