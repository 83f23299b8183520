"""A small, generic training loop: Adam, bf16 autocast + channels_last, progress and stop.

The probe, shift and segmentation trainers supply a batch function and a loss; this loop owns
device placement, mixed precision, reporting and cooperative stopping. Step ``s`` of a run depends only on
(seed, s) and the state before it, so a run stopped after step k and continued from its :class:`TrainState`
ends with the same weights as one never stopped.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.core.device import autocast, pick_device, prepare_input, prepare_model, seed_everything
from engine.core.progress import Progress, ProgressFn, StopToken, report
from engine.core.storage import load_torch

BatchFn = Callable[[int], tuple[torch.Tensor, torch.Tensor]]
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
MilestoneFn = Callable[[int, nn.Module, "TrainState"], dict[str, float]]
SCHEDULES = ("constant", "cosine")
_STEP_SALT = 0x5EED  # keeps the per-step global seed apart from the data's own (seed, step) generators


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


@dataclass
class TrainState:
    """Where a training stands after ``step`` steps: Adam's and the schedule's state and the report window summed so
    far. ``optimizer`` ``None`` (a checkpoint written without it): Adam starts afresh at ``step``."""

    step: int = 0
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    window: dict[str, float] = field(default_factory=lambda: {"loss_sum": 0.0, "correct": 0, "seen": 0})

    def as_dict(self) -> dict[str, Any]:
        """Plain dicts, lists, numbers and CPU tensors: what a checkpoint read with ``weights_only=True`` may hold."""
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> TrainState:
        return cls(int(record["step"]), record.get("optimizer"), record.get("scheduler"),
                   dict(record.get("window") or cls().window))


def read_train_state(path: Path) -> TrainState | None:
    """The training state kept in a run checkpoint (``None`` in one written without it)."""
    blob = load_torch(path)
    record = blob.get("train_state") if isinstance(blob, dict) else None
    return TrainState.from_dict(record) if isinstance(record, dict) else None


def step_seed(seed: int, step: int) -> int:
    """The global torch seed of training step ``step`` (PermuteNet's shuffles, dropout): a function of (seed, step)."""
    return int(np.random.SeedSequence([seed % 2**32, step, _STEP_SALT]).generate_state(1)[0])


def cross_entropy_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain classification: (loss, number of correct predictions)."""
    logits = model(x)
    return nn.functional.cross_entropy(logits.float(), y), (logits.argmax(1) == y).sum()


def fit(model: nn.Module, next_batch: BatchFn, config: TrainConfig, loss_fn: LossFn = cross_entropy_loss,
        device: torch.device | None = None, on_progress: ProgressFn | None = None,
        stop: StopToken | None = None, milestone: MilestoneFn | None = None,
        milestone_every: int = 0, resume: TrainState | None = None) -> list[dict[str, float]]:
    """Train ``model`` in place up to ``config.steps`` steps (from ``resume.step``, with its state, when given);
    return the logged history.

    ``next_batch(step)`` returns CPU tensors (inputs, targets) for step ``step`` (counted from the run's start).
    Raises ``Stopped`` if ``stop`` is set. Every ``milestone_every`` steps ``milestone(step, model, state)`` runs with
    the model in eval mode (e.g. to evaluate and checkpoint a long run, ``state`` with it); what it returns joins the
    history as its own row.
    """
    device = device or pick_device()
    seed_everything(config.seed)
    resume = resume or TrainState()
    model = _train_mode(prepare_model(model, device, config.channels_last), config.freeze_bn)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.steps) if config.schedule == "cosine" else None
    _restore(opt, sched, resume)
    history: list[dict[str, float]] = []
    loss_sum, correct, seen = float(resume.window["loss_sum"]), int(resume.window["correct"]), int(resume.window["seen"])
    start = time.perf_counter()
    for step in range(resume.step + 1, config.steps + 1):
        if stop is not None:
            stop.check()
        _seed_step(step_seed(config.seed, step), device)
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
            state = TrainState(step, _to_cpu(opt.state_dict()), None if sched is None else _to_cpu(sched.state_dict()),
                               {"loss_sum": loss_sum, "correct": correct, "seen": seen})
            history.append({"step": step, "seconds": time.perf_counter() - start, **milestone(step, model.eval(), state)})
            _train_mode(model, config.freeze_bn)
    return history


def _seed_step(seed: int, device: torch.device) -> None:
    """Seed the generators a step on ``device`` draws from (``torch.manual_seed`` also visits every other backend,
    far slower per step)."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(seed)


def _restore(opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler | None, state: TrainState) -> None:
    """Put the optimizer and the schedule where ``state`` left them; without a saved optimizer (an older checkpoint)
    Adam starts afresh and the schedule is stepped on to ``state.step``."""
    if state.optimizer is not None:
        opt.load_state_dict(state.optimizer)
    if sched is None:
        return
    if state.scheduler is not None:
        sched.load_state_dict(state.scheduler)
        return
    with warnings.catch_warnings():  # stepping the schedule without optimizer steps is what is meant here
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(state.step):
            sched.step()


def _to_cpu(obj: Any) -> Any:
    """A copy of a (nested) state dict with every tensor cloned to the CPU, safe to keep while training goes on."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _train_mode(model: nn.Module, freeze_bn: bool) -> nn.Module:
    """Training mode; with ``freeze_bn`` the BatchNorm layers stay in eval mode, so a network that came to lean on
    batch statistics (100% in training, near chance in evaluation) is trained on the statistics it is evaluated with."""
    model.train()
    if freeze_bn:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
    return model
