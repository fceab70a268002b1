"""Files on disk: atomic writes, output paths that never replace a user's file by accident, the cache folder.

This module sits at the bottom of the layers (beside config and errors): the engine, metrics, studies,
commands and the report all write through it, and it imports nothing of reprlab but the errors.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Callable, Iterator

from .errors import ReprlabError

TMP_MARK = ".tmp-"  # temp files are named .NAME.tmp-PID beside their target


def _tmp_path(path: Path) -> Path:
    # the suffix is kept, so writers that choose a format by it (matplotlib) or add one (numpy) write here
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; when the block ends without error it is fsynced and renamed over
    ``path``, so readers never see half a file. On any error the temp file is removed and ``path`` is
    left as it was."""
    path = Path(path)
    tmp = _tmp_path(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if e.filename and TMP_MARK in str(e.filename):
            e.filename = str(path)  # the user asked for path; the temp name would only confuse
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Atomically write ``path`` by calling ``writer(tmp_path)`` (for savefig, np.save and the like)."""
    with atomic_path(path) as tmp:
        writer(tmp)


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete temp files that an interrupted atomic write left in ``folder``; return what was removed."""
    folder = Path(folder)
    gone = []
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.startswith(".") and TMP_MARK in p.name and p.is_file():
                with contextlib.suppress(OSError):
                    p.unlink()
                    gone.append(p)
    return gone


def output_path(path: str | Path, overwrite: bool, what: str = "file") -> Path:
    """Check that ``path`` can receive a new output file, before any work is done.

    Refused with one line: a path that exists (unless ``overwrite``), a path that is a directory, and
    a parent that exists but is not a directory. The parent folder is not created here; call
    :func:`make_parent` right before writing."""
    p = Path(path)
    if p.is_dir():
        raise ReprlabError(f"{p} is a directory; give a file name for the {what}")
    if p.exists() and not overwrite:
        raise ReprlabError(f"{p} already exists; pass --overwrite to replace it")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ReprlabError(f"cannot write {p}: {parent} is a file, not a folder")
            break
    return p


def make_parent(path: str | Path) -> Path:
    """Create the folder that will hold ``path`` (and its parents)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def cache_dir() -> Path:
    """Where reprlab keeps what it builds once (dataset caches, the FD-classifier): ``$REPRLAB_CACHE``,
    else ``~/.cache/reprlab``."""
    return Path(os.environ.get("REPRLAB_CACHE") or Path.home() / ".cache" / "reprlab")


def describe_os_error(e: OSError) -> str:
    """One line for a failed file operation: what failed, where, and what to do."""
    where = f" {e.filename}" if getattr(e, "filename", None) else ""
    hints = {
        errno.ENOSPC: "the disk is full; free some space",
        errno.EROFS: "the file system is read-only; choose another folder",
        errno.EACCES: "permission denied; choose a folder you can write",
        errno.EPERM: "operation not permitted; choose a folder you can write",
        errno.EDQUOT: "the disk quota is exhausted; free some space",
        errno.ENOENT: "no such file or folder",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EISDIR: "this is a folder, not a file",
        errno.ENAMETOOLONG: "the name is too long",
        errno.ENOMEM: "not enough memory",
        errno.EFBIG: "the file is too large for this file system",
        errno.ELOOP: "too many levels of symbolic links",
        errno.EIO: "input/output error; check the disk",
    }
    hint = hints.get(e.errno, e.strerror or e.__class__.__name__)
    return f"cannot write or read{where}: {hint}"


# errnos that say the environment (disk, permissions, a path) is at fault, not reprlab: the CLI reports them
# as one line. Any other OSError, and one without an errno, surfaces as a traceback: it may be a bug.
USER_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.EDQUOT,
        errno.ENOMEM,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ENAMETOOLONG,
        errno.EFBIG,
        errno.ELOOP,
        errno.EIO,
    }
)


def is_user_os_error(e: BaseException) -> bool:
    """True for an OSError whose errno says the disk, the permissions or the path is at fault."""
    return isinstance(e, OSError) and e.errno in USER_ERRNOS


_OOM_WORDS = ("out of memory", "not enough memory", "can't allocate memory", "cannot allocate memory")


def is_out_of_memory(e: BaseException) -> bool:
    """True for MemoryError, torch's OutOfMemoryError, and the RuntimeError torch's CPU allocator raises when
    an allocation fails ("DefaultCPUAllocator: can't allocate memory ...")."""
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return True
    return isinstance(e, RuntimeError) and any(w in str(e).lower() for w in _OOM_WORDS)


__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_with",
    "remove_stale_temps",
    "output_path",
    "make_parent",
    "cache_dir",
    "describe_os_error",
    "is_user_os_error",
    "is_out_of_memory",
]
