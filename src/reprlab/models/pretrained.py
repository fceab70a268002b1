"""Pre-trained backbone weights: torchvision- or timm-format state dicts from a local file (or torch hub's cached copy).

A *torchvision-format* state dict names backbone tensors as torchvision does (``conv1.weight``,
``layer1.0.bn1.running_var``, ...) and the classification head as ``fc.weight`` / ``fc.bias``; a timm
file (``timm:NAME`` backbones) uses timm's names, its head being the model's ``pretrained_cfg["classifier"]``.
:func:`load_backbone_weights` checks every key and shape against the model, refuses a file that matches
fewer than 90% of the backbone's tensors, and reports what was loaded, skipped (shape mismatch),
re-initialized (missing from the file) and ignored (unknown).
Files are read without unpickling arbitrary objects: safetensors, or ``torch.load(weights_only=True)``;
a file from the torch hub cache must also match the sha256 prefix in its name before it is read.
"""

from __future__ import annotations

import hashlib
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..errors import CheckpointError, ConfigError

HEAD_PREFIX = "fc."
MIN_MATCH = 0.9  # the share of the backbone's tensors a weights file must match (by name and shape) to load
_COUNTER = "num_batches_tracked"  # BatchNorm's step counter: not a weight, absent from older torchvision files
# the URL torchvision's ResNet18_Weights.IMAGENET1K_V1 downloads from, for users on an offline machine
IMAGENET_RESNET18_FILE = "resnet18-f37072fd.pth"
IMAGENET_RESNET18_URL = "https://download.pytorch.org/models/" + IMAGENET_RESNET18_FILE
_HUB_HASH = re.compile(r"-([a-f0-9]{8,})\.")  # torch.hub's HASH_REGEX: NAME-SHA256PREFIX.EXT


def torchvision_state_dict(model) -> dict[str, Tensor]:
    """The classifier's weights in torchvision format: backbone keys as they are, the head as ``fc.*``."""
    out = {k: v.detach().clone() for k, v in model.backbone.state_dict().items()}
    out.update({HEAD_PREFIX + k: v.detach().clone() for k, v in model.head.state_dict().items()})
    return out


def _unwrap(obj, where: str) -> dict[str, Tensor]:
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):  # common checkpoint wrappers
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(
            f"{where} is not a state dict (a mapping of parameter names to tensors); it holds a {type(obj).__name__}"
        )
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(f"{where} is not a state dict: entry {bad[0]!r} is not a named tensor")
    # a reprlab classifier's own keys (backbone.*, head.*) are accepted too
    if any(k.startswith("backbone.") for k in obj) and all(
        k.startswith(("backbone.", "head.", "feature_")) for k in obj
    ):
        obj = {
            (k[len("backbone.") :] if k.startswith("backbone.") else HEAD_PREFIX + k[len("head.") :]): v
            for k, v in obj.items()
            if not k.startswith("feature_")
        }
    return dict(obj)


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """A state dict from a ``.safetensors`` file or a ``torch.save`` file (read with ``weights_only=True``)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"weights file {p} does not exist")
    if p.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return _unwrap(load_file(str(p)), str(p))
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{p} is not a readable safetensors file ({str(e).splitlines()[0]})") from None
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses anyway
            warnings.simplefilter("ignore")
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a file that is not a tensor archive
        raise CheckpointError(
            f"{p} is not a state dict torch can read safely ({e.__class__.__name__}); "
            "save it with torch.save(model.state_dict(), PATH) or as .safetensors"
        ) from None
    return _unwrap(obj, str(p))


def hub_hash_prefix(path: str | Path) -> str | None:
    """The sha256 prefix a torch hub file names itself by (``resnet18-f37072fd.pth``: ``f37072fd``), or None."""
    m = _HUB_HASH.search(Path(path).name)
    return m.group(1) if m else None


def verify_hub_file(path: str | Path) -> Path:
    """``path`` if its sha256 starts with the hash prefix in its name (torchvision's convention); else a
    CheckpointError. A file that does not match is not torchvision's: it is never opened as weights."""
    p = Path(path)
    want = hub_hash_prefix(p)
    if want is None:
        raise CheckpointError(
            f"{p} has no hash in its name (NAME-HASH.pth), so it cannot be checked; pass --weights PATH"
        )
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if not h.hexdigest().startswith(want):
        raise CheckpointError(
            f"{p} is not torchvision's file: its sha256 starts {h.hexdigest()[: len(want)]}, its name says {want}; "
            f"delete it, fetch {IMAGENET_RESNET18_URL} again and pass --weights PATH"
        )
    return p


def imagenet_resnet18_file() -> Path:
    """Where torch hub keeps torchvision's ImageNet ResNet-18 weights (``$TORCH_HOME/hub/checkpoints``)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_RESNET18_FILE


def imagenet_resnet18_state_dict() -> dict[str, Tensor]:
    """torchvision's ImageNet ResNet-18 weights, from the torch hub cache only (nothing is downloaded).

    The file must hash to the prefix in its name, and is then read with ``weights_only=True``: a file
    planted in the cache is refused before it is opened, and no pickled code in it can run."""
    p = imagenet_resnet18_file()
    if not p.is_file():
        raise CheckpointError(
            f"--weights imagenet reads torchvision's ImageNet ResNet-18 from the torch hub cache and {p} is not there "
            f"(nothing is downloaded); fetch {IMAGENET_RESNET18_URL} and pass --weights PATH"
        )
    return read_state_dict(verify_hub_file(p))


@dataclass
class LoadReport:
    """What :func:`load_backbone_weights` did, key by key."""

    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "key: file shape vs model shape"
    reinitialized: list[str] = field(default_factory=list)  # model keys absent from the file
    ignored: list[str] = field(default_factory=list)  # file keys the backbone does not have
    head: str = ""

    def summary(self) -> str:
        def few(keys: list[str]) -> str:
            return ", ".join(keys[:3]) + (f", ... (+{len(keys) - 3})" if len(keys) > 3 else "")

        parts = [f"loaded {len(self.loaded)} backbone tensors"]
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)} with other shapes ({few(self.skipped)})")
        if self.reinitialized:
            parts.append(f"re-initialized {len(self.reinitialized)} missing from the file ({few(self.reinitialized)})")
        if self.ignored:
            parts.append(f"ignored {len(self.ignored)} unknown keys ({few(self.ignored)})")
        if self.head:
            parts.append(self.head)
        return "; ".join(parts)


def load_backbone_weights(
    model, state: dict[str, Tensor], strict: bool = True, where: str = "weights", min_match: float = MIN_MATCH
) -> LoadReport:
    """Copy a torchvision- or timm-format ``state`` into ``model.backbone``; the head (``fc.*``, or the timm
    model's classifier keys) is never loaded.

    A file that matches (by name and shape) fewer than ``min_match`` of the backbone's tensors is refused
    with the counts that matched, were missing and were unexpected: it is another architecture, and loading
    its few matching tensors would leave a mostly random backbone that claims to be pre-trained. BatchNorm's
    ``num_batches_tracked`` counters are not weights: a file without them (torchvision's ImageNet files) is
    not missing anything. ``strict``: on top of that, any missing, unknown or mis-shaped backbone key is an
    error. Otherwise the matching tensors load and the report lists the rest.
    """
    if not 0 < min_match <= 1:
        raise ConfigError(f"--weights-min-match must be a fraction in (0, 1], got {min_match}")
    own = model.backbone.state_dict()
    heads = (HEAD_PREFIX, *getattr(model.backbone, "head_prefixes", ()))
    rep = LoadReport()
    body = {k: v for k, v in state.items() if not k.startswith(heads)}
    for k, v in body.items():
        if k not in own:
            rep.ignored.append(k)
        elif tuple(v.shape) != tuple(own[k].shape):
            rep.skipped.append(f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}")
        else:
            rep.loaded.append(k)
    rep.reinitialized = [k for k in own if k not in body and not k.endswith(_COUNTER)]
    name = model.config.backbone
    if not rep.loaded:
        raise CheckpointError(
            f"{where} has no tensors that match the {name} backbone by name and shape "
            f"(file keys look like {sorted(state)[:2]}, the backbone's like {list(own)[:2]}); "
            "is it the right file and --backbone?"
        )
    wanted = [k for k in own if k in body or not k.endswith(_COUNTER)]
    share = len(rep.loaded) / len(wanted)
    if share < min_match:
        lower = math.floor(share * 100) / 100
        raise CheckpointError(
            f"{where} matches only {len(rep.loaded)} of the {len(wanted)} tensors of the {name} backbone by name and "
            f"shape ({share:.0%}, below {min_match:.0%}): {len(rep.loaded)} matched, {len(rep.reinitialized)} missing "
            f"from the file, {len(rep.ignored)} unexpected in the file, {len(rep.skipped)} with other shapes; "
            f"is it the right file and --backbone? (--weights-min-match {lower:g} loads it anyway)"
        )
    if strict and (rep.skipped or rep.reinitialized or rep.ignored):
        raise CheckpointError(
            f"{where} does not match the {name} backbone: {rep.summary()}; "
            "pass --strict false to load the matching part and re-initialize the rest"
        )
    own.update({k: body[k] for k in rep.loaded})
    model.backbone.load_state_dict(own, strict=True)
    head_w = next((state[p + "weight"] for p in heads if p + "weight" in state), None)
    rep.head = f"head re-initialized for {model.config.num_classes} classes" + (
        f" (the file's head {tuple(head_w.shape)} is not used)" if head_w is not None else ""
    )
    return rep
