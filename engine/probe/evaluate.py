"""Evaluating the grid probe on fresh placements of held-out patches: accuracy, per-cell accuracy, the channel-sum
read-out, and single-patch cell sweeps."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engine.core.device import autocast, pick_device, prepare_input
from engine.data.grid import place_on_grid
from engine.data.patches import GeneratedShapes, PatchSource
from engine.models.probe import ProbeNet
from engine.probe.train import make_batch

EVAL_SEED = 987_654_321  # evaluation placements never reuse training seeds (seed * 1_000_003 + step)
CURVE_SEED = EVAL_SEED + 2  # the accuracy-vs-steps curve of a long run (EVAL_SEED + 1 is Table 1's)


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
            with autocast(device, bf16):
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
