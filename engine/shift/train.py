"""Training the four shift-lab methods with one budget: data, augmentation and the loop.

Every method sees the same images per step (random crop with padding + horizontal flip);
AugShift takes two crops of each, BlurPool changes the network, the combination does both.
"""
from __future__ import annotations

import torch

from engine.core.progress import ProgressFn, StopToken
from engine.core.training import MilestoneFn, TrainConfig, TrainState, cross_entropy_loss, fit
from engine.data.grid import hflip_random, normalize
from engine.data.patches import PatchSource, TensorSource, open_patch_source
from engine.models.shift import ShiftConfig, ShiftNet
from engine.shift.augshift import augshift_loss, two_crops
from engine.shift.crops import pad_canvas, random_crops


def dataset_key(source: PatchSource) -> str:
    """The built-in name a source's held-out images can be reopened by (``external``: a folder)."""
    return getattr(source, "key", "external")


def config_source(config: ShiftConfig) -> PatchSource:
    """The data a config trains on: its built-in set (``config.dataset``) with its crop, pool and clutter."""
    data = None if config.dataset in ("shapes", "external") else config.dataset
    return open_patch_source(data, config.crop, config.train_images, config.clutter)


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
                stop: StopToken | None = None, init: ShiftNet | None = None, milestone: MilestoneFn | None = None,
                milestone_every: int = 0, resume: TrainState | None = None) -> tuple[ShiftNet, list[dict[str, float]]]:
    """Train a fresh model of ``config.method`` (or ``init`` further, in place); fresh images every step, seeded by
    (seed, step); ``milestone`` (see :func:`engine.core.training.fit`) can checkpoint it on the way; ``resume``:
    ``init`` continues its run from that state up to ``train.steps`` in all."""
    source = config_source(config) if source is None else source
    config = config.with_(classes=tuple(source.classes), data=source.name, dataset=dataset_key(source))
    if isinstance(source, TensorSource):  # a real data set: its training split is the pool
        config = config.with_(train_images=len(source))
    torch.manual_seed(train.seed)
    if init is not None and init.config != config:
        raise ValueError(f"the starting checkpoint is a {init.config.label}; these settings ask for a {config.label}")
    model = ShiftNet(config) if init is None else init
    loss_fn = augshift_loss(config.lam) if config.augshift else cross_entropy_loss

    def next_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        return train_batch(source, config, train.batch, train.seed * 1_000_003 + step)

    history = fit(model, next_batch, train, loss_fn, device=device, on_progress=on_progress, stop=stop,
                  milestone=milestone, milestone_every=milestone_every, resume=resume)
    return model.cpu().eval(), history
