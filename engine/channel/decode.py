"""The decode probe: a linear classifier on frozen GAP vectors, read in order, permuted, or sorted."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.channel.features import FEATURE_BATCH, LAYERS, Probed, cached_features, check_layer, data_key, gap_features
from engine.data.patches import GeneratedShapes, PatchSource
from engine.probe.evaluate import EVAL_SEED
from engine.probe.train import make_batch

READOUTS = ("ordered", "permuted", "sorted")
PROBE_SEED = 1  # training placements of the decode probe (its test placements use EVAL_SEED)


def cell_features(model: Probed, source: PatchSource | None = None, n: int = 2000, seed: int = PROBE_SEED,
                  split: str = "train", layer: str = "layer4", device: torch.device | None = None, persist: bool = True
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """GAP features (n, C) of ``layer`` for patches placed in random cells, and those cells; cached for all layers."""
    check_layer(layer)
    config = model.config.with_(task="location")
    source = source or GeneratedShapes(config.patch)

    def compute() -> dict[str, torch.Tensor]:
        feats, cells = [], []
        for i, start in enumerate(range(0, n, FEATURE_BATCH)):
            canvases, cell, _ = make_batch(config, source, min(FEATURE_BATCH, n - start), seed + i, split, flip=False)
            feats.append(gap_features(model, canvases, device))
            cells.append(cell)
        return {"cells": torch.cat(cells), **{name: torch.cat([f[name] for f in feats]) for name in LAYERS}}

    out = cached_features("cells", data_key(model, source, n, seed, split), compute, persist)
    return out[layer], out["cells"]


@dataclass
class LinearProbe:
    """Multinomial logistic regression on standardised inputs."""

    weight: torch.Tensor
    bias: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / self.std) @ self.weight.T + self.bias


def fit_linear_probe(x: torch.Tensor, y: torch.Tensor, classes: int, l2: float = 1e-3, iterations: int = 200) -> LinearProbe:
    """Full-batch L-BFGS fit of a linear classifier (deterministic; seconds for thousands of rows)."""
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    xs = (x - mean) / std
    weight = torch.zeros(classes, x.shape[1], requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(xs @ weight.T + bias, y) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return LinearProbe(weight.detach(), bias.detach(), mean, std)


def permute_channels(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Every row's channels in its own random order (one permutation per sample)."""
    return x.gather(1, torch.rand(x.shape, generator=generator).argsort(1))


def readout_view(readout: str, generator: torch.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """The transform a read-out applies to GAP vectors before the linear probe."""
    views = {"ordered": lambda x: x, "permuted": lambda x: permute_channels(x, generator),
             "sorted": lambda x: x.sort(1, descending=True).values}
    if readout not in views:
        raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
    return views[readout]


@dataclass
class DecodeResult:
    """Cell accuracy (0-100) of a linear probe, overall and per cell, against chance."""

    readout: str
    layer: str
    accuracy: float
    per_cell: torch.Tensor
    chance: float
    train: int
    test: int

    def as_dict(self) -> dict:
        return {"readout": self.readout, "layer": self.layer, "accuracy": self.accuracy, "chance": self.chance,
                "per_cell": self.per_cell.tolist(), "train": self.train, "test": self.test}


def decode_cells(model: Probed, source: PatchSource | None = None, train: int = 2000, test: int = 1000,
                 layer: str = "layer4", readouts: tuple[str, ...] = READOUTS, seed: int = PROBE_SEED,
                 device: torch.device | None = None, persist: bool = True) -> list[DecodeResult]:
    """Train a linear probe per read-out on frozen GAP vectors to predict the cell; test on fresh placements."""
    grid = model.config.grid
    cells = grid * grid
    xtr, ytr = cell_features(model, source, train, seed, "train", layer, device, persist)
    xte, yte = cell_features(model, source, test, EVAL_SEED, "test", layer, device, persist)
    results = []
    for readout in readouts:
        view = readout_view(readout, torch.Generator().manual_seed(seed))
        probe = fit_linear_probe(view(xtr), ytr, cells)
        hit = (probe.logits(view(xte)).argmax(1) == yte).float()
        per_cell = 100 * torch.bincount(yte, hit, cells) / torch.bincount(yte, minlength=cells).clamp_min(1)
        results.append(DecodeResult(readout, layer, 100 * hit.mean().item(), per_cell.view(grid, grid),
                                    100 / cells, train, test))
    return results
