"""AugShift (paper Sec. 4.1, Eq. 1): two shifted crops of each image through the shared encoder.

L = CE(y1) + CE(y2) + lambda * MSE(z1, z2), with z the GAP latents that precede the logits, so
the network is pushed to drop the position information it would otherwise keep in z.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from engine.shift.crops import pad_canvas, random_crops


def two_crops(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Two independent random crops (with padding ``pad``) of each image, stacked as (2n, c, s, s)."""
    canvas = pad_canvas(images, 2 * pad)
    size = images.shape[-1]
    return torch.cat([random_crops(canvas, size, generator), random_crops(canvas, size, generator)])


def latent_mse(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """MSE between the latents of the two crops (0 exactly when they coincide)."""
    return F.mse_loss(z1.float(), z2.float())


def augshift_loss(lam: float) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """A ``fit`` loss for stacked crop pairs (x = [crops1; crops2], y = [labels; labels]): Eq. 1 and #correct."""
    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = model.latent(x)
        logits = model.head(z).float()
        z1, z2 = z.chunk(2)
        ce1, ce2 = F.cross_entropy(logits, y, reduction="none").chunk(2)
        loss = ce1.mean() + ce2.mean() + lam * latent_mse(z1, z2)
        return loss, (logits.argmax(1) == y).sum()

    return loss_fn
