"""The real images ``reprlab fd`` compares a generative run's samples with, and the feature classifier for them.

* Fashion-MNIST: its test set, in the features of reprlab's cached Fashion-MNIST classifier
  (:func:`reprlab.metrics.classifier_features.fd_classifier`), as the GAN study measures it;
* any other labelled images (a built-in image dataset, a folder with class sub-folders, an ``.npz`` with ``x``
  and ``y``): the test part, in the features of a classifier trained once on the training part and cached by
  the data's content fingerprint, input shape and classes
  (:func:`~reprlab.metrics.classifier_features.data_classifier`);
* unlabelled images: the test part, for Inception features only (the caller asks for the weights).

A folder is read with the run's own ``size`` and ``channels`` settings, so its images have the run's shape.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
from torch import Tensor

from ..errors import DataError


@dataclass
class Reference:
    """Real images (float32 in [0, 1]): ``train`` and ``test`` (N, C, H, W), their labels (None when unlabelled),
    the class names, and ``classifier(progress)`` -> (FeatureClassifier, info) for labelled data."""

    describe: str
    train: Tensor
    test: Tensor
    labels: tuple[Tensor, Tensor] | None
    classes: tuple[str, ...]
    classifier: Callable[..., Any]


def _tensor_digest(*tensors: Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(str(tuple(t.shape)).encode())
        h.update(np.ascontiguousarray(t.numpy()).tobytes())
    return h.hexdigest()[:16]


def _labelled(describe, train, test, classes, fingerprint) -> Reference:
    from ..metrics.classifier_features import data_classifier

    (x, y), (xt, yt) = train, test

    def classifier(progress: bool = True, **kw):
        return data_classifier(x, y, len(classes), fingerprint, (xt, yt), progress=progress, what=describe, **kw)

    return Reference(describe, x, xt, (y, yt), tuple(classes), classifier)


def _own_part(d, part: str) -> dict[str, Tensor]:
    rows = d.split.part(part)
    last = ("x",) if getattr(d, "channels_last", False) else ()
    from ..data.arraybatches import ArrayBatches

    arrays = {"x": d.x} if d.y is None else {"x": d.x, "y": d.y}
    return ArrayBatches(arrays, max(len(rows), 1), shuffle=False, indices=rows, channels_last=last).rows(rows)


HOW_UNLABELLED = (
    "pass --inception-weights PATH (torch-fidelity's pt_inception-2015-12-05 weights) to score in Inception "
    "features, or give labelled data (class sub-folders, a 'y' array)"
)


def _has_labels(spec) -> bool:
    """Whether an image folder or .npz/.npy has labels, from its listing or its member names (nothing decoded)."""
    if spec.kind == "folder":
        from ..data.folders import list_folder

        return list_folder(spec.path).labels is not None
    if spec.path.suffix.lower() == ".npy":
        return False
    try:
        with np.load(spec.path, allow_pickle=False) as z:
            return "y" in z.files
    except (OSError, ValueError):
        return True  # unreadable: the reader names the problem


def fd_reference(
    data: str, saved: Mapping[str, Any], data_dir: str | None = None, inception: bool = False
) -> Reference:
    """The reference images named by ``data`` (a ``--data`` value) for a run whose config.json is ``saved``;
    DataError (one line) for a table or a lexicon, for data too small to compare with, and for unlabelled data
    unless ``inception`` (Inception features are the only ones that need no labels), before anything is read."""
    from ..data import get_dataset, load_images
    from ..data.spec import OPTIONS, parse_data_spec

    spec = parse_data_spec(data, "images")
    if spec.kind == "builtin":
        if get_dataset(spec.name).kind != "images":
            raise DataError(f"fd compares images; {spec.name!r} holds {get_dataset(spec.name).kind}")
        if spec.name == "fashion-mnist":
            from ..data.images import load_fashion_mnist
            from ..metrics.classifier_features import fd_classifier

            x, y = load_fashion_mnist("train", data_dir)
            xt, yt = load_fashion_mnist("test", data_dir)

            def fashion(progress: bool = True, **_):
                return fd_classifier(data_dir, verbose=progress)

            from ..data.images import FASHION_MNIST_CLASSES

            return Reference("fashion-mnist test set", x, xt, (y, yt), FASHION_MNIST_CLASSES, fashion)
        d = load_images(spec.name, data_dir, 0)
        fp = _tensor_digest(*d.train, *d.test)
        return _labelled(f"{spec.name} test set", d.train, d.test, d.classes, fp)
    if spec.kind not in ("folder", "arrays"):
        raise DataError(f"fd compares images; --data {data} is a {spec.kind}, give an image folder or an .npz/.npy")
    if not inception and not _has_labels(spec):
        raise DataError(f"{spec.path} has no labels, so fd cannot train its feature classifier on it; {HOW_UNLABELLED}")
    run_data = saved.get("data") or {}
    opts = {k: run_data[k] for k in ("size", "channels") if k in OPTIONS[spec.kind] and run_data.get(k) is not None}
    from ..data.spec import open_data

    spec = parse_data_spec(data, "images", opts)
    d = open_data(spec, **({"progress": False} if spec.kind == "folder" else {}))
    if getattr(d, "kind", "images") != "images":
        raise DataError(f"fd compares images; {d.path} holds feature vectors {tuple(d.input_shape)}")
    where = getattr(d, "root", None) or d.path
    train, test = _own_part(d, "train"), _own_part(d, "test")
    if len(test["x"]) < 2:  # no test part (test_fraction 0): compare with every image
        test = _own_part(d, "train")
    if len(test["x"]) < 2:
        raise DataError(f"{where} has fewer than 2 images to compare samples with")
    describe = f"{where} ({'test part' if len(d.split.test) >= 2 else 'all images'})"
    if d.y is None:
        return Reference(describe, train["x"], test["x"], None, (), lambda **_: None)
    d.require_labels(2)
    return _labelled(describe, (train["x"], train["y"]), (test["x"], test["y"]), d.classes, d.fingerprint)


__all__ = ["Reference", "fd_reference", "HOW_UNLABELLED"]
