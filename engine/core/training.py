"""A small, generic training loop: Adam, bf16 autocast + channels_last, progress and stop.

The probe, shift and segmentation trainers supply a batch function and a loss; this loop owns
device placement, mixed precision, reporting and cooperative stopping.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from engine.core.device import autocast, pick_device, prepare_input, prepare_model, seed_everything
from engine.core.progress import Progress, ProgressFn, StopToken, report

BatchFn = Callable[[int], tuple[torch.Tensor, torch.Tensor]]
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
MilestoneFn = Callable[[int, nn.Module], dict[str, float]]
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; the defaults are the paper's (Adam 1e-3, betas 0.5/0.999, batch 48)."""

    steps: int = 1000
    batch: int = 48
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    seed: int = 0
    bf16: bool = True
    channels_last: bool = True
    report_every: int = 10
    schedule: str = "constant"  # or "cosine": the rate decays from lr to 0 over the run (long CPU runs in legs)
    freeze_bn: bool = False  # BatchNorm normalises with its running statistics (as in evaluation) while weights train

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}: choose one of {', '.join(SCHEDULES)}")

    def as_dict(self) -> dict:
        return asdict(self)


def cross_entropy_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain classification: (loss, number of correct predictions)."""
    logits = model(x)
    return nn.functional.cross_entropy(logits.float(), y), (logits.argmax(1) == y).sum()


def fit(model: nn.Module, next_batch: BatchFn, config: TrainConfig, loss_fn: LossFn = cross_entropy_loss,
        device: torch.device | None = None, on_progress: ProgressFn | None = None,
        stop: StopToken | None = None, milestone: MilestoneFn | None = None,
        milestone_every: int = 0) -> list[dict[str, float]]:
    """Train ``model`` in place for ``config.steps`` steps; return the logged history.

    ``next_batch(step)`` returns CPU tensors (inputs, targets). Raises ``Stopped`` if ``stop`` is set.
    Every ``milestone_every`` steps ``milestone(step, model)`` runs with the model in eval mode (e.g. to
    evaluate and checkpoint a long run); what it returns joins the history as its own row.
    """
    device = device or pick_device()
    seed_everything(config.seed)
    model = _train_mode(prepare_model(model, device, config.channels_last), config.freeze_bn)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.steps) if config.schedule == "cosine" else None
    history: list[dict[str, float]] = []
    loss_sum, correct, seen, start = 0.0, 0, 0, time.perf_counter()
    for step in range(1, config.steps + 1):
        if stop is not None:
            stop.check()
        x, y = next_batch(step)
        x, y = prepare_input(x, device, config.channels_last), y.to(device)
        with autocast(device, config.bf16):
            loss, n_correct = loss_fn(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        loss_sum += float(loss.detach()) * len(y)
        correct += int(n_correct)
        seen += len(y)
        if step % config.report_every == 0 or step == config.steps:
            row = {"step": step, "loss": loss_sum / seen, "accuracy": 100.0 * correct / seen,
                   "seconds": time.perf_counter() - start}
            history.append(row)
            report(on_progress, Progress(step, config.steps, "training", {k: row[k] for k in ("loss", "accuracy")}))
            loss_sum, correct, seen = 0.0, 0, 0
        if milestone is not None and milestone_every and step % milestone_every == 0:
            history.append({"step": step, "seconds": time.perf_counter() - start, **milestone(step, model.eval())})
            _train_mode(model, config.freeze_bn)
    return history


def _train_mode(model: nn.Module, freeze_bn: bool) -> nn.Module:
    """Training mode; with ``freeze_bn`` the BatchNorm layers stay in eval mode, so a network that came to lean on
    batch statistics (100% in training, near chance in evaluation) is trained on the statistics it is evaluated with."""
    model.train()
    if freeze_bn:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
    return model
