"""Progress for long work: live rich bars on a terminal, one plain line per finished stage otherwise.

Every piece of work that can take more than a few seconds runs inside :func:`stage` (training runs,
IWAE likelihoods, decoding a test set, building a data cache, each layer of pre-training, each method and
seed of a study). Stages nest: one live display shows them all. On a terminal the bars update live on
stderr; with ``--no-progress`` (:func:`configure`) or when stderr is not a terminal (a log file, CI), each
stage prints one line on stderr when it ends (``what: N steps in 12 s``), and nothing while it runs, so a
failure inside a stage prints only its one-line error.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Iterator

_bars: bool | None = None  # None: bars when stderr is a terminal
_live = None  # the one rich Progress shared by nested stages
_depth = 0


def configure(bars: bool | None) -> None:
    """``False``: never draw bars (print one line per finished stage); ``None``: bars on a terminal."""
    global _bars
    _bars = bars


def bars_enabled() -> bool:
    if _bars is not None:
        return _bars
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class Stage:
    """A running stage: ``advance(n)`` moves its bar, ``describe(text)`` replaces its description."""

    def __init__(self, description: str, total: float | None, unit: str):
        self.description, self.total, self.unit = description, total, unit
        self.done = 0.0
        self.start = time.perf_counter()
        self._task = None

    def advance(self, n: float = 1) -> None:
        self.done += n
        if self._task is not None:
            _live.update(self._task, completed=self.done)

    def describe(self, text: str) -> None:
        self.description = text
        if self._task is not None:
            _live.update(self._task, description=text)

    def summary(self) -> str:
        secs = time.perf_counter() - self.start
        count = f"{self.done:,.0f} {self.unit} in " if self.unit and self.done else ""
        return f"{self.description}: {count}{secs:.1f} s"


def _new_live():
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.progress import TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )


@contextlib.contextmanager
def stage(description: str, total: float | None = None, unit: str = "", bars: bool | None = None) -> Iterator[Stage]:
    """Run a block as one stage of progress (``bars=False`` forces the one-line form for this stage)."""
    global _live, _depth
    s = Stage(description, total, unit)
    live = bars_enabled() if bars is None else bars and bars_enabled()
    if live:
        if _live is None:
            _live = _new_live()
            _live.start()
        s._task = _live.add_task(description, total=total)
    _depth += 1
    ok = False
    try:
        yield s
        ok = True
    finally:
        _depth -= 1
        if s._task is not None:
            if ok:
                _live.update(s._task, completed=s.total if s.total is not None else s.done)
            if _depth == 0:
                _live.stop()
                _live = None
            elif ok:
                _live.remove_task(s._task)  # an inner stage makes room; the outer bars stay
        elif ok:
            print(s.summary(), file=sys.stderr, flush=True)


__all__ = ["configure", "bars_enabled", "stage", "Stage"]
