"""Backbones for transfer learning: a small CNN, torchvision's ResNet-18, and any timm model.

A backbone maps images (B, C, H, W) to features (B, num_features) and lists its blocks in
order, first to last, so a freeze policy can unfreeze "the last k"; ``forward_blocks(x)`` gives
each block's output (B, C_i, H_i, W_i). Its state-dict keys are the upstream library's own:
torchvision's for ResNet-18 (``conv1.weight``, ``layer1.0.bn1.running_mean`` ...) and timm's for
``timm:NAME``, so a torchvision or timm state dict loads into it key for key.

Sizes (the data's channels and size pick the build; see :func:`check_image_size`):

* ``small_cnn`` runs on any image of at least 8x8 pixels (28, 32, 64, ...);
* ``resnet18`` uses torchvision's ImageNet stem (7x7 stride-2 conv + 3x3 stride-2 max-pool) for
  images of 64 pixels and more, so an ImageNet ResNet-18 file loads completely, and a 3x3 stride-1
  stem without max-pool below that (the ImageNet stem would shrink 28x28 to 7x7 before layer1);
  ``model.stem`` overrides the choice;
* ``timm:NAME`` is built for the data's channels (``in_chans``) and, for models with a fixed input size
  (ViTs), its size (``img_size``); a size it cannot run on is refused with the sizes it runs on.
"""

from __future__ import annotations

import difflib
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError

BUILTIN = ("small_cnn", "resnet18")
STEMS = ("auto", "small", "imagenet")
TIMM_PREFIX = "timm:"
MIN_SIDE = 8  # the built-in backbones' smallest image side: two max-pools still leave a 2x2 map
IMAGENET_STEM_MIN = 64  # resnet18 with stem=auto: the ImageNet stem from this many pixels on
_TRY_SIZES = (28, 32, 64, 96, 128, 224)  # square sizes named when a timm model refuses the data's size


class SmallCNN(nn.Module):
    """Three conv blocks (conv 3x3, BatchNorm, ReLU; max-pool after the first two), then global average pooling."""

    def __init__(self, in_channels: int = 1, width: int = 32):
        super().__init__()
        chans = [in_channels, width, 2 * width, 4 * width]
        self.layers = nn.ModuleList()
        for i in range(3):
            block = [
                nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False),
                nn.BatchNorm2d(chans[i + 1]),
                nn.ReLU(inplace=True),
            ]
            if i < 2:
                block.append(nn.MaxPool2d(2))  # 28 -> 14 -> 7
            self.layers.append(nn.Sequential(*block))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = chans[-1]

    def blocks(self) -> list[nn.Module]:
        return list(self.layers)

    def forward_blocks(self, x: Tensor) -> list[Tensor]:
        """The output of every block, first to last: (B, w, H/2, W/2), (B, 2w, H/4, W/4), (B, 4w, H/4, W/4)."""
        outs = []
        for layer in self.layers:
            x = layer(x)  # (B, C_i, H_i, W_i)
            outs.append(x)
        return outs

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)  # (B, C_i, H_i, W_i)
        return self.pool(x).flatten(1)  # (B, 4 * width)


def resnet_stem(input_shape: tuple[int, ...], stem: str = "auto") -> str:
    """``"imagenet"`` or ``"small"``: the stem ResNet-18 gets for images of ``input_shape`` (C, H, W)."""
    if stem != "auto":
        return stem
    return "imagenet" if min(input_shape[1:]) >= IMAGENET_STEM_MIN else "small"


class ResNet18Backbone(nn.Module):
    """torchvision's ResNet-18 without its fc layer, with the ImageNet stem or a small one (see the module doc).

    ``stem="imagenet"``: conv1 7x7 stride 2 + max-pool 3x3 stride 2, exactly torchvision's, so every tensor of an
    ImageNet ResNet-18 file loads (for 3 channels). ``stem="small"``: conv1 3x3 stride 1 and no max-pool.
    The state-dict keys are the same in both (the max-pool has no tensors); only conv1's shape differs.
    Blocks, in order: the stem (conv1 + bn1), layer1, layer2, layer3, layer4.
    """

    def __init__(self, in_channels: int = 1, stem: str = "small"):
        super().__init__()
        from torchvision.models.resnet import BasicBlock, ResNet

        net = ResNet(BasicBlock, [2, 2, 2, 2])
        if stem == "imagenet":
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        else:
            net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"):
            setattr(self, name, getattr(net, name))
        self.stem = stem
        self.num_features = 512

    def blocks(self) -> list[nn.Module]:
        return [nn.ModuleList([self.conv1, self.bn1]), self.layer1, self.layer2, self.layer3, self.layer4]

    def _stem(self, x: Tensor) -> Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H, W) small; (B, 64, H/4, W/4) imagenet

    def forward_blocks(self, x: Tensor) -> list[Tensor]:
        """The output of every block, first to last: stem, layer1 .. layer4."""
        outs = [self._stem(x)]
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            outs.append(layer(outs[-1]))
        return outs

    def forward(self, x: Tensor) -> Tensor:
        x = self._stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, H', W')
        return self.avgpool(x).flatten(1)  # (B, 512)


# ---------------------------------------------------------------------------------------------- timm
def timm_name(backbone: str) -> str | None:
    """``"resnet50"`` for ``"timm:resnet50"``; None for a built-in backbone."""
    return backbone[len(TIMM_PREFIX) :] if backbone.startswith(TIMM_PREFIX) else None


def _import_timm():
    try:
        import timm
    except ImportError:
        raise ConfigError("model.backbone=timm:NAME needs the timm package: pip install 'reprlab[timm]'") from None
    return timm


def _check_timm_name(timm, name: str) -> None:
    """A ConfigError naming close timm models when ``name`` is not one."""
    if timm.is_model(name):
        return
    names = timm.list_models()
    close = timm.list_models(f"*{name}*")[:5] or difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    hint = (
        f"close names: {', '.join(close)}"
        if close
        else "list them with python -c 'import timm; print(timm.list_models())'"
    )
    raise ConfigError(f"timm has no model {name!r} (model.backbone=timm:{name}); {hint}")


def _create_timm(timm, name: str, input_shape: tuple[int, ...]) -> nn.Module:
    """timm's ``name``, random init, no classifier, for (C, H, W) images; ``img_size`` for fixed-size models."""
    c, h, w = input_shape
    kw: dict[str, Any] = dict(pretrained=False, num_classes=0, in_chans=c)
    cfg = timm.models.get_pretrained_cfg(name) or {}
    fixed = getattr(cfg, "fixed_input_size", None) if not isinstance(cfg, dict) else cfg.get("fixed_input_size")
    if fixed:
        kw["img_size"] = (h, w)
    try:
        return timm.create_model(name, **kw)
    except (AssertionError, RuntimeError, ValueError, TypeError) as e:
        raise _SizeError(str(e)) from None


class _SizeError(Exception):
    pass


def _probe(net: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Run ``net`` once (eval mode, no gradients) on zeros of ``input_shape``; the width of its pooled features."""
    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net(torch.zeros(1, *input_shape))  # (1, F)
    except (AssertionError, RuntimeError, ValueError, IndexError) as e:
        raise _SizeError(str(e)) from None
    finally:
        net.train(was)
    if out.dim() != 2:
        raise _SizeError(f"it gives features of shape {tuple(out.shape)}, not (B, F)")
    return int(out.shape[1])


def _sizes_that_work(timm, name: str, channels: int) -> list[int]:
    ok = []
    for s in _TRY_SIZES:
        try:
            _probe(_create_timm(timm, name, (channels, s, s)), (channels, s, s))
            ok.append(s)
        except _SizeError:
            continue
    return ok


def _timm_groups(net: nn.Module) -> list[nn.Module]:
    """The model cut into blocks at its ``feature_info`` taps (timm's stages), first to last.

    Modules before the first tap join the first block, modules after the last tap (pooling, a head
    conv or norm) join the last one, and the model's own parameters (a ViT's cls token and position
    embedding) join the first. A model without ``feature_info`` gives one block per top-level child
    that has parameters.
    """
    taps = [f["module"] for f in getattr(net, "feature_info", None) or [] if isinstance(f, dict) and "module" in f]

    def expand(mod: nn.Module, prefix: str):
        for name, child in mod.named_children():
            full = prefix + name
            if any(t.startswith(full + ".") for t in taps):
                yield from expand(child, full + ".")
            else:
                yield full, child

    seq = list(expand(net, ""))
    groups: list[list[nn.Module]] = []
    if taps and all(t in dict(seq) for t in taps):
        current: list[nn.Module] = []
        for name, mod in seq:
            current.append(mod)
            if name in taps:
                groups.append(current)
                current = []
        groups[-1].extend(current)
    else:
        groups = [[m] for _, m in seq]
    own = list(net.parameters(recurse=False))
    blocks = []
    carry: list[nn.Module] = []
    for g in groups:  # a block without parameters (a lone activation tap) joins the next one
        carry.extend(g)
        if any(True for m in carry for _ in m.parameters()):
            blocks.append(carry)
            carry = []
    if carry and blocks:
        blocks[-1].extend(carry)
    if not blocks:
        blocks = [[net]]
    out = [nn.ModuleList(b) for b in blocks]
    if own:
        out[0].append(nn.ParameterList(own))
    return out


class TimmBackbone(nn.Module):
    """Any timm model (``timm.create_model(NAME, pretrained=False, num_classes=0, in_chans=C)``) as a backbone.

    Features are the model's pooled pre-logits (``forward`` with no classifier). Blocks follow the model's
    ``feature_info`` stages (see :func:`_timm_groups`); ``forward_blocks`` uses timm's ``forward_intermediates``.
    The state-dict keys are timm's own (``conv1.weight``, not ``net.conv1.weight``), so a timm weights file
    loads key for key, and a reprlab backbone state loads into ``timm.create_model(NAME, num_classes=0)``.
    """

    def __init__(self, name: str, input_shape: tuple[int, ...]):
        super().__init__()
        timm = _import_timm()
        _check_timm_name(timm, name)
        shape = "x".join(map(str, input_shape))
        try:
            net = _create_timm(timm, name, input_shape)
            self.num_features = _probe(net, input_shape)
        except _SizeError as e:
            works = _sizes_that_work(timm, name, input_shape[0])
            said = f"it runs on {', '.join(f'{s}x{s}' for s in works)}" if works else "none of the usual sizes work"
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(
                f"timm model {name} cannot run on {shape} images ({first[:120]}); {said}; resize the data"
            ) from None
        self.net = net
        self.timm_name = name
        head = (getattr(net, "pretrained_cfg", None) or {}).get("classifier")
        heads = head if isinstance(head, (list, tuple)) else [head] if head else []
        # the file's classifier keys (fc.*, classifier.*, head.fc.*): never loaded into the backbone
        self.head_prefixes = tuple(h + "." for h in heads)
        self._groups = _timm_groups(net)
        self.register_state_dict_post_hook(_drop_net_prefix)
        self.register_load_state_dict_pre_hook(_add_net_prefix)

    def blocks(self) -> list[nn.Module]:
        return list(self._groups)

    def forward_blocks(self, x: Tensor) -> list[Tensor]:
        """Each block's output (B, C_i, H_i, W_i): timm's per-stage features (``forward_intermediates``)."""
        fn = getattr(self.net, "forward_intermediates", None)
        outs = None
        if fn is not None:
            try:
                outs = fn(x, intermediates_only=True)
            except (NotImplementedError, TypeError, AssertionError):
                outs = None
        if outs is None or len(outs) != len(self._groups) or any(o.dim() != 4 for o in outs):
            raise ConfigError(
                f"timm model {self.timm_name} gives no per-stage image features to take spatial features from; "
                "use --features pooled"
            )
        return list(outs)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, F): pooled pre-logits


def _drop_net_prefix(module, state_dict, prefix, local_metadata) -> None:
    inner = prefix + "net."
    for k in [k for k in state_dict if k.startswith(inner)]:  # keeps their order (all at the end)
        state_dict[prefix + k[len(inner) :]] = state_dict.pop(k)


def _add_net_prefix(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors) -> None:
    inner = prefix + "net."
    for k in [k for k in state_dict if k.startswith(prefix) and not k.startswith(inner)]:
        state_dict[inner + k[len(prefix) :]] = state_dict.pop(k)


# ---------------------------------------------------------------------------------------------- building
def check_image_size(backbone: str, input_shape: tuple[int, ...], stem: str = "auto") -> None:
    """A ConfigError naming the sizes that work when a built-in backbone cannot take (C, H, W) images."""
    c, h, w = input_shape
    shape = f"{c}x{h}x{w}"
    if c < 1:
        raise ConfigError(f"model.input_shape {shape} has no channels")
    if backbone == "resnet18" and c not in (1, 3):
        raise ConfigError(f"the resnet18 backbone takes 1 or 3 channels, got {c} ({shape})")
    low = MIN_SIDE if not (backbone == "resnet18" and resnet_stem(input_shape, stem) == "imagenet") else 32
    if min(h, w) < low:
        what = f"the {backbone} backbone" + (" with the ImageNet stem" if low > MIN_SIDE else "")
        raise ConfigError(
            f"{what} takes images of at least {low}x{low} pixels (e.g. 28, 32, 64, 224), got {shape}; "
            "resize the data (--data.size=S)"
        )


def make_backbone(name: str, input_shape: tuple[int, ...], width: int = 32, stem: str = "auto") -> nn.Module:
    """The backbone ``name`` (small_cnn, resnet18 or timm:NAME) for images of ``input_shape`` (C, H, W)."""
    tname = timm_name(name)
    if tname is not None:
        return TimmBackbone(tname, tuple(input_shape))
    check_image_size(name, tuple(input_shape), stem)
    if name == "small_cnn":
        return SmallCNN(input_shape[0], width)
    return ResNet18Backbone(input_shape[0], resnet_stem(tuple(input_shape), stem))


BACKBONE_BLOCKS = {"small_cnn": 3, "resnet18": 5}  # timm models: counted when built
