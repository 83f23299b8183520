"""The channel code map: the same images in every cell; each channel's preferred cell and how much the cell explains."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from engine.channel.features import LAYERS, Probed, cached_features, check_layer, data_key, features_ready, gap_features
from engine.core.cache import CACHE
from engine.core.storage import ASSETS, load_torch
from engine.data.grid import place_on_grid
from engine.data.patches import GeneratedShapes, PatchSource
from engine.probe.evaluate import EVAL_SEED


@dataclass
class ChannelMap:
    """Mean GAP response of every channel with the images in each cell, and what it implies (computed once per map:
    a page reads them per channel)."""

    response: torch.Tensor  # (cells, C)
    position_share: torch.Tensor  # (C,): share of the variance over images x cells explained by the cell
    grid: int
    layer: str
    images: int

    @functools.cached_property
    def preferred(self) -> torch.Tensor:
        """The cell (row-major) where each channel responds most."""
        return self.response.argmax(0)

    @functools.cached_property
    def selectivity(self) -> torch.Tensor:
        """(peak - mean elsewhere) / (peak + mean elsewhere): 0 = same everywhere, 1 = only its cell."""
        peak = self.response.max(0).values
        elsewhere = (self.response.sum(0) - peak) / (self.response.shape[0] - 1)
        return ((peak - elsewhere) / (peak + elsewhere).clamp_min(1e-12)).clamp(0, 1)

    @functools.cached_property
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


SHIPPED_MAPS = ASSETS / "channel_code" / "maps.pt"  # the shipped networks' maps (scripts/ship_channel_maps.py)
SHIPPED_IMAGES = 32  # images per cell of the shipped maps: the Channel code page's default


def channel_map(model: Probed, source: PatchSource | None = None, images: int = 64, layer: str = "layer4",
                seed: int = EVAL_SEED, device: torch.device | None = None, persist: bool = True, compute: bool = True
                ) -> ChannelMap | None:
    """Place the same ``images`` test patches in every cell and average their GAP vectors per cell.

    A map shipped in ``SHIPPED_MAPS`` under the same weights, data and settings is read instead of computed, and so
    are features already cached. ``persist=False`` keeps the features out of the disk cache (uploads: nothing derived
    from one outlives it); ``compute=False`` answers ``None`` instead of running the network.
    """
    check_layer(layer)
    config = model.config
    source = source or GeneratedShapes(config.patch)
    key = data_key(model, source, images, seed)
    shipped = shipped_maps().get(key, {}).get(layer)
    if shipped is not None:
        return ChannelMap(shipped["response"], shipped["position_share"], config.grid, layer, images)
    if not compute and not features_ready("map", key, persist):
        return None
    feats = cached_features("map", key, lambda: map_features(model, source, images, seed, device), persist)
    response, share = map_statistics(feats[layer])
    return ChannelMap(response, share, config.grid, layer, images)


def map_features(model: Probed, source: PatchSource, images: int, seed: int = EVAL_SEED,
                 device: torch.device | None = None) -> dict[str, torch.Tensor]:
    """GAP features (cells, images, C) of every layer: the same ``images`` test patches placed in each cell."""
    config = model.config
    patches, _ = source.sample(images, seed, "test")
    per_cell = [gap_features(model, place_on_grid(patches, torch.full((images,), cell), config.grid, config.background),
                             device) for cell in range(config.grid**2)]
    return {name: torch.stack([f[name] for f in per_cell]) for name in LAYERS}


def map_statistics(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (cells, images, C) reduced to the mean response per cell (cells, C) and the position share (C,)."""
    response = feats.mean(1)
    total = feats.reshape(-1, feats.shape[-1]).var(0, unbiased=False)
    return response, (response.var(0, unbiased=False) / total.clamp_min(1e-12)).clamp(0, 1)


def shipped_maps() -> dict[str, dict[str, dict[str, torch.Tensor]]]:
    """The shipped maps by :func:`data_key`, then layer: ``response`` and ``position_share`` (empty when absent)."""
    return CACHE.get_or_compute("channel/shipped-maps",
                                lambda: load_torch(SHIPPED_MAPS)["maps"] if SHIPPED_MAPS.is_file() else {})


def ship_maps(models: dict[str, Probed], images: int, seed: int = EVAL_SEED) -> dict:
    """What ``SHIPPED_MAPS`` holds for ``models`` (each set to its grid) on the generated shapes: every layer's map."""
    maps = {}
    for model in models.values():
        source = GeneratedShapes(model.config.patch)
        feats = map_features(model, source, images, seed)
        maps[data_key(model, source, images, seed)] = {
            layer: dict(zip(("response", "position_share"), map_statistics(feats[layer]))) for layer in LAYERS}
    return {"images": images, "seed": seed, "nets": list(models), "maps": maps}
