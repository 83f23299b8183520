"""The channel code map: the same images in every cell; each channel's preferred cell and how much the cell explains."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.channel.features import LAYERS, Probed, cached_features, check_layer, data_key, gap_features
from engine.data.grid import place_on_grid
from engine.data.patches import GeneratedShapes, PatchSource
from engine.probe.evaluate import EVAL_SEED


@dataclass
class ChannelMap:
    """Mean GAP response of every channel with the images in each cell, and what it implies."""

    response: torch.Tensor  # (cells, C)
    position_share: torch.Tensor  # (C,): share of the variance over images x cells explained by the cell
    grid: int
    layer: str
    images: int

    @property
    def preferred(self) -> torch.Tensor:
        """The cell (row-major) where each channel responds most."""
        return self.response.argmax(0)

    @property
    def selectivity(self) -> torch.Tensor:
        """(peak - mean elsewhere) / (peak + mean elsewhere): 0 = same everywhere, 1 = only its cell."""
        peak = self.response.max(0).values
        elsewhere = (self.response.sum(0) - peak) / (self.response.shape[0] - 1)
        return ((peak - elsewhere) / (peak + elsewhere).clamp_min(1e-12)).clamp(0, 1)

    @property
    def order(self) -> torch.Tensor:
        """Channels sorted by preferred cell, most selective first within a cell (a permutation)."""
        return torch.argsort(self.preferred.float() * 2 + (1 - self.selectivity), stable=True)

    def maps(self) -> torch.Tensor:
        """Each channel's response over the grid (C, grid, grid)."""
        return self.response.T.reshape(-1, self.grid, self.grid)

    def zscores(self) -> torch.Tensor:
        """The response standardised per channel across cells (cells, C), for display."""
        mean, std = self.response.mean(0), self.response.std(0).clamp_min(1e-12)
        return (self.response - mean) / std

    def top_per_cell(self) -> list[int]:
        """For each cell, the most selective channel that prefers it (-1 when none does)."""
        best = []
        for cell in range(self.grid**2):
            mask = self.preferred == cell
            best.append(int(torch.where(mask, self.selectivity, -1.0).argmax()) if mask.any() else -1)
        return best

    def preferred_counts(self) -> torch.Tensor:
        """How many channels prefer each cell, as a (grid, grid) map."""
        return torch.bincount(self.preferred, minlength=self.grid**2).view(self.grid, self.grid)

    def as_dict(self) -> dict:
        return {"grid": self.grid, "layer": self.layer, "images": self.images, "response": self.response.tolist(),
                "preferred": self.preferred.tolist(), "selectivity": self.selectivity.tolist(),
                "position_share": self.position_share.tolist(), "order": self.order.tolist()}


def channel_map(model: Probed, source: PatchSource | None = None, images: int = 64, layer: str = "layer4",
                seed: int = EVAL_SEED, device: torch.device | None = None, persist: bool = True) -> ChannelMap:
    """Place the same ``images`` test patches in every cell and average their GAP vectors per cell.

    ``persist=False`` keeps the features out of the disk cache (uploads: nothing derived from one outlives it).
    """
    check_layer(layer)
    config = model.config
    source = source or GeneratedShapes(config.patch)

    def compute() -> dict[str, torch.Tensor]:
        patches, _ = source.sample(images, seed, "test")
        per_cell = [gap_features(model, place_on_grid(patches, torch.full((images,), cell), config.grid, config.background),
                                 device) for cell in range(config.grid**2)]
        return {name: torch.stack([f[name] for f in per_cell]) for name in LAYERS}  # (cells, images, C) per layer

    feats = cached_features("map", data_key(model, source, images, seed), compute, persist)[layer]
    response = feats.mean(1)
    total = feats.reshape(-1, feats.shape[-1]).var(0, unbiased=False)
    share = (response.var(0, unbiased=False) / total.clamp_min(1e-12)).clamp(0, 1)
    return ChannelMap(response, share, config.grid, layer, images)
