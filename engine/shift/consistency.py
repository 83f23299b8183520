"""Shift consistency, as BlurPool's ``validate_shift`` measures it, and a per-shift curve.

Cons.k: test images are padded to crop + k; per batch two random (row, col) offsets in [0, k) are
drawn, both crops are classified, agree = same argmax; 100 x mean over images, averaged over
``passes`` passes. The curve slides the crop along the diagonal, offsets (s, s) for s = 0..k, and
reports agreement with the prediction at s = 0, the true-class probability and the accuracy.
Top-1 is the accuracy at s = k // 2, where the crop is exactly the original image.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from engine.core.device import pick_device, prepare_input, prepare_model
from engine.core.progress import Progress, ProgressFn, report
from engine.data.grid import normalize
from engine.data.named import named_source
from engine.data.patches import PatchSource
from engine.models.shift import ShiftConfig
from engine.shift.crops import crop_at, pad_canvas

EVAL_SEED = 20_011  # test images and offsets never reuse training seeds (training uses seed * 1_000_003 + step)


@dataclass
class ShiftEvaluation:
    """Top-1 and Cons.k (0-100), Cons.k split by whether the image is classified right, and the diagonal
    per-shift curves (index = shift in px)."""

    top1: float
    cons: float
    max_shift: int
    passes: int
    samples: int
    agree_curve: list[float]
    prob_curve: list[float]
    acc_curve: list[float]
    cons_right: float | None = None  # Cons.k over the images classified right (unshifted); None: there are none
    cons_wrong: float | None = None  # ... and over those classified wrong: the paper's CIFAR-100 signature

    def as_dict(self) -> dict:
        return asdict(self)


def held_out_images(source: PatchSource, samples: int, seed: int = EVAL_SEED, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised held-out images and labels (split "test", or "val" when choosing settings)."""
    images, labels = source.sample(samples, seed, split)
    return normalize(images), labels


def _logits(model: nn.Module, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return model(prepare_input(x, device)).float().cpu()


@torch.inference_mode()
def agreements(model: nn.Module, images: torch.Tensor, max_shift: int = 8, passes: int = 5, batch: int = 200,
               seed: int = EVAL_SEED, device: torch.device | None = None,
               on_progress: ProgressFn | None = None) -> torch.Tensor:
    """Per image, in how many of ``passes`` passes two random shifts got the same class (the counts behind Cons.k)."""
    if max_shift < 1 or passes < 1:
        raise ValueError("max_shift and passes must be >= 1")
    device = device or pick_device()
    model = prepare_model(model, device).eval()
    size, canvas = images.shape[-1], pad_canvas(images, max_shift)
    g = torch.Generator().manual_seed(seed)
    batches = math.ceil(len(images) / batch)
    agree = torch.zeros(len(images), dtype=torch.int64)
    for p in range(passes):
        for b in range(batches):
            chunk = canvas[b * batch:(b + 1) * batch]
            off0, off1 = torch.randint(max_shift, (2,), generator=g).tolist(), torch.randint(max_shift, (2,), generator=g).tolist()
            pred0 = _logits(model, crop_at(chunk, *off0, size), device).argmax(1)
            pred1 = _logits(model, crop_at(chunk, *off1, size), device).argmax(1)
            agree[b * batch:(b + 1) * batch] += pred0 == pred1
            report(on_progress, Progress(p * batches + b + 1, passes * batches, f"Cons.{max_shift}"))
    return agree


def consistency(model: nn.Module, images: torch.Tensor, max_shift: int = 8, passes: int = 5, batch: int = 200,
                seed: int = EVAL_SEED, device: torch.device | None = None,
                on_progress: ProgressFn | None = None) -> float:
    """Cons.k of ``model`` on normalised images (n, 3, s, s): how often two random shifts get the same class."""
    agree = agreements(model, images, max_shift, passes, batch, seed, device, on_progress)
    return 100.0 * float(agree.sum()) / (passes * len(images))


@torch.inference_mode()
def diagonal_probabilities(model: nn.Module, images: torch.Tensor, max_shift: int = 8, batch: int = 200,
                           device: torch.device | None = None) -> torch.Tensor:
    """Class probabilities (n, k + 1, classes) of each image cropped at diagonal offsets (s, s), s = 0..k."""
    device = device or pick_device()
    model = prepare_model(model, device).eval()
    size, canvas = images.shape[-1], pad_canvas(images, max_shift)
    return torch.cat([torch.stack([torch.softmax(_logits(model, crop_at(chunk, s, s, size), device), 1)
                                   for s in range(max_shift + 1)], 1)
                      for chunk in canvas.split(batch)])


def curves(probs: torch.Tensor, labels: torch.Tensor) -> tuple[list[float], list[float], list[float]]:
    """Per diagonal shift: agreement with the shift-0 prediction, true-class probability, accuracy (0-100)."""
    pred = probs.argmax(2)
    agree = 100.0 * (pred == pred[:, :1]).float().mean(0)
    prob = 100.0 * probs.gather(2, labels.view(-1, 1, 1).expand(-1, probs.shape[1], 1))[..., 0].mean(0)
    acc = 100.0 * (pred == labels.view(-1, 1)).float().mean(0)
    return agree.tolist(), prob.tolist(), acc.tolist()


def shift_curve(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, max_shift: int = 8, batch: int = 200,
                device: torch.device | None = None) -> tuple[list[float], list[float], list[float]]:
    """Per diagonal shift s = 0..k: agreement with the s = 0 prediction, true-class probability, accuracy (0-100)."""
    return curves(diagonal_probabilities(model, images, max_shift, batch, device), labels)


def default_source(config: ShiftConfig) -> PatchSource:
    """The held-out images a model is measured on: its built-in data set (``config.dataset``), its crop and clutter."""
    if config.dataset == "external":
        raise ValueError(f"this model was trained on {config.data}, a folder: pass that data (--data PATH) to measure it")
    return named_source(config.dataset, config.crop, config.clutter)


def evaluate_shift(model: nn.Module, source: PatchSource | None = None, samples: int = 2000, max_shift: int = 8,
                   passes: int = 5, seed: int = EVAL_SEED, batch: int = 200, device: torch.device | None = None,
                   on_progress: ProgressFn | None = None, split: str = "test") -> ShiftEvaluation:
    """Top-1, Cons.k (overall and on the images classified right / wrong) and the per-shift curves."""
    source = source or default_source(model.config)
    images, labels = held_out_images(source, samples, seed, split)
    agree = agreements(model, images, max_shift, passes, batch, seed, device, on_progress)
    probs = diagonal_probabilities(model, images, max_shift, batch, device)
    agree_curve, prob_curve, acc_curve = curves(probs, labels)
    right = probs[:, max_shift // 2].argmax(1) == labels  # the crop that is exactly the original image

    def cons_of(sel: torch.Tensor) -> float | None:
        return 100.0 * float(agree[sel].sum()) / (passes * int(sel.sum())) if sel.any() else None

    return ShiftEvaluation(acc_curve[max_shift // 2], cons_of(torch.ones_like(right)), max_shift, passes, samples,
                           agree_curve, prob_curve, acc_curve, cons_of(right), cons_of(~right))


@torch.inference_mode()
def slide(model: nn.Module, image: torch.Tensor, max_shift: int = 8) -> torch.Tensor:
    """Class probabilities (k + 1, classes) as one normalised image (3, s, s) slides right 0..k px across its canvas."""
    return torch.softmax(model.eval()(slide_views(image, max_shift)).float(), 1)


def slide_views(image: torch.Tensor, max_shift: int = 8) -> torch.Tensor:
    """The k + 1 views (k + 1, 3, s, s) that :func:`slide` classifies: the image moved right by 0..k px."""
    size, canvas = image.shape[-1], pad_canvas(image.unsqueeze(0), max_shift)
    return torch.cat([crop_at(canvas, max_shift // 2, max_shift - s, size) for s in range(max_shift + 1)])
