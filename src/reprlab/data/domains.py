"""Shifted domains for domain adaptation, and the ``domains`` data task that pairs a source with a target.

* ``fashion-m``: the MNIST-M construction (Ganin et al., JMLR 2016) applied to Fashion-MNIST.
  Each image I (grey, 0..255) is blended with a random 28×28 crop P of a colour photo as
  ``|P − I|`` per channel, giving uint8 RGB. The photos are scikit-image's bundled ones; the
  training and test splits use disjoint photos. It is a construction in the spirit of MNIST-M,
  not the original data set (which used BSDS500 photos and MNIST digits).
* ``moons`` / ``moons-rotated``: the two-moons toy task, the target rotated by ``MOONS_ANGLE``
  degrees about the data's centre, as in the DANN paper's toy experiment.

The ``domains`` task yields training batches with a labelled source part and an unlabelled
target part: ``{"x_s", "y_s", "x_t", "y_t", "i_t"}``. ``y_t`` is there only for the
train-on-target oracle; ``i_t`` indexes the target training set (pseudo-labels are kept per example).
Validation and test batches are ``{"x", "y"}`` from the *target* domain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from ..config import DataConfig, TrainerConfig
from ..errors import ConfigError, DataError
from ..io import atomic_write_with, cache_dir
from ..tasks import TaskData, register_task
from . import get_dataset, register_dataset
from .batches import Batch, TensorBatches, epoch_generator
from .images import FASHION_MNIST_CLASSES, ImageData, load_fashion_mnist, locate_fashion_mnist, split_train_val

# The natural colour photos bundled with scikit-image (no download; `cat` is the same picture as
# `chelsea`, and colorwheel/logo are drawings, so they are left out). Train and test never share a
# photo. How dark a photo is decides how hard its blends are (|P - I| ~ I on a dark patch, the
# inverted garment on a bright one), so the split is stratified by brightness: sort the photos by
# mean luminance (0.299 R + 0.587 G + 0.114 B) and alternate, the darkest to train. Both splits then
# span dark to bright photos (tests/test_adaptation.py recomputes this rule).
FASHION_M_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "rocket",
    "stereo_motorcycle",
)
FASHION_M_TRAIN_PHOTOS = ("hubble_deep_field", "retina", "stereo_motorcycle", "chelsea")  # luminance 19, 90, 109, 120
FASHION_M_TEST_PHOTOS = ("rocket", "coffee", "astronaut", "immunohistochemistry")  # luminance 61, 104, 115, 163
FASHION_M_VERSION = (
    2  # bump when the construction changes, so old caches are not reused (2: brightness-stratified split)
)
MOONS_ANGLE = 35.0
MOONS_SIZES = {"train": 1000, "test": 500}


# ----------------------------------------------------------------------------- Fashion-M
def load_photo(name: str) -> np.ndarray:
    """A scikit-image photo as uint8 (H, W, 3)."""
    import skimage.data

    img = getattr(skimage.data, name)()
    if isinstance(img, tuple):  # stereo pairs: take the left image
        img = img[0]
    return np.ascontiguousarray(img[..., :3])


def photo_luminance(name: str) -> float:
    """Mean luminance (0.299 R + 0.587 G + 0.114 B, 0..255) of a scikit-image photo."""
    return float((load_photo(name).astype(np.float64) @ np.array([0.299, 0.587, 0.114])).mean())


def brightness_stratified_split(names) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(train, test) photos: sorted by mean luminance, alternating, the darkest to train."""
    ranked = sorted(names, key=photo_luminance)
    return tuple(ranked[0::2]), tuple(ranked[1::2])


def blend_with_photos(images: np.ndarray, photos: list[np.ndarray], seed: int) -> np.ndarray:
    """|random photo crop − image| per channel: (N, 28, 28) uint8 -> (N, 3, 28, 28) uint8.

    Each image gets a photo chosen uniformly and a crop position uniform over that photo.
    Everything is drawn from ``np.random.default_rng(seed)``, so the output is a function of the seed;
    the photos are drawn first, so ``photo_of_each`` can name each image's photo without the blend.
    """
    rng = np.random.default_rng(seed)
    n, h, w = images.shape
    which = rng.integers(0, len(photos), n)  # the same draw as photo_of_each(n, len(photos), seed)
    out = np.empty((n, h, w, 3), dtype=np.uint8)
    for k, photo in enumerate(photos):
        idx = np.flatnonzero(which == k)
        if len(idx) == 0:
            continue
        ph, pw = photo.shape[:2]
        r = rng.integers(0, ph - h + 1, len(idx))
        c = rng.integers(0, pw - w + 1, len(idx))
        rows = r[:, None] + np.arange(h)  # (n_k, h)
        cols = c[:, None] + np.arange(w)  # (n_k, w)
        patches = photo[rows[:, :, None], cols[:, None, :]].astype(np.int16)  # (n_k, h, w, 3)
        out[idx] = np.abs(patches - images[idx, :, :, None].astype(np.int16)).astype(np.uint8)
    return out.transpose(0, 3, 1, 2).copy()


def photo_of_each(n: int, n_photos: int, seed: int) -> np.ndarray:
    """Which of ``n_photos`` photos ``blend_with_photos`` gives each of ``n`` images under ``seed``."""
    return np.random.default_rng(seed).integers(0, n_photos, n)


def _fashion_m_stream(split: str, seed: int) -> tuple[tuple[str, ...], int]:
    """The photos of a Fashion-M split and the seed of its blend (a different stream per split, so train and
    test crops are independent); ``load_fashion_m`` and ``fashion_m_photo_names`` both read them here."""
    if split not in ("train", "test"):
        raise ConfigError(f"Fashion-M has splits 'train' and 'test', not {split!r}")
    return (FASHION_M_TRAIN_PHOTOS if split == "train" else FASHION_M_TEST_PHOTOS), seed * 2 + (split == "test")


def fashion_m_photo_names(split: str, n: int, seed: int = 0) -> list[str]:
    """The photo behind each of the ``n`` images of Fashion-M ``split`` ('train' or 'test'), in dataset order."""
    names, stream = _fashion_m_stream(split, seed)
    return [names[k] for k in photo_of_each(n, len(names), stream)]


def accuracy_by_photo(correct, photos) -> dict[str, float]:
    """Mean of ``correct`` (one bool per image) for each photo in ``photos`` (one name per image), in photo order."""
    correct, photos = np.asarray(correct, dtype=bool), np.asarray(photos)
    order = [p for p in (*FASHION_M_TRAIN_PHOTOS, *FASHION_M_TEST_PHOTOS) if (photos == p).any()]
    return {p: float(correct[photos == p].mean()) for p in order}


_FASHION_M: dict[tuple[str, str, int], tuple[Tensor, Tensor]] = {}


def load_fashion_m(split: str, data_dir: str | None = None, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Fashion-M ``split`` ('train' or 'test') as (float32 (N, 3, 28, 28) in [0, 1], int64 labels).

    Built from the Fashion-MNIST split of the same name; cached in memory and on disk
    (``$REPRLAB_CACHE`` or ``~/.cache/reprlab``), keyed by the seed and the source files.
    """
    x, y = load_fashion_mnist(split, data_dir)
    folder = str(locate_fashion_mnist(data_dir))
    key = (folder, split, seed)
    if key in _FASHION_M:
        return _FASHION_M[key]
    tag = hashlib.sha1(f"{folder}|{split}|{seed}|{FASHION_M_VERSION}".encode()).hexdigest()[:12]
    path = cache_dir() / f"fashion-m-{split}-seed{seed}-{tag}.npy"
    arr = None
    if path.is_file():
        try:
            arr = np.load(path, allow_pickle=False)
            if arr.shape != (len(x), 3, 28, 28) or arr.dtype != np.uint8:
                arr = None
        except (OSError, ValueError):
            arr = None  # a broken cache is rebuilt, not trusted
    if arr is None:
        names, stream = _fashion_m_stream(split, seed)
        grey = (x[:, 0] * 255).round().to(torch.uint8).numpy()
        arr = blend_with_photos(grey, [load_photo(p) for p in names], stream)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_with(path, lambda tmp: np.save(tmp, arr))
        except OSError:
            pass  # caching is an optimization; a read-only home still works
    out = (torch.from_numpy(arr).float().div_(255.0), y)
    _FASHION_M[key] = out
    return out


def _describe_fashion_m(data_dir: str | None) -> dict:
    try:
        folder = locate_fashion_mnist(data_dir)
    except DataError as e:
        return {"found": False, "where": None, "sizes": None, "how": f"built from Fashion-MNIST: {e}"}
    if folder is None:
        return {
            "found": False,
            "where": None,
            "sizes": None,
            "how": "built from Fashion-MNIST, which is missing (apt-get install dataset-fashion-mnist)",
        }
    return {
        "found": True,
        "where": f"built from {folder} + scikit-image photos",
        "sizes": "60000 train / 10000 test, 3x28x28, 10 classes",
        "how": None,
    }


@register_dataset("fashion-m", "images", _describe_fashion_m)
def _load_fashion_m(data_dir: str | None = None, val_size: int = 5000, limit: int = 0, seed: int = 0) -> ImageData:
    x, y = load_fashion_m("train", data_dir, seed)
    tr, va = split_train_val(x, y, val_size, limit)
    te = load_fashion_m("test", data_dir, seed)
    return ImageData(
        "fashion-m",
        tr,
        va,
        te,
        FASHION_MNIST_CLASSES,
        "Fashion-MNIST blended with scikit-image photos",
        {"base": "fashion-mnist"},
    )


# ----------------------------------------------------------------------------- two moons
def make_moons_split(split: str, rotate: float = 0.0, noise: float = 0.1) -> tuple[Tensor, Tensor]:
    """Two interleaving half-circles (float32 (N, 2), int64 labels), rotated by ``rotate`` degrees."""
    from sklearn.datasets import make_moons

    seed = {"train": 0, "test": 1}[split] + (10 if rotate else 0)
    x, y = make_moons(MOONS_SIZES[split], noise=noise, random_state=seed)
    centre = np.array([0.5, 0.25])  # the middle of the two moons
    t = np.deg2rad(rotate)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    x = (x - centre) @ rot.T + centre
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))


def _moons(name: str, rotate: float, val_size: int, limit: int) -> ImageData:
    x, y = make_moons_split("train", rotate)
    tr, va = split_train_val(x, y, min(val_size, len(x) * 15 // 100), limit)
    return ImageData(name, tr, va, make_moons_split("test", rotate), ("upper", "lower"), "scikit-learn make_moons")


def _describe_moons(rotate: float):
    return lambda _: {
        "found": True,
        "where": "generated (scikit-learn make_moons)",
        "sizes": f"1000 train / 500 test, 2 features, 2 classes, rotated {rotate:g} deg",
        "how": None,
    }


@register_dataset("moons", "points", _describe_moons(0.0))
def _load_moons(data_dir: str | None = None, val_size: int = 5000, limit: int = 0) -> ImageData:
    return _moons("moons", 0.0, val_size, limit)


@register_dataset("moons-rotated", "points", _describe_moons(MOONS_ANGLE))
def _load_moons_rotated(data_dir: str | None = None, val_size: int = 5000, limit: int = 0) -> ImageData:
    return _moons("moons-rotated", MOONS_ANGLE, val_size, limit)


# ----------------------------------------------------------------------------- pairs
DEFAULT_TARGET = {"fashion-mnist": "fashion-m", "moons": "moons-rotated"}
DEFAULT_SOURCE = {v: k for k, v in DEFAULT_TARGET.items()}


PAIR_SEP = " => "  # between the two paths of a pair of your own (a path may hold ':')


def pair_name(source: str, target: str) -> str:
    """The ``data.name`` of a domain pair: ``SOURCE:TARGET`` for built-in names, ``SOURCE => TARGET`` when
    either is your own data (a path, or a prefixed one such as ``folder:PATH``)."""
    return f"{source}{PAIR_SEP}{target}" if is_own(source) or is_own(target) else f"{source}:{target}"


def is_own(name: str) -> bool:
    """Whether ``name`` names data of your own (a path) rather than a built-in dataset."""
    from . import dataset_names

    return name not in dataset_names()


def resolve_pair(name: str) -> tuple[str, str]:
    """'SOURCE:TARGET', 'SOURCE => TARGET' (your own data), or one name of a known pair (``fashion-mnist``/
    ``fashion-m``, ``moons``/``moons-rotated``)."""
    if PAIR_SEP in name:
        s, t = (p.strip() for p in name.split(PAIR_SEP, 1))
        return s, t
    if ":" in name:
        s, t = (p.strip() for p in name.split(":", 1))
        return s, t
    if name in DEFAULT_TARGET:
        return name, DEFAULT_TARGET[name]
    if name in DEFAULT_SOURCE:
        return DEFAULT_SOURCE[name], name
    raise ConfigError(
        f"data.name={name!r} is not a domain pair; use SOURCE:TARGET (e.g. fashion-mnist:fashion-m) "
        f"or one of: {', '.join(sorted({*DEFAULT_TARGET, *DEFAULT_SOURCE}))}"
    )


def _load_any(name: str, data_dir: str | None, val_size: int, limit: int) -> ImageData:
    entry = get_dataset(name)
    if entry.kind not in ("images", "points"):
        raise ConfigError(f"dataset {name!r} holds {entry.kind}; domain adaptation needs images or points")
    return entry.load(data_dir=data_dir, val_size=val_size, limit=limit)


def _halve(d: ImageData, first: bool, limit: int) -> ImageData:
    n = len(d.train[0]) // 2
    sl = slice(0, n) if first else slice(n, None)
    x, y = d.train[0][sl], d.train[1][sl]
    if limit:
        x, y = x[:limit], y[:limit]
    return ImageData(d.name, (x, y), d.val, d.test, d.classes, d.source, d.info)


def _to_channels(d: ImageData, c: int) -> ImageData:
    rep = lambda t: t.expand(-1, c, -1, -1).contiguous()  # noqa: E731
    return ImageData(
        d.name,
        (rep(d.train[0]), d.train[1]),
        (rep(d.val[0]), d.val[1]),
        (rep(d.test[0]), d.test[1]),
        d.classes,
        d.source,
        d.info,
    )


def load_domain_pair(
    source: str, target: str, data_dir: str | None = None, val_size: int = 5000, limit: int = 0
) -> tuple[ImageData, ImageData]:
    """Source and target, reconciled: same label set, same shape (a 1-channel image is copied to 3).

    When both are built from the same images (Fashion-MNIST and Fashion-M), the source trains
    on the first half of the training images and the target on the second half, so no
    underlying picture appears in both domains.
    """
    if source == target:
        raise ConfigError(f"source and target are both {source!r}; adaptation needs two different domains")
    s = _load_any(source, data_dir, val_size, 0)
    t = _load_any(target, data_dir, val_size, 0)
    if tuple(s.classes) != tuple(t.classes):
        raise DataError(
            f"source {source!r} and target {target!r} have different label sets "
            f"({len(s.classes)} classes: {', '.join(s.classes[:4])}… vs {len(t.classes)}: "
            f"{', '.join(t.classes[:4])}…); "
            "adaptation needs the same classes in both domains"
        )
    ss, ts = s.input_shape, t.input_shape
    if ss != ts and not (len(ss) == 3 and len(ts) == 3 and ss[1:] == ts[1:] and 1 in (ss[0], ts[0])):
        raise DataError(
            f"source {source!r} has inputs of shape {ss} and target {target!r} {ts}; they cannot be reconciled "
            "(only a 1-channel image can be copied to 3 channels)"
        )
    same_base = s.info.get("base", s.name) == t.info.get("base", t.name)
    if same_base:
        s, t = _halve(s, True, limit), _halve(t, False, limit)
    elif limit:
        s = ImageData(s.name, (s.train[0][:limit], s.train[1][:limit]), s.val, s.test, s.classes, s.source, s.info)
        t = ImageData(t.name, (t.train[0][:limit], t.train[1][:limit]), t.val, t.test, t.classes, t.source, t.info)
    if ss != ts:  # copy the 1-channel side to the other's channels, after the cuts, to copy less
        if ss[0] == 1:
            s = _to_channels(s, ts[0])
        else:
            t = _to_channels(t, ss[0])
    return s, t


class _TensorRows:
    """Rows of in-memory tensors by position: ``rows(i) -> {"x", "y"}`` (``y`` left out when None)."""

    def __init__(self, x: Tensor, y: Tensor | None):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def rows(self, i: Tensor) -> Batch:
        return {"x": self.x[i]} if self.y is None else {"x": self.x[i], "y": self.y[i]}


class _PartRows:
    """Rows of one split part of a reader's batch source (an :class:`~.arraybatches.ArrayBatches`), by position
    within the part: what :class:`PairedBatches` draws from for data read from disk."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def rows(self, i: Tensor) -> Batch:
        return self.batches.rows(self.batches.indices[np.asarray(i, dtype=np.int64)])


class PairedBatches:
    """Batches of a source set with a same-sized batch of the target set beside each.

    An epoch is one pass over the source; the target is drawn from its own shuffled order,
    cycled as needed. Both orders depend only on ``(seed, epoch)``, so resume is exact.

    ``source`` and ``target`` are ``(x, y)`` tensors, or row sources (``len`` and ``rows(i)``, e.g. a part of
    your own data read from disk). A target without labels (``y`` None, or rows without ``"y"``) gives batches
    without ``y_t``: then nothing in training can read the target's labels.
    """

    def __init__(self, source, target, batch_size: int, seed: int = 0, shuffle: bool = True):
        self.source = _TensorRows(*source) if isinstance(source, tuple) else source
        self.target = _TensorRows(*target) if isinstance(target, tuple) else target
        if len(self.source) == 0 or len(self.target) == 0:
            raise DataError("domain adaptation needs training data in both domains; raise data.limit or use more data")
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle

    def num_batches(self, world_size: int = 1) -> int:
        m = len(self.source) // world_size if world_size > 1 else len(self.source)
        return -(-m // self.batch_size)

    def _order(self, n: int, seed: int, epoch: int, length: int) -> Tensor:
        if not self.shuffle:
            return torch.arange(length) % n
        g = epoch_generator(seed, epoch)
        reps = -(-length // n)
        return torch.cat([torch.randperm(n, generator=g) for _ in range(reps)])[:length]

    def epoch(self, epoch: int, rank: int = 0, world_size: int = 1, start: int = 0) -> Iterator[Batch]:
        ns = len(self.source)
        order_s = self._order(ns, self.seed, epoch, ns)
        order_t = self._order(len(self.target), self.seed + 7919, epoch, ns)
        if world_size > 1:
            per = ns // world_size
            order_s, order_t = order_s[rank::world_size][:per], order_t[rank::world_size][:per]
        for b in range(start, self.num_batches(world_size)):
            i_s = order_s[b * self.batch_size : (b + 1) * self.batch_size]
            i_t = order_t[b * self.batch_size : (b + 1) * self.batch_size]
            src, tgt = self.source.rows(i_s), self.target.rows(i_t)
            batch = {"x_s": src["x"], "y_s": src["y"], "x_t": tgt["x"]}
            if "y" in tgt:
                batch["y_t"] = tgt["y"]
            batch["i_t"] = i_t
            yield batch


@register_task("domains")
def domain_task(data: DataConfig, trainer: TrainerConfig, saved: dict | None = None) -> TaskData:
    """Source (labelled) + target (unlabelled) training batches; validation on the source's validation split
    (no target label is read to validate, so ``trainer.early_stop`` cannot select on one), test on the target.
    The target's held-out validation images (``extras['target_val']``) are scored once, with the test, to report.

    A pair of your own data (``SOURCE => TARGET`` paths, see :func:`own_domain_task`) validates on the source too,
    and reads the target's labels only in its test. ``saved``: the ``data_source`` a run recorded."""
    s_name, t_name = resolve_pair(data.name)
    if is_own(s_name) or is_own(t_name):
        return own_domain_task(s_name, t_name, data, trainer, saved)
    s, t = load_domain_pair(s_name, t_name, data.data_dir, data.val_size, data.limit)
    train = PairedBatches(s.train, t.train, trainer.batch_size, seed=trainer.seed)
    val = TensorBatches({"x": s.val[0], "y": s.val[1]}, 1024, shuffle=False) if len(s.val[0]) else None
    test = TensorBatches({"x": t.test[0], "y": t.test[1]}, 1024, shuffle=False)
    return TaskData(
        train,
        val,
        test,
        {"input_shape": s.input_shape, "num_classes": s.num_classes, "num_target": len(t.train[0])},
        f"{s_name} -> {t_name}: {len(s.train[0])} labelled source / {len(t.train[0])} unlabelled target train, "
        f"{len(s.val[0])} source val / {len(t.test[0])} target test",
        extras={
            "source_test": TensorBatches({"x": s.test[0], "y": s.test[1]}, 1024, shuffle=False),
            "target_val": TensorBatches({"x": t.val[0], "y": t.val[1]}, 1024, shuffle=False) if len(t.val[0]) else None,
            "pair": (s, t),  # the (source, target) ImageData
        },
    )


# ----------------------------------------------------------------------------- your own pairs
class HeldOutLabels:
    """A target domain's labels, kept away from training: only the target's test source reads them, through
    :meth:`read`, when the final test runs. ``locked`` makes a read an error (the tests use it to show that
    training and validation never read them)."""

    def __init__(self, y: np.ndarray):
        self._y = y
        self.locked = False
        self.reads = 0

    def read(self) -> np.ndarray:
        if self.locked:
            raise RuntimeError("the target's labels were read while they are locked (before the final test)")
        self.reads += 1
        return self._y


class TargetTestBatches:
    """The target's test part with its labels, read from :class:`HeldOutLabels` only when an epoch is asked for."""

    def __init__(self, reader, rows: np.ndarray, labels: HeldOutLabels, batch_size: int = 1024):
        self.reader, self.rows, self.labels, self.batch_size = reader, rows, labels, batch_size

    def __len__(self) -> int:
        return len(self.rows)

    def num_batches(self, world_size: int = 1) -> int:
        m = len(self.rows) // world_size if world_size > 1 else len(self.rows)
        return -(-m // self.batch_size)

    def epoch(self, epoch: int, rank: int = 0, world_size: int = 1, start: int = 0) -> Iterator[Batch]:
        from .arraybatches import ArrayBatches

        last = ("x",) if getattr(self.reader, "channels_last", False) else ()
        arrays = {"x": self.reader.x, "y": self.labels.read()}
        src = ArrayBatches(arrays, self.batch_size, shuffle=False, indices=self.rows, channels_last=last)
        yield from src.epoch(epoch, rank, world_size, start)


def _rows_of(reader, rows: np.ndarray, batch_size: int, labels: bool):
    """A batch source of ``reader``'s rows ``rows``: ``x`` (and ``y`` when ``labels``; else the labels are not
    in it at all). A table's ``x`` is its standardised values."""
    from .arraybatches import ArrayBatches

    last = ("x",) if getattr(reader, "channels_last", False) else ()
    arrays = {"x": reader.x, "y": reader.y} if labels else {"x": reader.x}
    return ArrayBatches(arrays, batch_size, shuffle=False, indices=rows, channels_last=last)


@dataclass
class OwnPair:
    """Two domains of your own, opened and checked: the labelled ``source`` reader, the ``target`` reader, the
    target's rows to train on (unlabelled) and to test on, its labels held out, and both records."""

    source: object
    target: object
    target_train: np.ndarray
    target_test: np.ndarray
    target_labels: HeldOutLabels | None
    record: dict


def _check_own_saved(reader, saved: dict | None, side: str) -> None:
    old = (saved or {}).get("fingerprint")
    if old and reader.fingerprint != old:
        where = getattr(reader, "root", None) or reader.path
        raise DataError(
            f"{where} (the {side}) changed since the run was trained on it (fingerprint {reader.fingerprint} != "
            f"recorded {old}); restore that data, or train a new run"
        )


def peek(spec) -> tuple[tuple[str, ...] | None, tuple[int, ...] | None]:
    """(class names or None, input shape or None) of an image folder or an .npz/.npy ``spec``, read cheaply: the
    folder's listing and its first image's header, the arrays' headers and labels. Nothing is decoded or
    cached, so a pair that cannot adapt is refused before any work (a table gives (None, None): it is cheap to
    open). None where the answer needs the full read."""
    import zipfile

    if spec.kind == "folder":
        from PIL import Image

        from .folders import list_folder, native_channels

        listing = list_folder(spec.path)
        classes = listing.classes if listing.labels is not None else None
        size, channels = spec.options.get("size"), spec.options.get("channels")
        try:
            with Image.open(listing.root / listing.files[0]) as img:
                w, h = img.size
                c = channels or native_channels(img.mode)
        except (OSError, ValueError, SyntaxError):
            return classes, None  # the reader names the file
        return classes, (c, size, size) if size else (c, h, w)
    if spec.kind != "arrays":
        return None, None
    from .arrays import _check_x

    try:
        if spec.path.suffix.lower() == ".npy":
            x = np.load(spec.path, mmap_mode="r", allow_pickle=False)
            shape, dtype, classes = x.shape, x.dtype, None
        else:
            with zipfile.ZipFile(spec.path) as z, z.open("x.npy") as f:
                fmt = np.lib.format
                major, _ = fmt.read_magic(f)
                read = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
                shape, _, dtype = read(f)
            with np.load(spec.path, allow_pickle=False) as z:
                names = set(z.files)
                if "x_test" in names:
                    return None, None  # the reader joins the parts: leave it to it
                classes = tuple(str(v) for v in np.unique(z["y"])) if "y" in names else None
        kind, last = _check_x(np.empty((0, *shape[1:]), dtype), str(spec.path))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, DataError):
        return None, None  # the reader says what is wrong
    s = tuple(int(v) for v in shape[1:])
    if len(s) == 2:
        s = (1, *s)
    return classes, (s[2], s[0], s[1]) if last else s


def _different_classes(source: str, target: str, cs, ct) -> DataError:
    only_s = [c for c in cs if c not in ct][:3]
    only_t = [c for c in ct if c not in cs][:3]
    return DataError(
        f"source {source} and target {target} have different label sets ({len(cs)} vs {len(ct)} classes; only in "
        f"the source: {', '.join(only_s) or '-'}; only in the target: {', '.join(only_t) or '-'}); adaptation "
        "needs the same classes in both domains"
    )


def _different_shapes(source: str, target: str, ss, ts) -> DataError:
    return DataError(
        f"source {source} has inputs of shape {tuple(ss)} and target {target} {tuple(ts)}; "
        "give both the same --data.size and --data.channels (or the same columns)"
    )


def open_own_pair(source: str, target: str, data: DataConfig, saved: dict | None = None) -> OwnPair:
    """Open a source and a target of your own with ``data``'s reader settings (the same ``--data.size``,
    ``--data.channels``, ... for both) and check them: the source needs labels of at least 2 classes; the target's
    labels, if it has any, must name the same classes; both need inputs of one shape. A target table is
    standardised with the source's statistics (the model sees both on the source's scale).

    The target's labels are not used to split it: its test part is drawn at random (or is its ``test/`` folder),
    and its other rows train, unlabelled. The labels go to :class:`HeldOutLabels`, read only by the test."""
    from .spec import open_data, parse_data_spec
    from .splits import make_split

    opts = data.reader_options()
    s_spec, t_spec = parse_data_spec(source, "images", opts), parse_data_spec(target, "images", opts)
    if "builtin" in (s_spec.kind, t_spec.kind):
        raise ConfigError(
            "give --source and --target both as your own data (paths) or both as built-in names; "
            f"got {s_spec.describe()} and {t_spec.describe()}"
        )
    if source == target or (s_spec.path and t_spec.path and s_spec.path.resolve() == t_spec.path.resolve()):
        raise ConfigError(f"source and target are both {source!r}; adaptation needs two different domains")
    (cs, ss), (ct, ts) = peek(s_spec), peek(t_spec)
    if ss is not None and ts is not None and ss != ts:
        raise _different_shapes(source, target, ss, ts)
    if cs is not None and ct is not None and cs != ct:
        raise _different_classes(source, target, cs, ct)
    folder_opt = {"progress": False}
    s = open_data(s_spec, **(folder_opt if s_spec.kind == "folder" else {}))
    s.require_labels(2)
    t_over: dict = dict(folder_opt) if t_spec.kind == "folder" else {}
    if t_spec.kind == "table" and s_spec.kind == "table":
        t_over["stats"] = s.stats
    t = open_data(t_spec, **t_over)
    if tuple(s.input_shape) != tuple(t.input_shape):
        raise _different_shapes(source, target, s.input_shape, t.input_shape)
    if t.y is not None and tuple(t.classes) != tuple(s.classes):
        raise _different_classes(source, target, s.classes, t.classes)
    _check_own_saved(s, (saved or {}).get("source"), "source")
    _check_own_saved(t, (saved or {}).get("target"), "target")
    sp = t.split
    if sp.method != "given":  # the reader stratified by label: draw the target's test part without them
        sp = make_split(len(t), None, sp.test_fraction, sp.val_fraction, sp.seed)
    train_rows = np.sort(np.concatenate([sp.train, sp.val]))
    record = {"kind": "domain-pair", "source": s.record(), "target": t.record()}
    record["target"]["split"] = {**sp.record(), "unit": "row", "labels_used": False}
    labels = None if t.y is None else HeldOutLabels(t.y)
    return OwnPair(s, t, train_rows, sp.test, labels, record)


def own_domain_task(
    source: str, target: str, data: DataConfig, trainer: TrainerConfig, saved: dict | None = None
) -> TaskData:
    """The ``domains`` task of a pair of your own (see :func:`open_own_pair`): training batches of the labelled
    source's training rows beside unlabelled target rows (no ``y_t``); validation on the source's validation
    rows (no target label is read to choose anything); the test on the target's test rows, whose labels are read
    then and only then (None when the target has no labels). ``extras``: ``source_test``, ``source`` (both
    readers' records: what a run keeps in config.json as ``data_source``), ``target_labels`` (the
    :class:`HeldOutLabels`), ``own_pair``."""
    pair = open_own_pair(source, target, data, saved)
    s, t = pair.source, pair.target
    s_train = _rows_of(s, s.split.train[: data.limit or None], trainer.batch_size, labels=True)
    t_rows = pair.target_train[: data.limit or None]
    t_train = _rows_of(t, t_rows, trainer.batch_size, labels=False)
    train = PairedBatches(_PartRows(s_train), _PartRows(t_train), trainer.batch_size, seed=trainer.seed)
    val = s.batches("val", 1024) if len(s.split.val) else None
    test = TargetTestBatches(t, pair.target_test, pair.target_labels) if pair.target_labels is not None else None
    if test is not None and len(pair.target_test) == 0:
        test = None
    labelled = "labelled" if pair.target_labels is not None else "unlabelled"
    summary = (
        f"{source} -> {target}: {len(s_train)} labelled source / {len(t_rows)} unlabelled target train, "
        f"{len(s.split.val)} source val / {len(pair.target_test)} target test ({labelled}; target labels are read "
        "only by the final test)"
    )
    return TaskData(
        train,
        val,
        test,
        {"input_shape": tuple(s.input_shape), "num_classes": s.num_classes, "num_target": len(t_rows)},
        summary,
        extras={
            "source_test": s.batches("test", 1024) if len(s.split.test) else None,
            "source": pair.record,
            "target_labels": pair.target_labels,
            "own_pair": pair,
        },
    )


__all__ = [
    "PAIR_SEP",
    "pair_name",
    "is_own",
    "HeldOutLabels",
    "TargetTestBatches",
    "OwnPair",
    "open_own_pair",
    "own_domain_task",
    "peek",
    "blend_with_photos",
    "photo_of_each",
    "fashion_m_photo_names",
    "accuracy_by_photo",
    "load_fashion_m",
    "load_photo",
    "make_moons_split",
    "resolve_pair",
    "load_domain_pair",
    "PairedBatches",
    "domain_task",
    "brightness_stratified_split",
    "photo_luminance",
    "FASHION_M_PHOTOS",
    "FASHION_M_TRAIN_PHOTOS",
    "FASHION_M_TEST_PHOTOS",
    "MOONS_ANGLE",
]
