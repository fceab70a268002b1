"""Folders of PNG and JPEG images, decoded once into a memory-mapped uint8 cache.

Layouts (hidden files and folders are ignored; files other than .png/.jpg/.jpeg too):

* ``ROOT/<class>/...``: one sub-folder per class gives the labels (classes sorted by name -> 0, 1, ...);
* ``ROOT/*.png``: a flat folder is unlabelled;
* ``ROOT/train/...`` and ``ROOT/test/...`` (and optionally ``ROOT/val/...``), each in one of the layouts
  above: that is the split. Otherwise the split is drawn, seeded and stratified (see :mod:`.splits`).

Within a split part the images are ordered by their path inside the class folder, then by class, so
zero-padded file names keep the order they were written in, labelled or not.

``size=S`` center-crops each image to a square and resizes it to S x S (bilinear, antialiased; a large
JPEG is first decoded at a reduced scale, no smaller than S). ``channels=1|3`` converts to grayscale
(ITU-R 601 luma) or RGB; by default it is 1 when the first image is grayscale, else 3.

The first :func:`open_folder` decodes every image once into ``cache_dir()/folders/<key>/x.npy``, keyed
by the sorted file list with sizes and modification times, the target size and channels. Later calls
only list the folder and open the memory map: no image is decoded again. The cache is built in a temp
folder and renamed into place; a lock file makes a second process wait for the first one's build and
the rename keeps the first finished build if locks do not work (network file systems).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import DataError
from ..io import atomic_write_text, cache_dir
from .arraybatches import iter_row_chunks, open_npy_memmap
from .splits import Split, SplitRows, make_split, require_labels

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CACHE_VERSION = 1
SPLIT_FOLDERS = ("train", "val", "test")
JOB_BYTES = 8 << 20  # decoded bytes one decode job holds before writing them
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N"}

# --------------------------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class FolderListing:
    """The images of a folder in data order, with what the cache key needs."""

    root: Path
    files: tuple[str, ...]  # paths relative to root, in data order
    stats: tuple[tuple[int, int], ...]  # (size in bytes, mtime in ns) of each file
    labels: np.ndarray | None  # (N,) int64 class indices; None for a flat folder
    classes: tuple[str, ...]
    given: dict[str, np.ndarray] = field(default_factory=dict)  # "test"/"val" row indices from sub-folders

    def __len__(self) -> int:
        return len(self.files)


def _visible(names: Iterator[os.DirEntry]) -> list[os.DirEntry]:
    return sorted((e for e in names if not e.name.startswith(".")), key=lambda e: e.name)


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _walk_images(folder: Path) -> tuple[list[str], list[str]]:
    """Image paths under ``folder`` (recursive, relative to it) and the other files seen (for messages)."""
    images, others = [], []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(folder)
        for f in filenames:
            if f.startswith("."):
                continue
            (images if _is_image(f) else others).append(str(rel / f) if str(rel) != "." else f)
    return images, others


def _list_part(folder: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """[(class or "", path relative to ``folder``)] of one split part, and the other files seen."""
    try:
        entries = _visible(os.scandir(folder))
    except OSError as e:
        raise DataError(f"cannot read folder {folder}: {e.strerror}") from None
    subdirs = [e.name for e in entries if e.is_dir()]
    loose = [e.name for e in entries if e.is_file() and _is_image(e.name)]
    others = [e.name for e in entries if e.is_file() and not _is_image(e.name)]
    if subdirs and loose:
        raise DataError(
            f"{folder} holds both images ({loose[0]}, ...) and sub-folders ({subdirs[0]}, ...); "
            "put every image in a class folder, or use a flat folder without sub-folders"
        )
    if not subdirs:
        return [("", f) for f in loose], others
    out = []
    for c in subdirs:
        imgs, rest = _walk_images(folder / c)
        others += [f"{c}/{r}" for r in rest]
        if not imgs:
            raise DataError(f"class folder {folder / c} holds no PNG or JPEG images; remove it or add images")
        out += [(c, f"{c}/{f}") for f in imgs]
    return out, others


def list_folder(path: str | Path) -> FolderListing:
    """List a folder's images, labels and given split, and stat each file (nothing is decoded)."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{root} does not exist; give a folder of PNG or JPEG images")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; give a folder of PNG or JPEG images")
    root = root.resolve()
    try:
        top = _visible(os.scandir(root))
    except OSError as e:
        raise DataError(f"cannot read folder {root}: {e.strerror}") from None
    top_dirs = {e.name for e in top if e.is_dir()}
    if {"train", "test"} <= top_dirs:
        extra = sorted(top_dirs - set(SPLIT_FOLDERS))
        loose = [e.name for e in top if e.is_file() and _is_image(e.name)]
        if extra or loose:
            what = extra[0] + "/" if extra else loose[0]
            raise DataError(
                f"{root} has train/ and test/ beside {what}; put every image inside train/, test/ (or val/)"
            )
        parts = [p for p in SPLIT_FOLDERS if p in top_dirs]
    else:
        parts = [""]
    listed: dict[str, list[tuple[str, str]]] = {}
    others: list[str] = []
    for p in parts:
        items, rest = _list_part(root / p if p else root)
        listed[p] = items
        others += rest
    if not any(listed.values()):
        hint = f" (found {len(others)} other files, e.g. {others[0]})" if others else ""
        raise DataError(f"{root} holds no PNG or JPEG images{hint}; give a folder of .png/.jpg files")
    kinds = {p: bool(items) and items[0][0] != "" for p, items in listed.items() if items}
    if len(set(kinds.values())) > 1:
        labelled = [p for p, k in kinds.items() if k]
        flat = [p for p, k in kinds.items() if not k]
        raise DataError(
            f"{root}: {labelled[0]}/ has class folders but {flat[0]}/ has none; use the same layout in both"
        )
    labelled = any(kinds.values())
    classes = tuple(sorted({c for items in listed.values() for c, _ in items})) if labelled else ()
    cindex = {c: i for i, c in enumerate(classes)}
    files, labels, given = [], [], {}
    for p in parts:
        # by path inside the class folder, then by class: zero-padded names keep their written order
        items = sorted(listed[p], key=lambda t: (t[1][len(t[0]) + 1 :] if t[0] else t[1], cindex.get(t[0], 0)))
        start = len(files)
        files += [f"{p}/{f}" if p else f for _, f in items]
        labels += [cindex[c] for c, _ in items] if labelled else []
        if p in ("test", "val"):
            given[p] = np.arange(start, len(files), dtype=np.int64)
    stats = []
    for f in files:
        try:
            st = os.stat(root / f)
        except OSError as e:
            raise DataError(f"cannot read {root / f}: {e.strerror}") from None
        stats.append((st.st_size, st.st_mtime_ns))
    return FolderListing(
        root,
        tuple(files),
        tuple(stats),
        np.asarray(labels, dtype=np.int64) if labelled else None,
        classes,
        given,
    )


# -------------------------------------------------------------------------------------------- decoding


def _check_options(size: int | None, channels: int | None) -> None:
    if size is not None and (not isinstance(size, (int, np.integer)) or size < 1):
        raise DataError(f"data.size={size!r} is not a positive whole number of pixels")
    if channels not in (None, 1, 3):
        raise DataError(f"data.channels={channels!r} is not 1 (grayscale) or 3 (RGB)")


def native_channels(mode: str) -> int:
    """1 for a grayscale Pillow mode, 3 for anything in colour."""
    return 1 if mode in _GRAY_MODES else 3


def _convert(img, channels: int):
    from PIL import Image

    mode = img.mode
    if mode.startswith("I"):  # 16-bit grayscale PNG: keep the high byte
        a = np.asarray(img).astype(np.int64).clip(0, 65535) >> 8
        img = Image.fromarray(a.astype(np.uint8), mode="L")
        mode = "L"
    if channels == 1:
        if mode == "L":
            return img
        if mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
            img = img.convert("RGBA" if mode.startswith("P") else "RGB")
        return img.convert("L")
    if mode == "RGB":
        return img
    if mode.startswith("P"):
        img = img.convert("RGBA")  # a palette with transparency converts without a warning this way
    return img.convert("RGB")


def _center_square(img, size: int):
    from PIL import Image

    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    box = (left, top, left + s, top + s)
    img = img.crop(box) if s != w or s != h else img
    # crop first: resize(box=...) would blend in pixels from outside the square at its edges
    return img if s == size else img.resize((size, size), Image.Resampling.BILINEAR)


def _decode(path: str | Path, size: int | None, channels: int | None) -> tuple[np.ndarray, int]:
    """(uint8 (C, H, W), the file's own number of channels)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if size is not None and img.format == "JPEG":
                img.draft(img.mode, (size, size))  # decode at 1/2, 1/4 or 1/8 scale when that is still >= size
            native = native_channels(img.mode)
            out = _convert(img, channels or native)
            if size is not None:
                out = _center_square(out, size)
            a = np.asarray(out, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        why = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        raise DataError(f"{path}: cannot read the image ({why}); replace or remove the file") from None
    return (a[None] if a.ndim == 2 else np.ascontiguousarray(a.transpose(2, 0, 1))), native


def decode_image(path: str | Path, size: int | None = None, channels: int | None = None) -> np.ndarray:
    """One image as uint8 (C, H, W): converted to ``channels`` (default: its own), center-cropped and
    resized to ``size`` x ``size`` when given. DataError naming the file when it cannot be read."""
    return _decode(path, size, channels)[0]


@dataclass(frozen=True)
class _Job:
    root: str
    files: tuple[str, ...]
    start: int
    out: str
    offset: int
    shape: tuple[int, ...]  # (C, H, W)
    size: int | None
    channels: int
    refuse_colour: bool  # channels were inferred as 1: a colour image is an error, not silently grayed


def _decode_job(job: _Job) -> int:
    """Decode ``job.files`` into rows ``start...`` of the cache file; returns how many were written."""
    item = int(np.prod(job.shape))
    buf = np.empty((len(job.files), *job.shape), dtype=np.uint8)
    for i, f in enumerate(job.files):
        path = Path(job.root) / f
        a, native = _decode(path, job.size, job.channels)
        if job.refuse_colour and native == 3:
            raise DataError(
                f"{path} is in colour but the first image is grayscale; pass data.channels=3 (or 1 to convert)"
            )
        if a.shape != job.shape:
            raise DataError(
                f"{path} is {a.shape[2]}x{a.shape[1]} but the first image is {job.shape[2]}x{job.shape[1]}; "
                "pass data.size=S to resize every image to S x S"
            )
        buf[i] = a
    fd = os.open(job.out, os.O_WRONLY)
    try:
        data, pos = memoryview(buf.reshape(-1)), job.offset + job.start * item
        while len(data):  # a write may take less than asked
            done = os.pwrite(fd, data, pos)
            data, pos = data[done:], pos + done
    finally:
        os.close(fd)
    return len(job.files)


# ----------------------------------------------------------------------------------------------- cache


def cache_key(listing: FolderListing, size: int | None, channels: int | None) -> str:
    """A digest of the file list, sizes, mtimes, target size/channels and the decoder's version."""
    import PIL

    h = hashlib.sha256()
    h.update(json.dumps([CACHE_VERSION, PIL.__version__, size, channels]).encode())
    for f, (n, t) in zip(listing.files, listing.stats):
        h.update(f"{f}\0{n}\0{t}\n".encode())
    return h.hexdigest()[:24]


def _content_digest(x_path: Path, header: dict, labels: np.ndarray | None, classes, given: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"shape": header["shape"], "classes": list(classes)}).encode())
    for chunk in iter_row_chunks(open_npy_memmap(x_path), 16 << 20):
        h.update(memoryview(chunk.reshape(-1)))
    if labels is not None:
        h.update(labels.astype("<i8").tobytes())
    for k in sorted(given):
        h.update(k.encode() + given[k].astype("<i8").tobytes())
    return h.hexdigest()[:16]


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _is_complete(folder: Path) -> bool:
    try:
        meta = json.loads((folder / "meta.json").read_text())
        n = int(np.prod(meta["shape"]))
        return meta.get("version") == CACHE_VERSION and (folder / "x.npy").stat().st_size >= n
    except (OSError, ValueError, KeyError, TypeError):
        return False


@contextlib.contextmanager
def _locked(path: Path, say: bool) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (fcntl.flock); a no-op where flock does not exist."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the rename below still keeps one build
        yield
        return
    with open(path, "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            if say:
                print("waiting for another process that is building this image cache ...", file=sys.stderr)
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_builds(parent: Path, key: str) -> None:
    for p in parent.glob(f".tmp-{key}-*"):
        try:
            pid = int(p.name.split("-")[2])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)


def _progress_bar(what: str):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def _default_workers(n: int) -> int:
    if n < 2048:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cores))


def _build(
    listing: FolderListing,
    tmp: Path,
    size: int | None,
    channels: int | None,
    progress: bool,
    workers: int | None,
) -> dict:
    """Decode every image of ``listing`` into ``tmp`` (x.npy, y.npy, meta.json); returns the meta."""
    t0 = time.perf_counter()
    first = decode_image(listing.root / listing.files[0], size, channels)
    refuse_colour = channels is None and first.shape[0] == 1
    ch = first.shape[0]
    shape = tuple(int(s) for s in first.shape)
    n = len(listing)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": (n, *shape)}
    x_path = tmp / "x.npy"
    with open(x_path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        offset = f.tell()
        f.truncate(offset + n * int(np.prod(shape)))
    chunk = max(1, min(256, JOB_BYTES // int(np.prod(shape))))  # bounded memory per job, whatever the size
    jobs = [
        _Job(str(listing.root), listing.files[s : s + chunk], s, str(x_path), offset, shape, size, ch, refuse_colour)
        for s in range(0, n, chunk)
    ]
    workers = _default_workers(n) if workers is None else max(1, int(workers))
    bar = _progress_bar(f"decoding {listing.root.name}") if progress else contextlib.nullcontext()
    with bar:
        task = bar.add_task("decode", total=n) if progress else None
        if workers == 1:
            for job in jobs:
                done = _decode_job(job)
                if progress:
                    bar.advance(task, done)
        else:
            import multiprocessing as mp
            from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

            ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                pending = {pool.submit(_decode_job, job) for job in jobs}
                while pending:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for fut in done:
                        if fut.exception() is not None:
                            for p in pending:
                                p.cancel()
                            raise fut.exception()
                        if progress:
                            bar.advance(task, fut.result())
    _fsync(x_path)
    if listing.labels is not None:
        np.save(tmp / "y.npy", listing.labels)
        _fsync(tmp / "y.npy")
    fingerprint = _content_digest(x_path, header, listing.labels, listing.classes, listing.given)
    meta = {
        "version": CACHE_VERSION,
        "root": str(listing.root),
        "shape": [n, *shape],
        "size": size,
        "channels": channels,
        "classes": list(listing.classes),
        "labelled": listing.labels is not None,
        "given": {k: v.tolist() for k, v in listing.given.items()},
        "fingerprint": fingerprint,
        "seconds": round(time.perf_counter() - t0, 3),
        "files": list(listing.files),
    }
    atomic_write_text(tmp / "meta.json", json.dumps(meta))
    return meta


def ensure_cache(
    listing: FolderListing,
    size: int | None = None,
    channels: int | None = None,
    progress: bool = True,
    workers: int | None = None,
    cache_root: str | Path | None = None,
    lock: bool = True,
) -> Path:
    """The cache folder of ``listing`` at this size/channels, decoding the images first if there is none."""
    _check_options(size, channels)
    parent = Path(cache_root) if cache_root is not None else cache_dir() / "folders"
    key = cache_key(listing, size, channels)
    final = parent / key
    if _is_complete(final):
        return final
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the image cache folder {parent}: {e.strerror}; set REPRLAB_CACHE") from None
    guard = _locked(parent / f".{key}.lock", progress) if lock else contextlib.nullcontext()
    with guard:
        if _is_complete(final):  # another process built it while this one waited
            return final
        _remove_stale_builds(parent, key)
        tmp = parent / f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            _build(listing, tmp, size, channels, progress, workers)
            if final.exists() and not _is_complete(final):  # a broken cache (files removed by hand)
                shutil.rmtree(final, ignore_errors=True)
            try:
                os.rename(tmp, final)
            except OSError as e:
                # the first finished build wins; ours is identical, so it is simply dropped
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not _is_complete(final):
                    raise
        except OSError as e:
            raise DataError(f"cannot write the image cache in {parent}: {e.strerror}; free space or set REPRLAB_CACHE")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


# ------------------------------------------------------------------------------------------------ data


@dataclass
class FolderData(SplitRows):
    """A decoded image folder: ``x`` is the (N, C, H, W) uint8 memory map, ``y`` the labels (or None)."""

    root: Path
    cache: Path
    x: np.memmap
    y: np.ndarray | None
    classes: tuple[str, ...]
    files: tuple[str, ...]
    split: Split
    fingerprint: str
    size: int | None = None
    channels: int | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.x.shape[1:])

    def record(self) -> dict:
        """What a run stores to find this data again and notice a change (JSON-ready)."""
        return {
            "kind": "folder",
            "path": str(self.root),
            "size": self.size,
            "channels": self.channels,
            "shape": list(self.input_shape),
            "classes": list(self.classes),
            "fingerprint": self.fingerprint,
            "split": self.split.record(),
        }


def open_folder(
    path: str | Path,
    size: int | None = None,
    channels: int | None = None,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
    cache_root: str | Path | None = None,
) -> FolderData:
    """Open an image folder through its cache (built on first use); see the module docstring for layouts.

    The split: ``train/``, ``test/`` (and ``val/``) sub-folders when present, else ``test_fraction`` of all
    images drawn with ``seed`` (stratified by class); ``val_fraction`` of the rest is the validation part.
    """
    _check_options(size, channels)
    listing = list_folder(path)
    cache = ensure_cache(listing, size, channels, progress, workers, cache_root)
    meta = json.loads((cache / "meta.json").read_text())
    x = open_npy_memmap(cache / "x.npy")
    y = np.load(cache / "y.npy") if meta["labelled"] else None
    given = {k: np.asarray(v, dtype=np.int64) for k, v in meta["given"].items()}
    split = make_split(
        len(x),
        y,
        test_fraction,
        val_fraction,
        seed,
        given_test=given.get("test"),
        given_val=given.get("val"),
    )
    return FolderData(
        listing.root,
        cache,
        x,
        y,
        tuple(meta["classes"]),
        tuple(meta["files"]),
        split,
        meta["fingerprint"],
        size,
        channels,
    )


def folder_fingerprint(path: str | Path, size: int | None = None, channels: int | None = None, **kw) -> str:
    """The content digest of a folder's decoded images, labels and given split (16 hex digits)."""
    return open_folder(path, size, channels, **kw).fingerprint


def write_image_folder(
    folder: str | Path,
    images: np.ndarray,
    labels: Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
    fmt: str = "png",
    quality: int = 95,
) -> list[Path]:
    """Write uint8 images (N, H, W), (N, 1, H, W) or (N, 3, H, W) as a folder, one file per image named
    by its zero-padded index (in class sub-folders when ``labels`` are given). For tests and examples."""
    from PIL import Image

    folder = Path(folder)
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError("write_image_folder takes uint8 images")
    width = max(5, len(str(len(images) - 1)))
    out = []
    for i, img in enumerate(images):
        if img.ndim == 3:
            img = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
        sub = folder if labels is None else folder / (classes[labels[i]] if classes else str(int(labels[i])))
        sub.mkdir(parents=True, exist_ok=True)
        p = sub / f"{i:0{width}d}.{fmt}"
        extra = {"quality": quality} if fmt in ("jpg", "jpeg") else {}
        Image.fromarray(np.ascontiguousarray(img)).save(p, **extra)
        out.append(p)
    return out


__all__ = [
    "FolderData",
    "FolderListing",
    "IMAGE_SUFFIXES",
    "list_folder",
    "decode_image",
    "cache_key",
    "ensure_cache",
    "open_folder",
    "folder_fingerprint",
    "require_labels",
    "write_image_folder",
]
