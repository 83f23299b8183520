"""The shift lab's API, one call per experiment for the CLI and the page: :func:`train` a model, measure Top-1 and
Cons.k of several (:func:`consistency`), :func:`slide` one image across the canvas; each returns a typed result
with ``rows()``. The names the page needs from the modules below are importable from here."""
from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from engine.core.device import pick_device
from engine.core.progress import Progress, ProgressFn, StopToken, report
from engine.core.runs import Recorder, Run, RunStore, checkpoint_every
from engine.core.training import MilestoneFn, TrainConfig, TrainState
from engine.data import digits
from engine.data.named import named_source
from engine.data.patches import open_patch_source
from engine.models.shift import DEFAULT_LAMBDA as DEFAULT_LAMBDA
from engine.models.shift import METHOD_LABELS as METHOD_LABELS
from engine.models.shift import METHODS, ShiftConfig, ShiftNet, load_shift_model, save_shift_model
from engine.shift.consistency import EVAL_SEED, ShiftEvaluation, default_source, evaluate_shift, held_out_images
from engine.shift.consistency import consistency as cons_k
from engine.shift.consistency import slide as slide_one
from engine.shift.shipped import PAPER_TABLE2, SHIPPED_SETS, load_shipped, recorded_row, shipped_path
from engine.shift.train import config_source, dataset_key, train_shift


@dataclass(frozen=True)
class TrainResult:
    """A trained model, its evaluation on held-out images, the last training metrics and the seconds training took."""

    model: ShiftNet
    evaluation: ShiftEvaluation
    history: list[dict[str, float]]
    seconds: float
    data: str

    def rows(self) -> list[dict]:
        """One row: method, Top-1 and Cons.k (0-100), training seconds."""
        return [{"method": self.model.config.method, "top1": self.evaluation.top1, "cons": self.evaluation.cons,
                 "seconds": self.seconds}]


def train(config: ShiftConfig, schedule: TrainConfig, data: str | Path | None = None, eval_samples: int = 2000,
          device: torch.device | None = None, on_progress: ProgressFn | None = None,
          stop: StopToken | None = None, init: ShiftNet | None = None, milestone: MilestoneFn | None = None,
          milestone_every: int = 0, resume: TrainState | None = None) -> TrainResult:
    """Train a fresh model of ``config.method`` (or ``init`` further; with ``resume``, continuing its run from that
    state up to ``schedule.steps`` in all) on ``data`` (a name or path; default: ``config.dataset``, with its pool and
    clutter), then measure Top-1 and Cons.8 on ``eval_samples`` held-out images of the same data. A ``stop`` set
    during the evaluation is honoured too (the trained model is what it keeps)."""
    source = config_source(config) if data is None else open_patch_source(data, config.crop, config.train_images, config.clutter)
    start = time.perf_counter()
    model, history = train_shift(config, schedule, source, device, on_progress=on_progress, stop=stop, init=init,
                                 milestone=milestone, milestone_every=milestone_every, resume=resume)
    seconds = time.perf_counter() - start

    def evaluating(p: Progress) -> None:
        report(on_progress, p)
        if stop is not None:
            stop.check()

    if stop is not None:
        stop.check()
    evaluation = evaluate_shift(model, source, samples=eval_samples, device=device, on_progress=evaluating)
    return TrainResult(model, evaluation, history, seconds, source.name)


def train_command(config: ShiftConfig, schedule: TrainConfig, eval_samples: int) -> str:
    """The ``train-shift`` command line that trains ``config`` with ``schedule`` (every option spelled out)."""
    parts = ["python", "-m", "engine", "train-shift", "--method", config.method, "--steps", schedule.steps, "--batch",
             schedule.batch, "--lr", schedule.lr, "--seed", schedule.seed, "--width", config.width, "--lam", config.lam,
             "--blur-filter", config.blur_filter, "--pad", config.pad, "--crop", config.crop, "--train-images",
             config.train_images, "--clutter", config.clutter, "--data", config.dataset, "--schedule", schedule.schedule,
             "--eval-samples", eval_samples]
    return shlex.join(map(str, parts))


def start_run(store: RunStore, config: ShiftConfig, schedule: TrainConfig, eval_samples: int = 500) -> Run:
    """A new queued shift-training run in ``store`` (:func:`train_run` does the work)."""
    settings = {"config": asdict(config), "train": schedule.as_dict(), "eval_samples": eval_samples}
    return store.create("shift", config.label, settings, train_command(config, schedule, eval_samples), schedule.steps)


def train_run(recorder: Recorder, device: str | torch.device | None = None) -> TrainResult:
    """Train the run's model, or continue it from its last checkpoint (its optimizer, schedule and data stream where
    they stopped) to the same total step count (``checkpoint.pt`` every few steps: what a Stop keeps), then measure
    it; the result's evaluation is kept in ``run.json``."""
    run = recorder.run
    config, schedule = ShiftConfig(**run.settings["config"]), TrainConfig(**run.settings["train"])
    state = recorder.train_state()
    init = load_shift_model(run.checkpoint)[0] if state.step else None
    torch_device = pick_device(device) if not isinstance(device, torch.device) else device

    def checkpoint(step: int, model: ShiftNet, now: TrainState) -> dict[str, float]:
        save_shift_model(model, run.checkpoint, {"command": run.command, "steps_total": step,
                                                 "partial": {"step": step, "of": run.total}}, now.as_dict())
        recorder.checkpointed(step)
        return {}

    result = train(config, replace(schedule, steps=run.total), eval_samples=run.settings.get("eval_samples", 500),
                   device=torch_device, on_progress=recorder.on_progress, stop=recorder.stop, init=init,
                   milestone=checkpoint, milestone_every=checkpoint_every(run.total), resume=state)
    save_shift_model(result.model, run.checkpoint, {"command": run.command, "steps_total": run.total,
                                                    "train": schedule.as_dict(), "data": result.data,
                                                    "eval": result.evaluation.as_dict()})
    recorder.checkpointed(run.total)
    recorder.finish({"evaluation": result.evaluation.as_dict(), "data": result.data, "seconds": round(result.seconds, 1)},
                    rows=result.rows())
    return result


@dataclass(frozen=True)
class Measured:
    """One model's Top-1 and Cons.k (and Cons.K for more K) on the held-out images of ``data``."""

    name: str
    dataset: str
    data: str
    classes: int
    evaluation: ShiftEvaluation
    more: dict[int, float]
    seconds: float
    method: str


@dataclass(frozen=True)
class ConsistencyResult:
    """Top-1 and Cons.k of several models on the same settings, beside the paper's Table 2."""

    max_shift: int
    samples: int
    passes: int
    seed: int
    split: str
    models: list[Measured] = field(default_factory=list)

    def rows(self) -> list[dict]:
        """One row per model: method, data set, Top-1, Cons.k (also as ``cons<k>``, and ``cons<K>`` for more K), Cons.k
        on the images classified right / wrong, the settings, the agreement curve and the paper's numbers."""
        return [{"method": m.method, "dataset": m.dataset, "top1": m.evaluation.top1, "cons": m.evaluation.cons,
                 f"cons{self.max_shift}": m.evaluation.cons, **{f"cons{k}": v for k, v in m.more.items()},
                 "cons_right": m.evaluation.cons_right, "cons_wrong": m.evaluation.cons_wrong, "model": m.name,
                 "data": m.data, "classes": m.classes, "max_shift": self.max_shift, "samples": self.samples,
                 "passes": self.passes, "seed": self.seed, "split": self.split, "seconds": round(m.seconds, 2),
                 "agree_curve": m.evaluation.agree_curve, **paper_columns(m.method)} for m in self.models]


def datasets() -> list[str]:
    """The sets the lab offers: the shipped ones, and the real handwritten digits when scikit-learn (which ships them) is installed."""
    return [*SHIPPED_SETS, *(["digits"] if digits.available() else [])]


def class_names(dataset: str) -> list[str]:
    """The class names of a named set (``shapes``, ``shapes100``, ``digits``, ...), in label order."""
    return list(named_source(dataset).classes)


def paper_columns(method: str) -> dict[str, float | None]:
    """The paper's Table 2 row of a method (None where the paper has none)."""
    row = PAPER_TABLE2.get(method)
    return {f"paper_{short}_{metric}": row[column][i] if row else None
            for short, column in (("c10", "cifar10"), ("c100", "cifar100")) for i, metric in enumerate(("top1", "cons8"))}


def consistency(models: Sequence[tuple[ShiftNet, str]], data: str | Path | None = None, samples: int = 2000,
                max_shift: int = 8, passes: int = 5, seed: int = EVAL_SEED, split: str = "test",
                more_shifts: Sequence[int] = (), device: torch.device | None = None,
                on_progress: ProgressFn | None = None) -> ConsistencyResult:
    """Top-1 and Cons.k of each ``(model, name)`` on ``data`` (default: each model's own data set); ``more_shifts``:
    also Cons.K for these K on the same images."""
    source = open_patch_source(data) if data else None
    result = ConsistencyResult(max_shift, samples, passes, seed, split)
    for model, name in models:
        if source is not None and len(source.classes) != len(model.config.classes):
            raise ValueError(f"{name} predicts {len(model.config.classes)} classes but {source.name} has {len(source.classes)}")
        start = time.perf_counter()
        ev = evaluate_shift(model, source, samples=samples, max_shift=max_shift, passes=passes, seed=seed, device=device,
                            split=split, on_progress=on_progress)
        model_source = source or default_source(model.config)
        more = {}
        if more_shifts:
            images, _ = held_out_images(model_source, samples, seed, split)
            more = {k: cons_k(model, images, k, passes, seed=seed, device=device) for k in more_shifts}
        result.models.append(Measured(str(name), model.config.dataset if source is None else dataset_key(source),
                                      model_source.name, len(model.config.classes), ev, more,
                                      time.perf_counter() - start, model.config.method))
    return result


def shipped(sets: Sequence[str], explicit: bool = True) -> tuple[list[tuple[ShiftNet, str]], list[str]]:
    """``(model, "set/method")`` of every shipped model of ``sets``, and a note per model or set skipped: a model left
    out of assets/ with a recorded row is skipped with its numbers; a set with no checkpoint at all is skipped unless
    ``explicit`` (asked for by name: then its missing file is an error, as is any other missing model)."""
    models, notes = [], []
    for dataset in sets:
        if not explicit and not any(shipped_path(m, dataset).is_file() for m in METHODS):
            notes.append(f"no shipped models for {dataset} ({shipped_path(METHODS[0], dataset).parent}); skipped")
            continue
        for method in METHODS:
            if not shipped_path(method, dataset).is_file() and (row := recorded_row(method, dataset)) is not None:
                notes.append(f"{dataset}/{method} is not shipped (asset budget); its recorded row: Top-1 {row['top1']:.1f}, "
                             f"Cons.8 {row['cons']:.1f}; skipped")
                continue
            models.append((load_shipped(method, dataset)[0], f"{dataset}/{method}"))
    return models, notes


@dataclass(frozen=True)
class SlideResult:
    """Each model's class probabilities (k + 1, classes) as one image slides right 0..k px."""

    max_shift: int
    classes: tuple[str, ...]
    probs: dict[str, np.ndarray]

    def rows(self) -> list[dict]:
        """Every model's class probabilities (in percent) at every offset from the original position."""
        return [{"model": name, "offset_px": s - self.max_shift // 2,
                 **{f"{c}_pct": float(100 * q) for c, q in zip(self.classes, p[s])}}
                for name, p in self.probs.items() for s in range(len(p))]


def slide(models: dict[str, ShiftNet], image: torch.Tensor, max_shift: int, classes: Sequence[str]) -> SlideResult:
    """Class probabilities of each named model as the normalised ``image`` slides across its canvas."""
    return SlideResult(max_shift, tuple(classes), {name: slide_one(m, image, max_shift).numpy() for name, m in models.items()})
