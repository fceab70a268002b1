"""Shared test fixtures. Tests run two at a time (pytest -n 2) on 2 cores, so each uses one thread."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
HAS_FASHION = Path("/usr/share/datasets/fashion-mnist").is_dir() or bool(os.environ.get("REPRLAB_DATA"))
needs_fashion = pytest.mark.skipif(
    not HAS_FASHION, reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"
)


@pytest.fixture
def cli(capsys):
    """Run the reprlab CLI in-process: ``rc, out, err = cli("train", "ae_mlp", ...)``."""
    from reprlab.cli import main

    def run(*args: str):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as e:  # argparse usage errors
            rc = e.code
        cap = capsys.readouterr()
        return rc, cap.out, cap.err

    return run


def run_subprocess(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m reprlab ARGS`` in a fresh process (for DDP, kill -9 and exit-code tests)."""
    e = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "reprlab", *map(str, args)], capture_output=True, text=True, timeout=timeout, env=e
    )


@pytest.fixture
def digits_args():
    """CLI flags for a seconds-long training run on scikit-learn's digits."""
    return ["--data", "digits", "--no-progress", "--trainer.tensorboard=false"]


class Sealed:
    """A test split that cannot be read: any use raises. ``seal_test`` wraps a loader's ``.test`` in it."""

    def __init__(self, inner):
        self.inner = inner

    def _refuse(self, *_a, **_k):
        raise AssertionError("the test split was read before the study made its choices (use ctx.read_test)")

    __iter__ = __len__ = __getitem__ = __contains__ = __bool__ = _refuse

    def __getattr__(self, name):
        self._refuse()


@pytest.fixture
def seal_test(monkeypatch):
    """``seal = seal_test``; ``seal(data)`` is ``data`` with its test split sealed: reading it raises until the
    study calls ``ctx.read_test(data)``, which opens it (and after which ``ctx.choose`` refuses). Patch a
    study's loader to return ``seal(...)`` to check that training and selection never read the test split."""
    import dataclasses

    from reprlab.studies.base import StudyContext

    real = StudyContext.read_test

    def read_test(self, data):
        test = real(self, data)
        return test.inner if isinstance(test, Sealed) else test

    monkeypatch.setattr(StudyContext, "read_test", read_test)
    return lambda data: dataclasses.replace(data, test=Sealed(data.test))
