"""Shifted views of an image: pad to a larger canvas, then crop at chosen or random offsets.

Images here are normalised, so padding with 0 fills with the dataset mean colour (the same
convention as the grid canvases). Random crop with padding ``p`` = pad by ``2p`` in total, then a
crop at an offset in [0, 2p] per axis, as torchvision's ``RandomCrop(size, padding=p)`` does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_canvas(images: torch.Tensor, total: int) -> torch.Tensor:
    """(n, c, s, s) -> (n, c, s + total, s + total): ``total // 2`` before, the rest after, filled with 0."""
    lo = total // 2
    return F.pad(images, (lo, total - lo, lo, total - lo)) if total else images


def crop_at(canvas: torch.Tensor, row: int, col: int, size: int) -> torch.Tensor:
    """The same (row, col) window of every canvas in the batch."""
    return canvas[:, :, row:row + size, col:col + size]


def random_crops(canvas: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """One independently drawn ``size`` x ``size`` window per canvas (offsets uniform over all valid ones)."""
    n, c, h, w = canvas.shape
    rows = torch.randint(h - size + 1, (n, 1), generator=generator) + torch.arange(size)
    cols = torch.randint(w - size + 1, (n, 1), generator=generator) + torch.arange(size)
    batch = torch.arange(n).view(n, 1, 1)
    return canvas.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()
