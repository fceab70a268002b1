"""Backbones for transfer learning: a small CNN, and torchvision's ResNet-18 adapted to 28x28 input.

A backbone maps images (B, C, H, W) to features (B, num_features) and lists its blocks in
order, first to last, so a freeze policy can unfreeze "the last k". Their state-dict keys
follow torchvision's naming (``conv1.weight``, ``layer1.0.bn1.running_mean`` ...), so a
torchvision ResNet-18 state dict loads into :class:`ResNet18Backbone` key for key.
"""

from __future__ import annotations

from torch import Tensor, nn


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
        """The output of every block, first to last: (B, width, 14, 14), (B, 2 width, 7, 7), (B, 4 width, 7, 7)."""
        outs = []
        for layer in self.layers:
            x = layer(x)  # (B, C_i, H_i, W_i)
            outs.append(x)
        return outs

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)  # (B, C_i, H_i, W_i)
        return self.pool(x).flatten(1)  # (B, 4 * width)


class ResNet18Backbone(nn.Module):
    """torchvision's ResNet-18 with a 3x3 stride-1 stem and no max-pool (for 28x28 images); fc removed.

    Blocks, in order: the stem (conv1 + bn1), layer1, layer2, layer3, layer4.
    """

    def __init__(self, in_channels: int = 1):
        super().__init__()
        from torchvision.models.resnet import BasicBlock, ResNet

        net = ResNet(BasicBlock, [2, 2, 2, 2])
        # the ImageNet stem (7x7 stride 2 + max-pool) would shrink 28x28 to 7x7 before layer1
        net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        for name in ("conv1", "bn1", "relu", "layer1", "layer2", "layer3", "layer4", "avgpool"):
            setattr(self, name, getattr(net, name))
        self.num_features = 512

    def blocks(self) -> list[nn.Module]:
        return [nn.ModuleList([self.conv1, self.bn1]), self.layer1, self.layer2, self.layer3, self.layer4]

    def forward_blocks(self, x: Tensor) -> list[Tensor]:
        """The output of every block, first to last: stem, layer1 .. layer4."""
        outs = [self.relu(self.bn1(self.conv1(x)))]  # (B, 64, H, W)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            outs.append(layer(outs[-1]))
        return outs

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # (B, 64, H, W)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, H/8, W/8)
        return self.avgpool(x).flatten(1)  # (B, 512)


BACKBONE_BLOCKS = {"small_cnn": 3, "resnet18": 5}


def make_backbone(name: str, in_channels: int, width: int = 32) -> nn.Module:
    if name == "small_cnn":
        return SmallCNN(in_channels, width)
    return ResNet18Backbone(in_channels)
