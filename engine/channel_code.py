"""Where position lives in the GAP vector (paper Sec. 3 and its supplementary question).

- Channel code map: the same images placed in every cell; the mean GAP vector per cell is a
  cells x channels matrix. Each channel's preferred cell, selectivity and the share of its
  variance explained by the cell show which channels carry position; ordering the channels by
  preferred cell makes the code visible.
- Decode probe: a linear classifier on frozen GAP vectors predicting the cell, read from the
  vector as it is, after a per-sample random permutation of its channels, or from its sorted
  values (the most that any permutation-invariant read-out of the values could use).
- Shuffle at inference: the paper's 2 x 2 of trained with / without shuffle x tested with / without.

Networks: this app's probes, or a user's torchvision classifier (``engine.models.user_classifier``).
Features are cached in memory and on disk (uploads: memory only), keyed by a fingerprint of the
weights and the data.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.data.grid import place_on_grid
from engine.data.patches import GeneratedShapes, PatchSource
from engine.device import pick_device, prepare_input, seed_everything
from engine.models.probe import HEAD_LABELS, ProbeNet
from engine.models.user_classifier import UserClassifier
from engine.probe import EVAL_SEED, evaluate_probe, make_batch
from engine.storage import CheckpointError, cache_dir, fingerprint, load_torch, save_torch

LAYERS = ("stem", "layer1", "layer2", "layer3", "layer4")
READOUTS = ("ordered", "permuted", "sorted")
SHUFFLES = ("none", "per_call", "fixed")
FEATURE_BATCH = 200
PROBE_SEED = 1
_MEMORY: dict[str, dict[str, torch.Tensor]] = {}
_MEMORY_LIMIT = 64
Probed = ProbeNet | UserClassifier  # what the map and the decode probe take: ``config`` (the canvases) and ``stages``


def _cached(kind: str, key: str, compute: Callable[[], dict[str, torch.Tensor]], persist: bool = True
            ) -> dict[str, torch.Tensor]:
    """Memory, then disk (``cache_dir()/channel_code``), then ``compute`` (stored in memory, and on disk if ``persist``)."""
    name = f"{kind}-{key}"
    if name in _MEMORY:
        return _MEMORY[name]
    path = cache_dir() / "channel_code" / f"{name}.pt"
    value = None
    if persist and path.is_file():
        try:
            value = load_torch(path)
        except CheckpointError:
            value = None
    if value is None:
        value = compute()
        if persist:
            save_torch(value, path)
    if len(_MEMORY) >= _MEMORY_LIMIT:
        _MEMORY.pop(next(iter(_MEMORY)))
    _MEMORY[name] = value
    return value


def _data_key(model: Probed, source: PatchSource, *parts: object) -> str:
    """Cache key: the weights, the config, a content sample of the source, and the call's settings."""
    probe_patches = source.sample(4, 0, "test")[0]
    return fingerprint(model.state_dict(), asdict(model.config), source.name, probe_patches, list(parts))


def _check_layer(layer: str) -> None:
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")


def gap_features(model: Probed, canvases: torch.Tensor, device: torch.device | None = None,
                 batch: int = FEATURE_BATCH) -> dict[str, torch.Tensor]:
    """Globally average-pooled activations (n, C) of every backbone stage, by layer name, fp32 on the CPU."""
    device = device or pick_device()
    model = model.to(device).eval()
    outs: dict[str, list[torch.Tensor]] = {layer: [] for layer in LAYERS}
    with torch.inference_mode():
        for chunk in canvases.split(batch):
            stages = model.stages(prepare_input(chunk, device, channels_last=False))
            for layer, stage in zip(LAYERS, stages):
                outs[layer].append(stage.mean((2, 3)).float().cpu())
    return {layer: torch.cat(parts) for layer, parts in outs.items()}  # outside inference mode: normal tensors


# ----------------------------------------------------------------------------- channel code map


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
    _check_layer(layer)
    config = model.config
    source = source or GeneratedShapes(config.patch)

    def compute() -> dict[str, torch.Tensor]:
        patches, _ = source.sample(images, seed, "test")
        per_cell = [gap_features(model, place_on_grid(patches, torch.full((images,), cell), config.grid, config.background),
                                 device) for cell in range(config.grid**2)]
        return {name: torch.stack([f[name] for f in per_cell]) for name in LAYERS}  # (cells, images, C) per layer

    feats = _cached("map", _data_key(model, source, images, seed), compute, persist)[layer]
    response = feats.mean(1)
    total = feats.reshape(-1, feats.shape[-1]).var(0, unbiased=False)
    share = (response.var(0, unbiased=False) / total.clamp_min(1e-12)).clamp(0, 1)
    return ChannelMap(response, share, config.grid, layer, images)


# ----------------------------------------------------------------------------- decode probe


def cell_features(model: Probed, source: PatchSource | None = None, n: int = 2000, seed: int = PROBE_SEED,
                  split: str = "train", layer: str = "layer4", device: torch.device | None = None, persist: bool = True
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """GAP features (n, C) of ``layer`` for patches placed in random cells, and those cells; cached for all layers."""
    _check_layer(layer)
    config = model.config.with_(task="location")
    source = source or GeneratedShapes(config.patch)

    def compute() -> dict[str, torch.Tensor]:
        feats, cells = [], []
        for i, start in enumerate(range(0, n, FEATURE_BATCH)):
            canvases, cell, _ = make_batch(config, source, min(FEATURE_BATCH, n - start), seed + i, split, flip=False)
            feats.append(gap_features(model, canvases, device))
            cells.append(cell)
        return {"cells": torch.cat(cells), **{name: torch.cat([f[name] for f in feats]) for name in LAYERS}}

    out = _cached("cells", _data_key(model, source, n, seed, split), compute, persist)
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


# ----------------------------------------------------------------------------- shuffle at inference


class Shuffled(nn.Module):
    """A probe network evaluated with its latent channels shuffled before its head, as ``mode`` says.

    ``none``: in order; ``per_call``: a fresh permutation on every forward call (one per batch, as
    PermuteNet trains); ``fixed``: one given permutation. Shuffling the channels of the latent map
    commutes with global pooling, so for GAP -> Linear heads this is the GAP vector shuffled; for
    GAPNet it is the latent shuffled before its conv head. The network's own shuffle is bypassed.
    """

    def __init__(self, net: ProbeNet, mode: str, permutation: torch.Tensor | None = None) -> None:
        super().__init__()
        if mode not in SHUFFLES:
            raise ValueError(f"shuffle must be one of {SHUFFLES}, got {mode!r}")
        self.net, self.mode, self.config = net, mode, net.config
        self.permutation = net.fixed_perm if permutation is None else permutation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net.backbone(x)
        if self.mode == "per_call":
            z = z[:, torch.randperm(z.shape[1], device=z.device)]
        elif self.mode == "fixed":
            z = z[:, self.permutation.to(z.device)]
        if self.config.head == "gapnet":
            return self.net.head(z).mean((2, 3))
        return self.net.head(z.mean((2, 3)))


def relabeled(net: ProbeNet, permutation: torch.Tensor) -> ProbeNet:
    """The network trained with one *fixed* shuffle, made exactly from an in-order one.

    A fixed permutation P before the head only relabels the head's inputs: head'(z[P]) = head(z) with
    the head's input channels taken in order P. Since the initialisation is i.i.d. and Adam works per
    coordinate, training with P from an init equals training in order from the relabeled init.
    """
    out = copy.deepcopy(net)
    out.head.weight.data = net.head.weight.data[:, permutation].clone()
    out.fixed_perm.copy_(permutation)
    return out


def head_mean_share(net: ProbeNet) -> float:
    """Share of the head's weight energy in each output's mean over input channels (1 = reads only the sum).

    A head trained under a fresh shuffle per call can only use what every channel order shares, so its
    rows become constant: it reads the GAP vector's sum alone.
    """
    weight = net.head.weight.detach().float()
    weight = weight.sum((2, 3)) if weight.dim() == 4 else weight  # GAPNet's conv head, pooled over its taps
    return float(weight.mean(1, keepdim=True).pow(2).sum() * weight.shape[1] / weight.pow(2).sum())


def shuffle_2x2(in_order: ProbeNet, per_call: ProbeNet, kind: str, source: PatchSource | None = None,
                samples: int = 1000, seed: int = PROBE_SEED, device: torch.device | None = None) -> list[dict]:
    """Accuracy of a net trained without / with a ``kind`` shuffle, each tested without / with it.

    ``per_call``: the shuffled net is the PermuteNet ``per_call`` (trained with a fresh permutation per
    call) and testing shuffles per call. ``fixed``: the shuffled net is ``in_order`` relabeled by its
    stored permutation (see :func:`relabeled`) and testing applies that same permutation. Each cell's
    per-call permutations are drawn from torch's generator seeded with ``seed``.
    """
    if in_order.config.task != per_call.config.task:
        raise ValueError("both networks of a 2 x 2 must be trained for the same task")
    if kind not in ("per_call", "fixed"):
        raise ValueError(f"kind must be 'per_call' or 'fixed', got {kind!r}")
    permutation = in_order.fixed_perm
    shuffled = per_call if kind == "per_call" else relabeled(in_order, permutation)
    names = {"no shuffle": HEAD_LABELS[in_order.config.head],
             "shuffle": HEAD_LABELS[per_call.config.head] if kind == "per_call" else f"{HEAD_LABELS[in_order.config.head]}, relabeled"}
    rows = []
    for trained, net in (("no shuffle", in_order), ("shuffle", shuffled)):
        for tested, mode in (("no shuffle", "none"), ("shuffle", kind)):
            seed_everything(seed)
            accuracy = evaluate_probe(Shuffled(net, mode, permutation), source, samples, device=device).accuracy
            rows.append({"task": net.config.task, "kind": kind, "grid": net.config.grid, "trained": trained,
                         "tested": tested, "accuracy": accuracy, "chance": 100 / net.config.num_outputs,
                         "samples": samples, "net": names[trained],
                         "head_mean_share": head_mean_share(net)})
    return rows
