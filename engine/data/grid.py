"""Grid canvases: one patch pasted into one cell of an n x n canvas, label = cell index (row-major).

As in the authors' code the canvas is zeros in *normalised* space, so the background equals the
dataset mean colour; ``background="black"`` uses true black instead.
"""
from __future__ import annotations

import torch

from engine.data.normalization import CIFAR_MEAN as MEAN
from engine.data.normalization import CIFAR_STD as STD

BACKGROUNDS = ("mean", "black")


def normalize(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] images -> the normalised space the networks see."""
    return (images - MEAN.to(images.device)) / STD.to(images.device)


def denormalize(images: torch.Tensor) -> torch.Tensor:
    """Normalised images -> [0, 1] for display."""
    return (images * STD.to(images.device) + MEAN.to(images.device)).clamp(0, 1)


def place_on_grid(patches: torch.Tensor, cells: torch.Tensor, grid: int, background: str = "mean") -> torch.Tensor:
    """Paste patch i (n, 3, P, P; values in [0, 1]) into cell ``cells[i]`` of a grid x grid canvas.

    Returns normalised canvases (n, 3, grid*P, grid*P). Vectorised: one indexed assignment.
    """
    if not 2 <= grid <= 9:
        raise ValueError(f"grid must be between 2 and 9, got {grid}")
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {BACKGROUNDS}, got {background!r}")
    n, c, p, _ = patches.shape
    fill = 0.0 if background == "mean" else normalize(torch.zeros(1, 3, 1, 1)).view(1, 3, 1, 1, 1, 1)
    canvas = torch.zeros(n, c, grid, p, grid, p, dtype=patches.dtype, device=patches.device) + fill
    cells_view = canvas.permute(0, 2, 4, 1, 3, 5)  # (n, row, col, c, P, P), a view of canvas
    cells = cells.to(patches.device)
    cells_view[torch.arange(n, device=patches.device), cells // grid, cells % grid] = normalize(patches)
    return canvas.view(n, c, grid * p, grid * p)


def random_cells(n: int, grid: int, generator: torch.Generator) -> torch.Tensor:
    """Cells drawn uniformly at random (the paper's placement)."""
    return torch.randint(grid * grid, (n,), generator=generator)


def hflip_random(patches: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each patch horizontally with probability 1/2 (the authors' training augmentation)."""
    flip = torch.rand(len(patches), generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), patches.flip(-1), patches)
