"""The authors' ResNet-18 layout: 7x7 stride-2 stem, no max-pool, BasicBlocks [2, 2, 2, 2].

Total stride 16 (a 96 px canvas gives 6x6 features). ``width`` scales the channel counts
(1.0 = 64/128/256/512 as in the paper) so that CPU defaults can be narrower. Built from
torchvision's own ``BasicBlock``.
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_MODE_ALIASES = {"zero": "zeros"}


def canonical_padding(mode: str) -> str:
    """Accept the paper's names ("zero") as well as torch's ("zeros")."""
    mode = _MODE_ALIASES.get(mode, mode)
    if mode not in PADDING_MODES:
        raise ValueError(f"padding must be one of zero/{'/'.join(PADDING_MODES[1:])}, got {mode!r}")
    return mode


def set_padding_mode(module: nn.Module, mode: str) -> nn.Module:
    """Set ``padding_mode`` on every padded conv of ``module`` (in place, at build time)."""
    mode = canonical_padding(mode)
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d) and any(p > 0 for p in conv.padding):
            conv.padding_mode = mode
    return module


class PaperResNet18(nn.Module):
    """Feature extractor: image (n, 3, H, W) -> latent (n, C, H/16, W/16), C = 512 * width."""

    def __init__(self, width: float = 1.0, padding: str = "zero") -> None:
        super().__init__()
        widths = [max(8, round(c * width)) for c in (64, 128, 256, 512)]
        self.widths = widths
        self.out_channels = widths[-1]
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        layers, in_ch = [], widths[0]
        for i, ch in enumerate(widths):
            stride = 1 if i == 0 else 2
            down = None if stride == 1 and in_ch == ch else nn.Sequential(conv1x1(in_ch, ch, stride), nn.BatchNorm2d(ch))
            layers.append(nn.Sequential(BasicBlock(in_ch, ch, stride, down), BasicBlock(ch, ch)))
            in_ch = ch
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        set_padding_mode(self, padding)

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of the stem and of each of the four stages (for probing earlier layers)."""
        outs = [self.stem(x)]
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            outs.append(layer(outs[-1]))
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
