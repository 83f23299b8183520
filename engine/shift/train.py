"""Training the four shift-lab methods with one budget: data, augmentation and the loop.

Every method sees the same images per step (random crop with padding + horizontal flip);
AugShift takes two crops of each, BlurPool changes the network, the combination does both.
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch

from engine.core.progress import ProgressFn, StopToken
from engine.core.training import TrainConfig, cross_entropy_loss, fit
from engine.data.grid import hflip_random, normalize
from engine.data.named import is_named, named_source
from engine.data.patches import GeneratedShapes, PatchSource, TensorSource, load_cifar, open_patch_source
from engine.models.shift import ShiftConfig, ShiftNet
from engine.shift.augshift import augshift_loss, two_crops
from engine.shift.crops import pad_canvas, random_crops


class TrainingPool:
    """A generated set with a fixed, finite training set (like a real data set); val/test images stay fresh.

    Sources with a ``pool`` method (the 100-class set) draw it class-balanced; others draw ``train_images`` at random.
    """

    def __init__(self, fresh: PatchSource, train_images: int, seed: int = 0) -> None:
        self.fresh, self.classes, self.patch = fresh, fresh.classes, getattr(fresh, "patch", 32)
        self.name, self.key = f"{fresh.name} ({train_images} training images)", getattr(fresh, "key", "external")
        self.images, self.labels = _pool(fresh, train_images, seed)

    def sample(self, n: int, seed: int, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        if split != "train":
            return self.fresh.sample(n, seed, split)
        idx = torch.randint(len(self.images), (n,), generator=torch.Generator().manual_seed(seed))
        return self.images[idx], self.labels[idx]


@functools.lru_cache(maxsize=1)
def _pool(fresh: PatchSource, train_images: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training pool, generated once per process (tens of thousands of images take seconds)."""
    pool = getattr(fresh, "pool", None)
    return pool(train_images, seed) if pool else fresh.sample(train_images, seed, "train")


def ShapesPool(train_images: int, crop: int = 32, seed: int = 0, clutter: float = 0.0) -> TrainingPool:  # noqa: N802
    """The 10-class shapes with a fixed pool of ``train_images`` (the shipped 10-class models' data)."""
    return TrainingPool(GeneratedShapes(crop, clutter=clutter), train_images, seed)


CIFAR_FOLDERS = {"cifar-10-batches-py": "cifar10", "cifar-100-python": "cifar100"}
GENERATED = ("shapes", "shapes100")


def open_source(path: str | Path | None, crop: int = 32, train_images: int = 0, clutter: float = 0.0) -> PatchSource:
    """Embedded shapes when ``path`` is None or a generated set's name (``shapes``, ``shapes100``): fresh every
    step, or a fixed pool of ``train_images`` (``clutter`` makes the 10-class shapes harder); ``digits``: scikit-learn's
    handwritten digits; else CIFAR-10/100 (the folder or the one holding it) or an image folder."""
    if path is None or path in GENERATED:
        fresh = named_source(path or "shapes", crop, clutter)
        return TrainingPool(fresh, train_images) if train_images else fresh
    if is_named(path):
        return named_source(str(path), crop, clutter)
    root = Path(path).expanduser()
    if root.name in CIFAR_FOLDERS:  # the CIFAR folder itself; open_patch_source takes the folder that holds it
        return load_cifar(root.parent, CIFAR_FOLDERS[root.name], crop)
    return open_patch_source(root, crop)


def dataset_key(source: PatchSource) -> str:
    """The built-in name a source's held-out images can be reopened by (``external``: a folder)."""
    return getattr(source, "key", "external")


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
    if source is None:
        data = None if config.dataset in ("shapes", "external") else config.dataset
        source = open_source(data, config.crop, config.train_images, config.clutter)
    config = config.with_(classes=tuple(source.classes), data=source.name, dataset=dataset_key(source))
    if isinstance(source, TensorSource):  # a real data set: its training split is the pool
        config = config.with_(train_images=len(source))
    torch.manual_seed(train.seed)
    model = ShiftNet(config)
    loss_fn = augshift_loss(config.lam) if config.augshift else cross_entropy_loss

    def next_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        return train_batch(source, config, train.batch, train.seed * 1_000_003 + step)

    history = fit(model, next_batch, train, loss_fn, device=device, on_progress=on_progress, stop=stop)
    return model.cpu().eval(), history
