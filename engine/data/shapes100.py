"""An embedded 100-class image set in the spirit of CIFAR-100: shape x fill pattern x colour scheme.

Class = one of the 10 shapes of :mod:`engine.data.shapes` (drawn by the same code), filled with one of
5 patterns (plain, horizontal stripes, vertical stripes, checks, dots) in one of 2 colour schemes (warm:
red to yellow, cool: cyan to blue). No single cue names a class: the colour scheme halves the classes,
the pattern needs local texture features at 3-5 px periods, the shape needs the global form. Within a
class everything else varies: the hue, saturation and brightness inside the scheme, the pattern's period
and phase, size, position jitter, rotation (up to 25 degrees, so stripes stay horizontal or vertical),
and a textured low-saturation background of any hue. Labels: ``shape * 10 + pattern * 2 + scheme``.

Deterministic by (seed, split) and vectorised over the batch: tens of thousands of images per second.
A horizontal flip keeps every class (stripes keep their direction, shapes keep their name), so the
standard flip augmentation is safe.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.data.shapes import CLASSES as SHAPES
from engine.data.shapes import shape_coordinates, shape_masks, texture

PATTERNS = ("plain", "hstripes", "vstripes", "checks", "dots")
SCHEMES = ("warm", "cool")
# hue ranges (fractions of the colour wheel) of the two schemes; a gap of ~0.3 of the wheel between them
SCHEME_HUES = {"warm": (-0.05, 0.15), "cool": (0.45, 0.70)}
CLASSES = tuple(f"{scheme} {pattern} {shape}" for shape in SHAPES for pattern in PATTERNS for scheme in SCHEMES)
_SPLIT_SALT = {"train": 0, "val": 1_000_003, "test": 2_000_029}
_SET_SALT = 100_000_007  # so seed s of this set never draws the same stream as seed s of the 10-class shapes


def class_parts(label: int | torch.Tensor) -> tuple:
    """(shape, pattern, scheme) indices of a label (ints or tensors alike)."""
    return label // 10, (label // 2) % len(PATTERNS), label % 2


def hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """HSV (any shape, hue in fractions of the wheel, wrapped) -> RGB stacked on a new dim 1."""
    h = h % 1.0
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], 1)
    return v.unsqueeze(1) - (v * s).unsqueeze(1) * (torch.minimum(k, 4 - k).clamp(0, 1))


def _patterns(pattern: torch.Tensor, px: torch.Tensor, py: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Per image, where its fill pattern takes the second colour (n, h, w); px, py: rotated pixel coordinates."""
    n = len(pattern)
    period = (torch.rand(n, 1, 1, generator=g) * 1.6 + 3.4)  # 3.4-5 px
    phase = torch.rand(n, 2, 1, 1, generator=g) * period.unsqueeze(1)
    a = (px + phase[:, 0]) / period  # in periods
    b = (py + phase[:, 1]) / period
    hstripes = (b % 1.0) < 0.5
    vstripes = (a % 1.0) < 0.5
    checks = hstripes ^ vstripes
    dots = ((a % 1.0) - 0.5) ** 2 + ((b % 1.0) - 0.5) ** 2 < 0.3 ** 2
    choice = torch.stack([torch.zeros_like(hstripes), hstripes, vstripes, checks, dots], 1)  # (n, 5, h, w)
    return choice[torch.arange(n), pattern]


def generate_shapes100(n: int, seed: int, size: int = 32, split: str = "train",
                       labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images (n, 3, size, size) in [0, 1] and labels 0-99, a pure function of (seed, split, labels).

    ``labels`` fixes the classes to draw (e.g. a balanced training pool); by default they are uniform.
    """
    g = torch.Generator().manual_seed(seed + _SET_SALT + _SPLIT_SALT[split])
    drawn = torch.randint(len(CLASSES), (n,), generator=g)
    labels = drawn if labels is None else labels.long()
    if labels.shape != (n,) or (labels < 0).any() or (labels >= len(CLASSES)).any():
        raise ValueError(f"labels must be {n} class indices in 0..{len(CLASSES) - 1}")
    shape, pattern, scheme = class_parts(labels)
    x, y, u, v, scale = shape_coordinates(n, size, g)
    mask = shape_masks(shape, u, v)
    r = scale.view(n, 1, 1)
    second = _patterns(pattern, u * r, v * r, g)  # the pattern lives on the shape: it rotates with it

    lo = torch.tensor([SCHEME_HUES[s][0] for s in SCHEMES])[scheme]
    hi = torch.tensor([SCHEME_HUES[s][1] for s in SCHEMES])[scheme]
    hue = lo + (hi - lo) * torch.rand(n, generator=g)
    sat = torch.rand(n, generator=g) * 0.35 + 0.6
    val = torch.rand(n, generator=g) * 0.35 + 0.65
    fg = hsv_to_rgb(hue, sat, val).view(n, 3, 1, 1)
    fg2 = fg * (torch.rand(n, 1, 1, 1, generator=g) * 0.2 + 0.3)  # a dark shade of the same hue

    bg_hue = torch.rand(n, generator=g)
    bg_sat = torch.rand(n, generator=g) * 0.3
    bg_val = torch.rand(n, generator=g) * 0.8 + 0.1
    bg = hsv_to_rgb(bg_hue, bg_sat, bg_val).view(n, 3, 1, 1)
    bg_tex = texture(n, size, g).unsqueeze(1) * (torch.rand(n, 1, 1, 1, generator=g) * 0.2)
    fg_tex = texture(n, size, g).unsqueeze(1) * 0.06
    light = torch.rand(n, 1, 1, 1, generator=g) * 0.3 + 0.85

    inside = torch.where(second.unsqueeze(1), fg2, fg) + fg_tex
    img = torch.where(mask.unsqueeze(1), inside, bg + bg_tex) * light
    return img.clamp_(0, 1), labels


def balanced_labels(n: int, seed: int) -> torch.Tensor:
    """``n`` labels with every class ``n // 100`` or one more times, in a seeded random order."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + _SET_SALT))
    return (torch.arange(n) % len(CLASSES))[order]


@dataclass(frozen=True)
class GeneratedShapes100:
    """The embedded 100-class set as a patch source (fresh images per (seed, split))."""

    patch: int = 32
    name: str = "generated shapes-100"
    classes: tuple[str, ...] = CLASSES
    key: str = "shapes100"

    def sample(self, n: int, seed: int, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        return generate_shapes100(n, seed, self.patch, split)

    def pool(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed training set of ``n`` images with balanced classes (like CIFAR-100's 500 per class)."""
        return generate_shapes100(n, seed, self.patch, "train", balanced_labels(n, seed))
