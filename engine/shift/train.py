"""Training the four shift-lab methods with one budget: data, augmentation and the loop.

Every method sees the same images per step (random crop with padding + horizontal flip);
AugShift takes two crops of each, BlurPool changes the network, the combination does both.
"""
from __future__ import annotations

from pathlib import Path

import torch

from engine.data.grid import hflip_random, normalize
from engine.data.patches import GeneratedShapes, PatchSource, load_cifar, open_patch_source
from engine.data.shapes import CLASSES as SHAPE_CLASSES
from engine.progress import ProgressFn, StopToken
from engine.shift.augshift import augshift_loss, two_crops
from engine.shift.crops import pad_canvas, random_crops
from engine.shift.models import ShiftConfig, ShiftNet
from engine.training import TrainConfig, cross_entropy_loss, fit


class ShapesPool:
    """Generated shapes with a fixed, finite training set (like a real data set); val/test images stay fresh."""

    def __init__(self, train_images: int, crop: int = 32, seed: int = 0, clutter: float = 0.0) -> None:
        self.fresh = GeneratedShapes(crop, clutter=clutter)
        self.name, self.classes, self.patch = f"{self.fresh.name} ({train_images} training images)", SHAPE_CLASSES, crop
        self.images, self.labels = self.fresh.sample(train_images, seed, "train")

    def sample(self, n: int, seed: int, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        if split != "train":
            return self.fresh.sample(n, seed, split)
        idx = torch.randint(len(self.images), (n,), generator=torch.Generator().manual_seed(seed))
        return self.images[idx], self.labels[idx]


CIFAR_FOLDERS = {"cifar-10-batches-py": "cifar10", "cifar-100-python": "cifar100"}


def open_source(path: str | Path | None, crop: int = 32, train_images: int = 0, clutter: float = 0.0) -> PatchSource:
    """Embedded shapes when ``path`` is None (fresh every step, or a fixed pool of ``train_images``; ``clutter``
    makes them harder); else CIFAR-10/100 (the folder or the one holding it) or an image folder."""
    if path is None:
        return ShapesPool(train_images, crop, clutter=clutter) if train_images else GeneratedShapes(crop, clutter=clutter)
    root = Path(path).expanduser()
    if root.name in CIFAR_FOLDERS:  # the CIFAR folder itself; open_patch_source takes the folder that holds it
        return load_cifar(root.parent, CIFAR_FOLDERS[root.name], crop)
    return open_patch_source(root, crop)


def train_batch(source: PatchSource, config: ShiftConfig, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised augmented inputs and labels; for AugShift the pair [crops1; crops2] and labels twice."""
    images, labels = source.sample(n, seed, "train")
    g = torch.Generator().manual_seed(seed)
    images = normalize(hflip_random(images, g))
    if config.augshift:
        return two_crops(images, config.pad, g), torch.cat([labels, labels])
    return random_crops(pad_canvas(images, 2 * config.pad), config.crop, g), labels


def train_shift(config: ShiftConfig, train: TrainConfig, source: PatchSource | None = None,
                device: torch.device | None = None, on_progress: ProgressFn | None = None,
                stop: StopToken | None = None) -> tuple[ShiftNet, list[dict[str, float]]]:
    """Train a fresh model of ``config.method``; fresh images every step, seeded by (seed, step)."""
    source = source or open_source(None, config.crop, config.train_images, config.clutter)
    config = config.with_(classes=tuple(source.classes), data=source.name)
    torch.manual_seed(train.seed)
    model = ShiftNet(config)
    loss_fn = augshift_loss(config.lam) if config.augshift else cross_entropy_loss

    def next_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        return train_batch(source, config, train.batch, train.seed * 1_000_003 + step)

    history = fit(model, next_batch, train, loss_fn, device=device, on_progress=on_progress, stop=stop)
    return model.cpu().eval(), history
