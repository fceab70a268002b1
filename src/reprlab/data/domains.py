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


def resolve_pair(name: str) -> tuple[str, str]:
    """'SOURCE:TARGET', or one name of a known pair (``fashion-mnist``/``fashion-m``, ``moons``/``moons-rotated``)."""
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


class PairedBatches:
    """Batches of a source set with a same-sized batch of the target set beside each.

    An epoch is one pass over the source; the target is drawn from its own shuffled order,
    cycled as needed. Both orders depend only on ``(seed, epoch)``, so resume is exact.
    """

    def __init__(
        self,
        source: tuple[Tensor, Tensor],
        target: tuple[Tensor, Tensor],
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
    ):
        self.xs, self.ys = source
        self.xt, self.yt = target
        if len(self.xs) == 0 or len(self.xt) == 0:
            raise DataError("domain adaptation needs training data in both domains; raise data.limit or use more data")
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle

    def num_batches(self, world_size: int = 1) -> int:
        m = len(self.xs) // world_size if world_size > 1 else len(self.xs)
        return -(-m // self.batch_size)

    def _order(self, n: int, seed: int, epoch: int, length: int) -> Tensor:
        if not self.shuffle:
            return torch.arange(length) % n
        g = epoch_generator(seed, epoch)
        reps = -(-length // n)
        return torch.cat([torch.randperm(n, generator=g) for _ in range(reps)])[:length]

    def epoch(self, epoch: int, rank: int = 0, world_size: int = 1, start: int = 0) -> Iterator[Batch]:
        ns = len(self.xs)
        order_s = self._order(ns, self.seed, epoch, ns)
        order_t = self._order(len(self.xt), self.seed + 7919, epoch, ns)
        if world_size > 1:
            per = ns // world_size
            order_s, order_t = order_s[rank::world_size][:per], order_t[rank::world_size][:per]
        for b in range(start, self.num_batches(world_size)):
            i_s = order_s[b * self.batch_size : (b + 1) * self.batch_size]
            i_t = order_t[b * self.batch_size : (b + 1) * self.batch_size]
            yield {"x_s": self.xs[i_s], "y_s": self.ys[i_s], "x_t": self.xt[i_t], "y_t": self.yt[i_t], "i_t": i_t}


@register_task("domains")
def domain_task(data: DataConfig, trainer: TrainerConfig) -> TaskData:
    """Source (labelled) + target (unlabelled) training batches; validation and test on the target."""
    s_name, t_name = resolve_pair(data.name)
    s, t = load_domain_pair(s_name, t_name, data.data_dir, data.val_size, data.limit)
    train = PairedBatches(s.train, t.train, trainer.batch_size, seed=trainer.seed)
    val = TensorBatches({"x": t.val[0], "y": t.val[1]}, 1024, shuffle=False) if len(t.val[0]) else None
    test = TensorBatches({"x": t.test[0], "y": t.test[1]}, 1024, shuffle=False)
    return TaskData(
        train,
        val,
        test,
        {"input_shape": s.input_shape, "num_classes": s.num_classes, "num_target": len(t.train[0])},
        f"{s_name} -> {t_name}: {len(s.train[0])} labelled source / {len(t.train[0])} unlabelled target train, "
        f"{len(t.val[0])} target val / {len(t.test[0])} target test",
        extras={
            "source_test": TensorBatches({"x": s.test[0], "y": s.test[1]}, 1024, shuffle=False),
            "pair": (s, t),  # the (source, target) ImageData
        },
    )


__all__ = [
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
