"""BlurPool (Zhang 2019, "Making Convolutional Networks Shift-Invariant Again").

A fixed binomial low-pass filter applied before every subsampling: a strided conv becomes
conv(stride 1) -> blur -> subsample, a strided max-pool becomes max(stride 1) -> blur -> subsample.
Output shapes are unchanged, so an anti-aliased copy is a drop-in replacement.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

PAD_MODES = ("reflect", "replicate", "circular", "zeros")


def binomial_filter(size: int) -> torch.Tensor:
    """The normalised 2-D binomial kernel (size x size): [1], [1 1], [1 2 1], [1 3 3 1], ..."""
    if not 1 <= size <= 7:
        raise ValueError(f"blur filter size must be between 1 and 7, got {size}")
    row = torch.tensor([math.comb(size - 1, i) for i in range(size)], dtype=torch.float64)
    kernel = row[:, None] * row[None, :]
    return (kernel / kernel.sum()).float()


class BlurPool(nn.Module):
    """Depthwise binomial blur, then subsampling by ``stride``: ceil(H / stride) outputs, like a padded strided conv."""

    def __init__(self, filter_size: int = 3, stride: int = 2, pad_mode: str = "reflect") -> None:
        super().__init__()
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        self.filter_size, self.stride, self.pad_mode = filter_size, stride, pad_mode
        lo = (filter_size - 1) // 2
        self.pads = (lo, filter_size - 1 - lo, lo, filter_size - 1 - lo)
        self.register_buffer("kernel", binomial_filter(filter_size)[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.filter_size == 1:
            return x[:, :, ::self.stride, ::self.stride]
        x = F.pad(x, self.pads, mode="constant" if self.pad_mode == "zeros" else self.pad_mode)
        channels = x.shape[1]
        return F.conv2d(x, self.kernel.to(x.dtype).expand(channels, 1, -1, -1), stride=self.stride, groups=channels)

    def extra_repr(self) -> str:
        return f"filter_size={self.filter_size}, stride={self.stride}, pad_mode={self.pad_mode!r}"


def _square(v: int | tuple[int, ...]) -> int:
    """A square stride as one int (BlurPool subsamples both axes alike)."""
    if isinstance(v, int):
        return v
    if len(set(v)) != 1:
        raise ValueError(f"only square strides can be anti-aliased, got {v}")
    return v[0]


def _antialiased(module: nn.Module, filter_size: int, pad_mode: str) -> nn.Module | None:
    """The anti-aliased replacement for one strided conv or max-pool; ``None`` when it does not subsample."""
    if isinstance(module, nn.Conv2d) and _square(module.stride) > 1:
        dense = copy.deepcopy(module)
        dense.stride = (1, 1)
        return nn.Sequential(dense, BlurPool(filter_size, _square(module.stride), pad_mode))
    if isinstance(module, nn.MaxPool2d) and _square(module.stride) > 1:
        dense = nn.MaxPool2d(module.kernel_size, 1, module.padding, module.dilation, ceil_mode=module.ceil_mode)
        return nn.Sequential(dense, BlurPool(filter_size, _square(module.stride), pad_mode))
    return None


def antialias(model: nn.Module, filter_size: int = 3, pad_mode: str = "reflect") -> nn.Module:
    """An anti-aliased deep copy of ``model`` (weights kept): every strided conv / max-pool gets a BlurPool."""
    model = copy.deepcopy(model)

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            replacement = _antialiased(child, filter_size, pad_mode)
            if replacement is None:
                swap(child)
            else:
                setattr(parent, name, replacement)

    swap(model)
    return model


def count_blurpools(model: nn.Module) -> int:
    """How many BlurPool layers a model holds (0 for a plain network)."""
    return sum(isinstance(m, BlurPool) for m in model.modules())
