"""The ``reprlab`` command. Each subcommand lives in ``reprlab/commands/<name>.py`` and is found here.

Bad input (a ReprlabError, or a usage error) prints one line on stderr and exits with code 2. So do the
faults of the machine rather than of reprlab: a full or read-only disk, a folder the user cannot write
(an OSError with one of those errnos) and running out of memory.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from .errors import ReprlabError
from .io import describe_os_error, is_out_of_memory, is_user_os_error


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus a hint) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__, commands

    parser = OneLineParser(
        prog="reprlab",
        description="Representation learning and generative models: train, evaluate, sample, and run the studies.",
        epilog="Run 'reprlab COMMAND --help' for the options of a command. Bad input exits with code 2.",
    )
    parser.add_argument("--version", action="version", version=f"reprlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    mods = sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))
    for name in mods:
        importlib.import_module(f"{commands.__name__}.{name}").register(sub)
    return parser


def _error(line: str) -> None:
    """Print one error line, once: under DDP every process fails alike, and only global rank 0 speaks."""
    _leave_process_group()
    if os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) == "0":
        sys.stderr.write(f"reprlab: error: {line}\n")


def _leave_process_group() -> None:
    """Under DDP, shut the process group down before exiting on an error: left to interpreter exit, its
    background threads can die mid-flight and the C++ runtime prints "terminate called ..." to stderr."""
    if "torch" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _list_settings(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """For ``reprlab train [NAME] --help``: list every ``--trainer.KEY`` (and NAME's ``--model.KEY``) setting.

    They are added only to the help: the settings themselves are parsed as dotted overrides."""
    if not argv or argv[0] != "train" or not ({"-h", "--help"} & set(argv)):
        return
    from .config import TrainerConfig, describe_fields
    from .registry import get_spec, list_models

    train = parser._subparsers._group_actions[0].choices["train"]  # type: ignore[union-attr]
    sections = [("trainer settings (--trainer.KEY=VALUE)", TrainerConfig, "--trainer.")]
    if len(argv) > 1 and argv[1] in list_models():
        sections.insert(
            0, (f"model settings of {argv[1]} (--model.KEY=VALUE)", get_spec(argv[1]).config_cls, "--model.")
        )
    for title, cls, prefix in sections:
        group = train.add_argument_group(title)
        for key, tp, default, text in describe_fields(cls, prefix):
            choices = tp[len("one of ") :].replace("'", "").replace(" ", "") if tp.startswith("one of ") else ""
            metavar = "{" + choices + "}" if choices else tp.upper().replace(" ", "_")
            group.add_argument(key, metavar=metavar, help=f"{text} (default {default})".strip())


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    _list_settings(parser, argv)
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from . import progress

    progress.configure(False if getattr(args, "no_progress", False) else None)
    try:
        rc = args.func(args, extra) if getattr(args, "accepts_overrides", False) else args.func(args)
    except ReprlabError as e:
        _error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("reprlab: interrupted; the last checkpoint is kept (continue with --resume)\n")
        return 130
    except BrokenPipeError:  # e.g. `reprlab models | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        if not is_user_os_error(e):
            raise  # an OSError without an errno we know may be a bug: let it show
        _error(describe_os_error(e))
        return 2
    except (MemoryError, RuntimeError) as e:  # torch's OutOfMemoryError is a RuntimeError
        if not is_out_of_memory(e):
            raise
        _error(_memory_message(e))
        return 2
    return int(rc or 0)


def _memory_message(e: BaseException) -> str:
    import re

    text = str(e)
    m = re.search(r"allocate (\d+) bytes", text)
    want = f" (an allocation of {int(m.group(1)) / 2**30:.1f} GiB failed)" if m else ""
    return (
        f"not enough memory to run this command{want}; lower the model's sizes (--model.*), "
        "--batch-size or -n, or use a machine with more memory"
    )


if __name__ == "__main__":
    sys.exit(main())
