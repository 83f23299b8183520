"""Train the default segmentation model on generated street scenes (the shipped weights' recipe), or on a
Cityscapes folder in torchvision's layout (its train split; val for the reported mIoU).

No horizontal flip augmentation by default: it would erase the drive-on-the-right asymmetry (on the
divided layout, the median is only told from the sidewalk by its side). ``flip=True`` mirrors half of
every batch, image and labels alike, as the authors trained theirs: that is the shipped control, a
model that cannot use absolute horizontal position. ``latent_l1`` adds the latent's mean activation to the loss:
channels that fire only where their feature is (without it, every channel of this trunk's latent is on at ~60% of its
positions; with 0.25, the shipped default's, the median channel at 4%). channels_last, and bf16 autocast where the
hardware computes bf16 (engine.core.device.autocast).
"""
from __future__ import annotations

import copy
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from engine.core.device import autocast, pick_device, prepare_input, prepare_model, seed_everything
from engine.core.progress import Progress, ProgressFn, StopToken, report
from engine.data.cityscapes_classes import IGNORE
from engine.models.segmentation import (
    DEFAULT_ARCH,
    SegModel,
    backbone_latent,
    build_model,
    load_model,
    save_model,
    to_input,
    upsample_logits,
    wrap,
)
from engine.seg.ablation import evaluate_full, scores
from engine.seg.lab import DEFAULT_VAL, load_data


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (recorded in the checkpoint's meta)."""

    arch: str = field(default=DEFAULT_ARCH, metadata={"help": f"architecture (default: {DEFAULT_ARCH})"})
    output_stride: int = field(default=16, metadata={"help": "output stride of the backbone: 16 or, for ResNets, 8"})
    stages: int = field(default=4, metadata={"help": "trunk stages of the slim ResNet: 4, or 3 (the latent is layer3's "
                                                     "256 channels; a latent column sees about half the image width)"})
    aspp_pooling: bool = field(default=True, metadata={"help": "ASPP's image-pooling branch (a GAP of the latent broadcast "
                                                               "to every pixel); --no-aspp-pooling: a head that reads "
                                                               "only nearby latent positions (slim ResNet)"})
    aspp_rates: str = field(default="", metadata={"help": "comma list of ASPP dilation rates (default: 6,12,18 at output "
                                                          "stride 16, the paper's; 1,2,3 scales them to a 128x256 image)"})
    train_images: int = field(default=6000, metadata={"help": "training scenes (or the first N images of --data)"})
    val_images: int = field(default=200, metadata={"help": "val images the final mIoU is measured on"})
    height: int = field(default=128, metadata={"help": "image height (width = 2x; divisible by 16)"})
    epochs: int = field(default=50, metadata={"help": "passes over the training images"})
    stop_after: int = field(default=0, metadata={"help": "end after this many epochs while the one-cycle schedule still spans "
                                                         "--epochs (0: run them all)"})
    start_epoch: int = field(default=0, metadata={"help": "with --init from a stopped run's checkpoint: continue its schedule "
                                                          "and data order at this epoch (the optimizer's moments start "
                                                          "afresh)"})
    batch_size: int = field(default=32, metadata={"help": "images per step"})
    lr: float = field(default=2e-3, metadata={"help": "peak learning rate of the one-cycle schedule (AdamW)"})
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay"})
    seed: int = field(default=0, metadata={"help": "seed of the initialisation, batch order and flips"})
    scene_seed: int = field(default=0, metadata={"help": "seed of the generated training scenes (another seed: other "
                                                           "scenes); val is always the default val split"})
    init: str = field(default="", metadata={"help": "start from this checkpoint's weights (fine-tune) instead of a "
                                                    "random init"})
    data: str = field(default="", metadata={"help": "a Cityscapes folder in torchvision's layout: train on its train "
                                                    "split (the first --train-images), report mIoU on val (default: "
                                                    "generated scenes)"})
    layout: str = field(default="divided", metadata={"help": "generated scenes' layout: divided (median labelled wall, "
                                                             "told from the sidewalk only by its side) or street"})
    flip: bool = field(default=False, metadata={"help": "mirror half of every batch (image and labels): the control "
                                                        "that cannot use absolute horizontal position"})
    latent_l1: float = field(default=0.0, metadata={"help": "weight of an L1 penalty on the latent (mean activation): "
                                                            "sparse, selective channels (0: none)"})


def segmentation_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, latent_l1: float = 0.0) -> torch.Tensor:
    """Cross-entropy of the image-size logits (``DeepLabV3.forward``'s ops), plus ``latent_l1`` times the latent's mean
    activation (post-ReLU, so its L1 norm per element)."""
    z = backbone_latent(model, x)
    loss = F.cross_entropy(upsample_logits(model.classifier(z), x.shape[-2:]).float(), y, ignore_index=IGNORE)
    return loss + latent_l1 * z.float().mean() if latent_l1 else loss


def train_segmentation(cfg: TrainConfig, device: torch.device | None = None, on_progress: ProgressFn | None = None,
                       stop: StopToken | None = None, checkpoint: Path | None = None) -> SegModel:
    """Train ``cfg.arch`` from scratch (nothing downloaded) or from ``cfg.init`` with AdamW + one-cycle; returns it
    with its val mIoU. With ``checkpoint``, the weights so far are saved there after every epoch (atomically);
    ``cfg.start_epoch`` continues a stopped run from such a checkpoint (``cfg.init``), ``cfg.stop_after`` ends one early."""
    epochs = min(cfg.stop_after or cfg.epochs, cfg.epochs)
    if not 0 <= cfg.start_epoch <= epochs or (cfg.start_epoch and not cfg.init):
        raise ValueError(f"--start-epoch {cfg.start_epoch} needs --init (the stopped run's checkpoint) and at most "
                         f"{epochs} epochs (--epochs, --stop-after)")
    device = device or pick_device()
    seed_everything(cfg.seed)
    workers = min(16, os.cpu_count() or 1)
    train = load_data(cfg.data, "train", cfg.train_images, cfg.height, cfg.scene_seed, workers=workers, layout=cfg.layout)
    images, labels = torch.from_numpy(train.images).to(device), torch.from_numpy(train.labels).to(device)
    if cfg.init:
        init = load_model(cfg.init)
        if (init.arch, init.output_stride) != (cfg.arch, cfg.output_stride):
            raise ValueError(f"the starting checkpoint is a {init.arch} at output stride {init.output_stride}; this run trains a {cfg.arch} "
                             f"at {cfg.output_stride}")
    rates = tuple(int(r) for r in cfg.aspp_rates.split(",")) if cfg.aspp_rates else None
    model = init.model if cfg.init else build_model(cfg.arch, output_stride=cfg.output_stride, rates=rates,
                                                    pooling=cfg.aspp_pooling, stages=cfg.stages)
    model = prepare_model(model, device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(images) // cfg.batch_size)  # a folder smaller than a batch still trains
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(cfg.seed)
    start_time, loss = time.time(), torch.zeros(())
    for epoch in range(epochs):
        perm = torch.randperm(len(images), generator=gen)
        for step in range(steps_per_epoch):
            idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size].to(device)
            mirror = (torch.rand(len(idx), generator=gen) < 0.5).to(device) if cfg.flip else None
            if epoch < cfg.start_epoch:  # a stopped run's epochs: the same draws and schedule, no training
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # "lr_scheduler.step() before optimizer.step()"
                    sched.step()
                continue
            if stop:
                stop.check()
            x, y = to_input(images[idx]), labels[idx].long()
            if mirror is not None:
                x = torch.where(mirror.view(-1, 1, 1, 1), x.flip(-1), x)
                y = torch.where(mirror.view(-1, 1, 1), y.flip(-1), y)
            with autocast(device):
                loss = segmentation_loss(model, prepare_input(x, device), y, cfg.latent_l1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if epoch < cfg.start_epoch:
            continue
        report(on_progress, Progress(epoch + 1, cfg.epochs, "training", {"loss": loss.item()}))
        if checkpoint is not None:  # the last epoch too: a failure in the val measurement below loses no training
            save_model(_finished(copy.deepcopy(model).cpu(), cfg, device, start_time, epoch + 1), checkpoint)
    seg = _finished(model, cfg, device, start_time, epochs)
    val = load_data(cfg.data, "val", cfg.val_images, cfg.height, DEFAULT_VAL.seed, layout=cfg.layout)
    seg.meta["val_miou"] = scores(evaluate_full(seg, val, exact=False))
    return seg


def _finished(model: torch.nn.Module, cfg: TrainConfig, device: torch.device, start_time: float, epochs: int) -> SegModel:
    """The model in eval mode with the run's meta (config, device, time, epochs done)."""
    model = model.to(memory_format=torch.contiguous_format)
    return wrap(model, cfg.arch, cfg.output_stride, {
        "train": asdict(cfg), "device": str(device), "epochs_done": epochs, "seconds": round(time.time() - start_time, 1),
        "device_name": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"})
