"""Pre-trained backbone weights: torchvision-format state dicts from a local file (or torchvision's own download).

A *torchvision-format* state dict names backbone tensors as torchvision does (``conv1.weight``,
``layer1.0.bn1.running_var``, ...) and the classification head as ``fc.weight`` / ``fc.bias``.
:func:`load_backbone_weights` checks every key and shape against the model and reports what was
loaded, skipped (shape mismatch), re-initialized (missing from the file) and ignored (unknown).
Files are read without unpickling arbitrary objects: safetensors, or ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..errors import CheckpointError

HEAD_PREFIX = "fc."
# the URL torchvision's ResNet18_Weights.IMAGENET1K_V1 downloads from, for users on an offline machine
IMAGENET_RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"


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
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a file that is not a tensor archive
        raise CheckpointError(
            f"{p} is not a state dict torch can read safely ({e.__class__.__name__}); "
            "save it with torch.save(model.state_dict(), PATH) or as .safetensors"
        ) from None
    return _unwrap(obj, str(p))


def download_imagenet_resnet18() -> dict[str, Tensor]:
    """torchvision's ImageNet ResNet-18 weights (needs internet, or torchvision's cache)."""
    from torchvision.models import ResNet18_Weights

    import contextlib
    import io

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # torch.hub's "Downloading ..." line; errors are ours to report
            return ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
    except Exception as e:  # URLError, OSError, RuntimeError for a partial download ...
        raise CheckpointError(
            f"cannot download torchvision's ImageNet ResNet-18 weights ({e.__class__.__name__}); on a machine with "
            f"internet fetch {IMAGENET_RESNET18_URL} and pass --weights PATH"
        ) from None


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


def load_backbone_weights(model, state: dict[str, Tensor], strict: bool = True, where: str = "weights") -> LoadReport:
    """Copy a torchvision-format ``state`` into ``model.backbone``; the head (``fc.*``) is never loaded.

    ``strict``: any missing, unknown or mis-shaped backbone key is an error. Otherwise the matching
    tensors load and the report lists the rest. No matching key at all is always an error.
    """
    own = model.backbone.state_dict()
    rep = LoadReport()
    body = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIX)}
    for k, v in body.items():
        if k not in own:
            rep.ignored.append(k)
        elif tuple(v.shape) != tuple(own[k].shape):
            rep.skipped.append(f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}")
        else:
            rep.loaded.append(k)
    rep.reinitialized = [k for k in own if k not in body]
    if not rep.loaded:
        raise CheckpointError(
            f"{where} has no tensors that match the {model.config.backbone} backbone by name and shape "
            f"(file keys look like {sorted(state)[:2]}, the backbone's like {list(own)[:2]}); is it the right file and --backbone?"
        )
    if strict and (rep.skipped or rep.reinitialized or rep.ignored):
        raise CheckpointError(
            f"{where} does not match the {model.config.backbone} backbone: {rep.summary()}; "
            "pass --strict false to load the matching part and re-initialize the rest"
        )
    own.update({k: body[k] for k in rep.loaded})
    model.backbone.load_state_dict(own, strict=True)
    rep.head = f"head re-initialized for {model.config.num_classes} classes" + (
        f" (the file's head {tuple(state[HEAD_PREFIX + 'weight'].shape)} is not used)"
        if HEAD_PREFIX + "weight" in state
        else ""
    )
    return rep
