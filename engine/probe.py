"""The grid location probe (paper Sec. 3, Table 1): data, training and evaluation.

A patch is pasted into a random cell of an n x n canvas; the location task predicts the cell,
the object task predicts the patch's class. GAPNet should find the cell through GAP; PermuteNet,
whose GAP channels are shuffled before its classifier, should not.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from engine.data.grid import hflip_random, place_on_grid, random_cells
from engine.data.patches import GeneratedShapes, PatchSource
from engine.device import pick_device, prepare_input
from engine.models.probe import ProbeConfig, ProbeNet, build_probe
from engine.progress import ProgressFn, StopToken
from engine.training import MilestoneFn, TrainConfig, fit

EVAL_SEED = 987_654_321  # evaluation placements never reuse training seeds (seed * 1_000_003 + step)
CURVE_SEED = EVAL_SEED + 2  # the accuracy-vs-steps curve of a long run (EVAL_SEED + 1 is Table 1's)


def make_batch(config: ProbeConfig, source: PatchSource, n: int, seed: int, split: str = "train",
               flip: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Canvases (normalised), targets for ``config.task``, and the cells used; deterministic in seed."""
    patches, classes = source.sample(n, seed, split)
    g = torch.Generator().manual_seed(seed)
    if flip:
        patches = hflip_random(patches, g)
    cells = random_cells(n, config.grid, g)
    canvases = place_on_grid(patches, cells, config.grid, config.background)
    return canvases, (cells if config.task == "location" else classes), cells


def train_probe(config: ProbeConfig, train: TrainConfig, source: PatchSource | None = None,
                device: torch.device | None = None, on_progress: ProgressFn | None = None,
                stop: StopToken | None = None, init: ProbeNet | None = None, milestone: MilestoneFn | None = None,
                milestone_every: int = 0) -> tuple[ProbeNet, list[dict[str, float]]]:
    """Train a probe network (fresh, or ``init`` trained further in place); fresh random placements every step.

    The object task predicts the data's own classes (e.g. 100 for CIFAR-100), whatever ``config`` says.
    ``milestone`` (see :func:`engine.training.fit`) can evaluate and checkpoint a long run on the way.
    """
    source = source or GeneratedShapes(config.patch)
    config = replace(config, num_classes=len(source.classes))
    model = build_probe(config) if init is None else _continue_from(init, config)

    def next_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        canvases, targets, _ = make_batch(model.config, source, train.batch, train.seed * 1_000_003 + step)
        return canvases, targets

    history = fit(model, next_batch, train, device=device, on_progress=on_progress, stop=stop,
                  milestone=milestone, milestone_every=milestone_every)
    return model.cpu().eval(), history


def _continue_from(init: ProbeNet, config: ProbeConfig) -> ProbeNet:
    """``init`` itself when the settings match; an object-task net also starts another grid size (same
    layers: the classes do not depend on the grid), so a long run can be continued on bigger canvases."""
    if init.config == config:
        return init
    if config.task == "object" and init.config.with_(grid=config.grid) == config:
        model = build_probe(config)
        model.load_state_dict(init.state_dict())
        return model
    raise ValueError(f"the starting checkpoint is a {init.config.label}; these settings ask for a {config.label}")


@dataclass
class ProbeEvaluation:
    """Accuracy (0-100) overall, per cell (grid x grid), and the confusion over targets."""

    accuracy: float
    per_cell: torch.Tensor
    confusion: torch.Tensor
    samples: int

    def as_dict(self) -> dict:
        return {"accuracy": self.accuracy, "samples": self.samples, "per_cell": self.per_cell.tolist()}


@torch.inference_mode()
def evaluate_probe(model: ProbeNet, source: PatchSource | None = None, samples: int = 2000, seed: int = EVAL_SEED,
                   batch: int = 250, device: torch.device | None = None, bf16: bool = False) -> ProbeEvaluation:
    """Accuracy on fresh random placements of held-out patches (split "test").

    PermuteNet's shuffles are drawn from ``seed`` too (the caller's random state is left alone), one per
    :data:`PERMUTATION_BATCH` images: the same number every time, and not the luck of a few permutations."""
    config = model.config
    source = source or GeneratedShapes(config.patch)
    device = device or pick_device()
    model = model.to(device).eval()
    k, cells_n = config.num_outputs, config.grid**2
    confusion = torch.zeros(k, k, dtype=torch.long)
    hits, counts = torch.zeros(cells_n), torch.zeros(cells_n)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for i in range(math.ceil(samples / batch)):
            n = min(batch, samples - i * batch)
            x, y, cells = make_batch(config, source, n, seed + i, "test", flip=False)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                pred = predict(model, prepare_input(x, device)).cpu()
            confusion += torch.bincount(y * k + pred, minlength=k * k).view(k, k)
            hits += torch.bincount(cells, weights=(pred == y).float(), minlength=cells_n)
            counts += torch.bincount(cells, minlength=cells_n).float()
    per_cell = (100 * hits / counts.clamp(min=1)).view(config.grid, config.grid)
    return ProbeEvaluation(100.0 * confusion.diag().sum().item() / samples, per_cell, confusion, samples)


PERMUTATION_BATCH = 25  # images per channel shuffle when PermuteNet is evaluated (the paper: one per mini-batch)


def predict(model: ProbeNet, x: torch.Tensor) -> torch.Tensor:
    """Predicted classes; a PermuteNet sees a fresh shuffle every :data:`PERMUTATION_BATCH` images."""
    if model.config.head != "permutenet":
        return model(x).argmax(1)
    return torch.cat([model(chunk).argmax(1) for chunk in x.split(PERMUTATION_BATCH)])


@torch.inference_mode()
def cell_sweep(model: ProbeNet, patch: torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    """Probabilities (cells, outputs) for one patch (3, P, P in [0, 1]) placed in every cell in turn."""
    config = model.config
    device = device or pick_device()
    cells = torch.arange(config.grid**2)
    canvases = place_on_grid(patch.unsqueeze(0).expand(len(cells), -1, -1, -1), cells, config.grid, config.background)
    model = model.to(device).eval()
    return torch.softmax(model(prepare_input(canvases, device)).float(), 1).cpu()


def sweep_accuracy(probs: torch.Tensor, task: str, label: int | None = None) -> float:
    """Percentage of cells where a :func:`cell_sweep` is right (location: the cell; object: ``label``)."""
    targets = torch.arange(len(probs)) if task == "location" else torch.full((len(probs),), int(label))
    return 100.0 * (probs.argmax(1) == targets).float().mean().item()


@torch.inference_mode()
def channel_sum_accuracy(model: ProbeNet, source: PatchSource | None = None, samples: int = 1000,
                         seed: int = EVAL_SEED, batch: int = 250) -> tuple[float, float]:
    """(real accuracy, accuracy from the channel sum alone) of a PermuteNet, on the same fresh samples.

    A fresh permutation per call leaves its linear layer one usable, permutation-invariant signal:
    logit_k ~ mean(W_k) * sum(z) + b_k. When the sum does as well, the net uses nothing else.
    """
    config, source = model.config, source or GeneratedShapes(model.config.patch)
    model = model.eval()
    weight, bias = model.head.weight.float(), model.head.bias.float()
    real = from_sum = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in range(math.ceil(samples / batch)):
            x, y, _ = make_batch(config, source, min(batch, samples - i * batch), seed + i, "test", flip=False)
            x, y = x.to(weight.device), y.to(weight.device)
            z = model.gap_vector(x).float()
            from_sum += int(((weight.mean(1) * z.sum(1, keepdim=True) + bias).argmax(1) == y).sum())
            real += int((predict(model, x) == y).sum())  # many permutations, not one lucky draw
    return 100.0 * real / samples, 100.0 * from_sum / samples
