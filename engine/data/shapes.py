"""An embedded 10-class image set: procedurally drawn shapes, deterministic by seed, unlimited.

Each image is one shape (its class) drawn with random colour, size, position jitter, rotation
and texture over a random textured background. Everything is computed for a whole batch at once
on a coordinate grid, so generation runs at tens of thousands of images per second on a CPU.
"""
from __future__ import annotations

import math

import torch

CLASSES = ("disk", "ring", "square", "frame", "triangle", "plus", "star", "crescent", "bars", "ellipse")
_SPLIT_SALT = {"train": 0, "val": 1_000_003, "test": 2_000_029}


def _regular_polygon(u: torch.Tensor, v: torch.Tensor, sides: int) -> torch.Tensor:
    """Inside a regular polygon of circumradius 1 with a vertex pointing up."""
    angles = torch.arange(sides, dtype=u.dtype) * (2 * math.pi / sides) + math.pi / 2 + math.pi / sides
    reach = u[..., None] * torch.cos(angles) - v[..., None] * torch.sin(angles)
    return reach.amax(-1) < math.cos(math.pi / sides)


def _shape_mask(label: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Boolean mask of class ``label`` in shape coordinates (unit size, centred)."""
    r = torch.sqrt(u * u + v * v)
    box = torch.maximum(u.abs(), v.abs())
    if label == 0:
        return r < 0.95
    if label == 1:
        return (r < 1.0) & (r > 0.58)
    if label == 2:
        return box < 0.78
    if label == 3:
        return (box < 0.85) & (box > 0.5)
    if label == 4:
        return _regular_polygon(u, v + 0.2, 3)
    if label == 5:
        return ((u.abs() < 0.3) & (v.abs() < 1.0)) | ((v.abs() < 0.3) & (u.abs() < 1.0))
    if label == 6:
        theta = torch.atan2(v, u) + math.pi / 2
        return r < 0.42 + 0.6 * torch.cos(2.5 * theta).abs() ** 3
    if label == 7:
        return (r < 1.0) & (torch.sqrt((u - 0.5) ** 2 + v * v) > 0.78)
    if label == 8:
        return (u.abs() > 0.22) & (u.abs() < 0.72) & (v.abs() < 0.95)
    return (u / 1.0) ** 2 + (v / 0.42) ** 2 < 1.0


def texture(n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """Per-image texture in [-1, 1]: a random mix of stripes, a smooth blob field and noise."""
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    freq = torch.rand(n, 1, 1, generator=g) * 0.9 + 0.2
    angle = torch.rand(n, 1, 1, generator=g) * math.pi
    phase = torch.rand(n, 1, 1, generator=g) * 2 * math.pi
    stripes = torch.sin(freq * (xs * torch.cos(angle) + ys * torch.sin(angle)) + phase)
    blobs = torch.nn.functional.interpolate(torch.rand(n, 1, 4, 4, generator=g) * 2 - 1, size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    noise = torch.rand(n, size, size, generator=g) * 2 - 1
    w = torch.rand(n, 3, 1, 1, generator=g)
    w = w / w.sum(1, keepdim=True)
    return w[:, 0] * stripes + w[:, 1] * blobs + w[:, 2] * noise


def shape_coordinates(n: int, size: int, g: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Each image's random placement of its shape, drawn from ``g``: pixel coordinates about the image centre
    minus the position jitter (x, y: (n, 1, size) and (n, size, 1)), shape coordinates u, v (n, size, size; unit
    radius, rotated by up to 25 degrees) and the radius in pixels (n,)."""
    half = (size - 1) / 2
    scale = (torch.rand(n, generator=g) * 0.3 + 0.5) * half  # shape radius: 50-80% of half the image
    jitter = (torch.rand(n, 2, generator=g) * 2 - 1) * size * 0.12
    rot = (torch.rand(n, generator=g) * 2 - 1) * math.radians(25)
    coords = torch.arange(size, dtype=torch.float32) - half
    y = coords.view(1, size, 1) - jitter[:, 1].view(n, 1, 1)
    x = coords.view(1, 1, size) - jitter[:, 0].view(n, 1, 1)
    cos, sin = torch.cos(rot).view(n, 1, 1), torch.sin(rot).view(n, 1, 1)
    u = (x * cos + y * sin) / scale.view(n, 1, 1)
    v = (-x * sin + y * cos) / scale.view(n, 1, 1)
    return x, y, u, v, scale


def generate_shapes(n: int, seed: int, size: int = 32, split: str = "train", clutter: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images (n, 3, size, size) in [0, 1] and their labels, a pure function of (seed, split, clutter).

    ``clutter`` in [0, 1] makes the set harder, CIFAR-like rather than near-perfectly separable: the
    shape's colour moves toward the background, a smaller distractor shape of a random class is drawn
    behind it, and pixel noise is added. 0 gives exactly the original images.
    """
    if not 0.0 <= clutter <= 1.0:
        raise ValueError(f"clutter must be in [0, 1], got {clutter}")
    g = torch.Generator().manual_seed(seed + _SPLIT_SALT[split])
    labels = torch.randint(len(CLASSES), (n,), generator=g)
    half = (size - 1) / 2
    x, y, u, v, _ = shape_coordinates(n, size, g)
    mask = shape_masks(labels, u, v)

    fg = torch.rand(n, 3, 1, 1, generator=g)
    bg = torch.rand(n, 3, 1, 1, generator=g)
    too_close = (fg - bg).abs().sum(1, keepdim=True) < 0.6  # keep the shape visible
    fg = torch.where(too_close, 1 - bg, fg)
    fg_tex = texture(n, size, g).unsqueeze(1) * (torch.rand(n, 1, 1, 1, generator=g) * 0.25)
    bg_tex = texture(n, size, g).unsqueeze(1) * (torch.rand(n, 1, 1, 1, generator=g) * 0.3)
    light = torch.rand(n, 1, 1, 1, generator=g) * 0.5 + 0.75
    if clutter == 0:
        img = torch.where(mask.unsqueeze(1), fg + fg_tex, bg + bg_tex) * light
        return img.clamp_(0, 1), labels
    fg = bg + (fg - bg) * (1 - 0.6 * clutter)
    other = torch.randint(len(CLASSES), (n,), generator=g)
    offset = (torch.rand(n, 2, 1, 1, generator=g) * 2 - 1) * size * 0.35
    small = (torch.rand(n, 1, 1, generator=g) * 0.15 + 0.3) * half
    du, dv = torch.broadcast_tensors((x - offset[:, 0]) / small, (y - offset[:, 1]) / small)
    distractor = shape_masks(other, du, dv) & ~mask
    other_colour = bg + (torch.rand(n, 3, 1, 1, generator=g) - bg) * clutter
    img = torch.where(mask.unsqueeze(1), fg + fg_tex, torch.where(distractor.unsqueeze(1), other_colour, bg + bg_tex)) * light
    img = img + torch.randn(img.shape, generator=g) * (0.2 * clutter)
    return img.clamp_(0, 1), labels


def shape_masks(labels: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Boolean masks (n, h, w): each image's class shape in its own shape coordinates."""
    mask = torch.zeros(u.shape, dtype=torch.bool)
    for label in range(len(CLASSES)):
        idx = (labels == label).nonzero().flatten()
        if len(idx):
            mask[idx] = _shape_mask(label, u[idx], v[idx])
    return mask


def shape_example(label: int, variant: int = 0, size: int = 32) -> torch.Tensor:
    """One image (3, size, size) of class ``label``; ``variant`` picks among its random draws."""
    images, labels = generate_shapes(100 * (variant + 1), seed=label * 7919 + variant, size=size, split="test")
    return images[(labels == label).nonzero().flatten()[variant]]
