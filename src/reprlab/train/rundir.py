"""Opening a run directory for writing: what counts as a run, the run lock, and a --overwrite that
can only ever replace a run.

Rules (README, "Run directory"):

* ``--overwrite`` replaces only a reprlab run: a folder whose every entry is something a run writes
  (``config.json`` naming a model, or a stack's ``stack.json``, the weights, state, logs, figures and
  evaluation files, and sub-folders that are runs themselves). Anything else in it - a user's file -
  and the folders ``.``, ``..`` (any folder holding the working directory), ``/`` and the home folder
  are refused, with or without ``--overwrite``.
* The old run is first renamed aside (``.NAME.replaced-PID``, atomic), and deleted only when the new
  run has written its first checkpoint (:meth:`OpenRun.commit`). If the new run fails before that,
  the old one is put back; if the process is killed, it stays recoverable under that name.
* Only one process writes a run at a time: an exclusive ``fcntl.flock`` on ``.reprlab.lock`` in the
  folder, which holds the writer's pid and host. The kernel drops the lock when its process dies,
  so a lock file left behind by a killed process is taken over, with a one-line notice.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
import socket
from pathlib import Path

from ..errors import RunExistsError
from ..io import remove_stale_temps

LOCK = ".reprlab.lock"
CONFIG, STACK = "config.json", "stack.json"
_RUN_FILES = (
    CONFIG,
    STACK,
    LOCK,
    "model.safetensors",
    "best.safetensors",
    "trainer_state.pt",
    "trainer_state.prev.pt",
    "metrics.jsonl",
    "final_metrics.json",
    "done.json",
    "eval*.json",
    "reconstructions*.png",
    "trackers.json",  # the MLflow / W&B run ids (train/loggers.py)
    ".*.tmp-*",  # a temp file of an interrupted atomic write
)
_RUN_DIRS = ("logs", "tb", "samples", "mlruns", "wandb")  # mlruns, wandb: trainer.loggers=mlflow,wandb


def run_kind(path: str | Path) -> str | None:
    """``"run"`` if ``path`` holds a config.json that names a model, ``"stack"`` for a pre-training
    stack, else None."""
    path = Path(path)
    for name, kind, ok in ((CONFIG, "run", _names_model), (STACK, "stack", _is_stack)):
        p = path / name
        if p.is_file() and not p.is_symlink():
            try:
                if ok(json.loads(p.read_text())):
                    return kind
            except (OSError, ValueError):
                pass
    return None


def _names_model(cfg) -> bool:
    return isinstance(cfg, dict) and isinstance(cfg.get("model"), str) and bool(cfg["model"])


def _is_stack(meta) -> bool:
    return isinstance(meta, dict) and meta.get("kind") == "reprlab-stack"


def foreign_entries(path: str | Path) -> list[str]:
    """Entries of run folder ``path`` that no reprlab run writes (sorted); empty for a pure run."""
    out = []
    for entry in sorted(Path(path).iterdir()):
        name = entry.name
        if entry.is_symlink():
            out.append(name)
        elif entry.is_dir():
            if not (name in _RUN_DIRS or (run_kind(entry) and not foreign_entries(entry))):
                out.append(name + "/")
        elif not any(fnmatch.fnmatchcase(name, pat) for pat in _RUN_FILES):
            out.append(name)
    return out


def _protected(path: Path) -> str | None:
    """Why ``path`` may never be replaced, or None."""
    real = path.resolve()
    cwd = Path.cwd().resolve()
    if real == Path(real.anchor):
        return "it is the root folder"
    if real == Path.home().resolve():
        return "it is your home folder"
    if real == cwd or real in cwd.parents:
        return "it holds the current working directory"
    return None


def _holds_anything(path: Path) -> bool:
    """True if folder ``path`` holds more than a lock file or temp files that a killed run left."""
    return path.is_dir() and any(p.name != LOCK and not fnmatch.fnmatchcase(p.name, ".*.tmp-*") for p in path.iterdir())


def check_new_run(path: str | Path, overwrite: bool) -> None:
    """Refuse, before any work, an output folder that a new run may not use. Changes nothing."""
    path = Path(path)
    if path.is_symlink():
        raise RunExistsError(f"{path} is a symbolic link; give the folder it points to, or another --out")
    if path.exists() and not path.is_dir():
        raise RunExistsError(f"{path} exists and is not a folder; choose another --out")
    if not _holds_anything(path):
        return
    holder = lock_holder(path)
    if holder:
        raise RunExistsError(f"{path} is in use by {holder}; wait for it to finish or stop it")
    _check_contents(path, overwrite)


def _check_contents(path: Path, overwrite: bool) -> None:
    """What may be replaced: only a run, only with ``overwrite``, never a protected folder."""
    why = _protected(path)
    if why:
        raise RunExistsError(f"{path} cannot be used as a run folder: {why}; choose another --out")
    kind = run_kind(path)
    if not overwrite:
        what = f"a {kind}" if kind else "files"
        hint = f", or --resume {path} to continue it" if kind else ""
        raise RunExistsError(
            f"{path} already holds {what}; pass --overwrite to replace it{hint}, or choose another --out"
        )
    if kind is None:
        raise RunExistsError(f"{path} holds files that are not a reprlab run; --overwrite only replaces a run")
    foreign = foreign_entries(path)
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise RunExistsError(
            f"{path} holds {foreign[0]}{more}, which no reprlab run writes; --overwrite only replaces a run: "
            "move those files out first"
        )


class RunLock:
    """An exclusive lock on run folder ``path``: ``.reprlab.lock`` under ``fcntl.flock``."""

    def __init__(self, path: str | Path):
        import fcntl

        self.path = Path(path) / LOCK
        me = f"{os.getpid()} {socket.gethostname()}"
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise RunExistsError(f"{path} is in use by {holder}; wait for it to finish or stop it") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a lock file that its holder removed while we waited
                break
            os.close(fd)
        old = _read_holder(fd, default="")
        if old and not old.startswith(f"pid {os.getpid()} "):
            print(f"note: {path}: taking over the lock left by {old} (that process is gone)")
        os.ftruncate(fd, 0)
        os.pwrite(fd, (me + "\n").encode(), 0)
        self.fd: int | None = fd

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self.fd)
        self.fd = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.release()


def lock_holder(path: str | Path) -> str | None:
    """Who holds the lock of run folder ``path`` right now ("pid N on HOST"), or None. Creates nothing."""
    import fcntl

    try:
        fd = os.open(Path(path) / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(fd)
    finally:
        os.close(fd)
    return None


def _read_holder(fd: int, default: str = "another process") -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").split()
    except OSError:
        return default
    if len(text) >= 2:
        return f"pid {text[0]} on {text[1]}"
    return f"pid {text[0]}" if text else default


class OpenRun:
    """A run folder opened for writing by this process: locked, and for a new run created empty.

    ``resume``: the folder must be a run; stale temp files are removed. ``overwrite``: an existing run
    is moved aside and deleted at :meth:`commit` (after the first checkpoint) or put back at
    :meth:`close` if the new run never got that far.
    """

    def __init__(self, path: str | Path, resume: bool = False, overwrite: bool = False):
        self.path = Path(path)
        self.aside: Path | None = None
        self._aside_lock: RunLock | None = None
        self.lock: RunLock | None = None
        if resume:
            self.lock = RunLock(self.path)
            remove_stale_temps(self.path)
            return
        check_new_run(self.path, overwrite)
        if _holds_anything(self.path):
            # the old run's own lock is held while it is moved, so a live writer is never moved away
            self._aside_lock = RunLock(self.path)
            _check_contents(self.path, overwrite)  # it may have changed before we held the lock
            self.aside = self.path.with_name(f".{self.path.name}.replaced-{os.getpid()}")
            os.rename(self.path, self.aside)
            self._aside_lock.path = self.aside / LOCK
        self.path.mkdir(parents=True, exist_ok=True)
        self.lock = RunLock(self.path)
        remove_stale_temps(self.path)
        # another writer may have filled the folder between our check and our lock
        if _holds_anything(self.path):
            self.lock.release()
            self._restore()
            raise RunExistsError(
                f"{self.path} was filled by another process while this one started; choose another --out"
            )

    def commit(self) -> None:
        """The new run has a checkpoint: the run it replaced can go."""
        if self.aside is not None:
            if self._aside_lock is not None:
                self._aside_lock.release()
            shutil.rmtree(self.aside, ignore_errors=True)
            self.aside = None

    def _restore(self) -> None:
        if self.aside is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.rename(self.aside, self.path)
        self.aside = None
        if self._aside_lock is not None:
            self._aside_lock.path = self.path / LOCK
            self._aside_lock.release()

    def close(self) -> None:
        """Release the lock; a replaced run that was never committed is put back."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        self._restore()


__all__ = ["LOCK", "run_kind", "foreign_entries", "check_new_run", "RunLock", "OpenRun"]
