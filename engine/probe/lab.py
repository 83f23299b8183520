"""The grid probe's one API, shared by the CLI (``train-probe``, ``table1``) and the Grid probe page: train (and save),
evaluate on fresh placements, sweep one image over every cell, Table 1. Each returns a typed result with ``rows()``.
The names the page needs from the layers below are re-exported here (``import X as X``), so it imports one module."""
from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from itertools import product
from pathlib import Path

import torch

from engine.core.cache import CACHE, model_key
from engine.core.device import pick_device
from engine.core.progress import Note, ProgressFn, StopToken, quiet
from engine.core.results import Row
from engine.core.runs import Recorder, Run, RunStore, checkpoint_every
from engine.core.stats import format_rate
from engine.core.storage import fingerprint
from engine.core.training import TrainConfig, TrainState
from engine.data.grid import denormalize as denormalize
from engine.data.grid import place_on_grid as place_on_grid
from engine.data.images import ImageError as ImageError
from engine.data.images import decode_image as decode_image
from engine.data.images import image_to_patch as image_to_patch
from engine.data.patches import open_patch_source
from engine.data.shapes import CLASSES as CLASSES
from engine.data.shapes import shape_example as shape_example
from engine.models.probe import HEAD_LABELS as HEAD_LABELS
from engine.models.probe import ProbeConfig, ProbeNet, load_probe, save_probe
from engine.probe.evaluate import CURVE_SEED, EVAL_SEED, ProbeEvaluation, cell_sweep, evaluate_probe, sweep_accuracy
from engine.probe.shipped import PROBE_ASSETS, UNSHIPPED_ROWS, Table1Row, measure_table1, shipped_probe_path
from engine.probe.train import train_probe

CURVE_SAMPLES = 500  # placements per point of a long run's accuracy-vs-steps curve


@dataclass
class TrainedProbe:
    """A trained probe: the network (as saved, when saved), where it was saved, and its meta (provenance, eval)."""

    model: ProbeNet
    config: ProbeConfig
    path: Path | None
    meta: dict = field(default_factory=dict)

    def document(self) -> dict:
        """What ``train-probe --json`` writes: the configuration, then the meta."""
        return {"config": self.config.__dict__, **self.meta}

    def rows(self) -> list[Row]:
        """One flat row: the settings, the evaluation and where the checkpoint is."""
        evaluation = self.meta.get("eval", {})
        return [{**self.config.__dict__, "steps_total": self.meta.get("steps_total"),
                 "accuracy": evaluation.get("accuracy"), "samples": evaluation.get("samples"),
                 "train_seconds": self.meta.get("train_seconds"), "device": self.meta.get("device"),
                 "path": None if self.path is None else str(self.path)}]


def steps_done(meta: dict) -> int:
    """Training steps behind a checkpoint, over all its legs (checkpoints written before ``steps_total`` was
    recorded: its own steps plus those in the command it was continued from)."""
    if "steps_total" in meta:
        return int(meta["steps_total"])
    before = re.search(r"--steps (\d+)", (meta.get("init") or {}).get("command") or "")
    return int(meta.get("train", {}).get("steps", 0)) + (int(before.group(1)) if before else 0)


def train(config: ProbeConfig, settings: TrainConfig, out: Path | None = None, *, data: str | None = None,
          device: str | None = None, init: Path | str | None = None, eval_samples: int = 2000, eval_every: int = 0,
          curve_samples: int = CURVE_SAMPLES, command: str | None = None, on_progress: ProgressFn | None = None,
          stop: StopToken | None = None, on_checkpoint: Callable[[int], None] | None = None,
          note: Note = quiet, resume: TrainState | None = None) -> TrainedProbe:
    """Train one probe (fresh, or continuing ``init``); with ``out``, save it (every ``eval_every`` steps too, with a
    point of its curve on ``curve_samples`` placements, 0: none; ``on_checkpoint(steps so far)`` after each) and
    evaluate exactly what was saved on ``eval_samples`` fresh placements (0: none). With ``resume`` (a recorded run)
    ``settings.steps`` counts the whole run, training picks up at ``resume.step`` from ``init`` and every checkpoint
    on the way keeps the training state: a run continued this way ends as one never stopped."""
    torch_device = pick_device(device)
    source = open_patch_source(data, config.patch)
    start_model, init_meta = load_probe(init) if init else (None, {})
    steps_before = steps_done(init_meta) if start_model is not None and resume is None else 0  # resume: fit counts them
    curve: list[dict] = list(init_meta.get("curve", []))  # a continued run's curve goes on from its start's

    def milestone(step: int, model: ProbeNet, state: TrainState) -> dict[str, float]:
        """Accuracy on fresh placements, and the weights so far saved (a killed long run keeps its progress)."""
        point = {}
        if curve_samples:
            accuracy = evaluate_probe(model, source, curve_samples, CURVE_SEED, device=torch_device).accuracy
            curve.append({"step": steps_before + step, "grid": config.grid, "accuracy": accuracy})
            point = {"eval_accuracy": accuracy}
            note(f"step {step}: {accuracy:.1f}% on {curve_samples} fresh placements" + (f" (saved {out})" if out else ""))
        if out is not None:
            save_probe(model, out, {"command": command, "steps_total": steps_before + step,
                                    "partial": {"step": step, "of": settings.steps}, "curve": curve,
                                    **({"init": {"path": str(init), "command": init_meta.get("command")}} if init else {})},
                       None if resume is None else state.as_dict())
            if on_checkpoint is not None:
                on_checkpoint(steps_before + step)
        return point

    start = time.perf_counter()
    model, history = train_probe(config, settings, source, torch_device, on_progress=on_progress, stop=stop,
                                 init=start_model, milestone=milestone, milestone_every=eval_every, resume=resume)
    seconds = time.perf_counter() - start
    meta: dict = {"command": command, "steps_total": steps_before + settings.steps, "train": settings.as_dict(),
                  "data": source.name, "device": str(torch_device), "train_seconds": round(seconds, 1)}
    if out is not None:
        save_probe(model, out, {})
        model, _ = load_probe(out)  # evaluate exactly what ships (fp16-stored weights)
    if eval_samples:
        result = evaluate_probe(model, source, eval_samples, EVAL_SEED, device=torch_device)
        meta["eval"] = {"accuracy": result.accuracy, "samples": result.samples, "seed": EVAL_SEED}
        note(f"{config.label}: accuracy {result.accuracy:.2f}% on {result.samples} fresh placements "
             f"({seconds:.0f} s on {torch_device})" + (f" -> {out}" if out else ""))
    meta["history"] = [row for row in history if "loss" in row][-5:]
    if curve:  # accuracy vs steps (counted over every leg) on CURVE_SAMPLES fresh placements (seed CURVE_SEED)
        meta["curve"] = curve
    if start_model is not None:  # provenance: what this run continued from
        meta["init"] = {"path": str(init), "command": init_meta.get("command"), "init": init_meta.get("init")}
    if out is not None:
        save_probe(model, out, meta)
        if on_checkpoint is not None:
            on_checkpoint(meta["steps_total"])
    return TrainedProbe(model, config, out, meta)


def train_command(config: ProbeConfig, settings: TrainConfig, data: str | None = None) -> str:
    """The ``train-probe`` command line that trains ``config`` with ``settings`` as a recorded run."""
    parts = ["python", "-m", "engine", "train-probe", "--head", config.head, "--task", config.task, "--grid", config.grid,
             "--padding", config.padding, "--width", config.width, "--patch", config.patch, "--permute", config.permute,
             "--background", config.background, "--steps", settings.steps, "--batch", settings.batch, "--lr", settings.lr,
             "--seed", settings.seed, "--schedule", settings.schedule]
    parts += ["--data", data] if data else []
    return shlex.join(map(str, parts + (["--freeze-bn"] if settings.freeze_bn else []) + ["--run"]))


def run_settings(config: ProbeConfig, settings: TrainConfig, data: str | None, eval_samples: int) -> dict:
    """What a probe run records to be continued: the network, the training, the data and the evaluation size."""
    return {"config": asdict(config), "train": settings.as_dict(), "data": data, "eval_samples": eval_samples}


def start_run(store: RunStore, config: ProbeConfig, settings: TrainConfig, data: str | None = None,
              eval_samples: int = 500) -> Run:
    """A new queued probe-training run in ``store`` (:func:`train_run` does the work)."""
    return store.create("probe", config.label, run_settings(config, settings, data, eval_samples),
                        train_command(config, settings, data), settings.steps)


def train_run(recorder: Recorder, device: str | None = None, note: Note = quiet) -> TrainedProbe:
    """Train the run's probe, or continue it from its last checkpoint (its optimizer, schedule and data stream where
    they stopped) to the same total step count: ``checkpoint.pt`` every few steps (what a Stop keeps), then the
    evaluation on the run's ``eval_samples`` fresh placements."""
    run = recorder.run
    config, settings = ProbeConfig(**run.settings["config"]), TrainConfig(**run.settings["train"])
    state = recorder.train_state()
    result = train(config, replace(settings, steps=run.total), run.checkpoint, data=run.settings.get("data"),
                   device=device, init=run.checkpoint if state.step else None,
                   eval_samples=run.settings.get("eval_samples", 500), eval_every=checkpoint_every(run.total),
                   curve_samples=0, command=run.command, on_progress=recorder.on_progress, stop=recorder.stop,
                   on_checkpoint=recorder.checkpointed, note=note, resume=state)
    recorder.finish({"accuracy": result.meta.get("eval", {}).get("accuracy"),
                     "samples": result.meta.get("eval", {}).get("samples"), "steps_total": result.meta["steps_total"]},
                    rows=[{k: v for k, v in row.items() if k != "path"} for row in result.rows()])  # no server path
    return result


@dataclass
class Evaluation:
    """A probe's accuracy on fresh placements, overall and per cell."""

    name: str
    grid: int
    evaluation: ProbeEvaluation

    def rows(self) -> list[Row]:
        """One row per cell (row-major): its row, column and accuracy (%)."""
        return [{"cell": c, "row": c // self.grid, "col": c % self.grid, "accuracy": round(float(a), 2)}
                for c, a in enumerate(self.evaluation.per_cell.flatten())]


def evaluate(model: ProbeNet, name: str = "", samples: int = 2000, seed: int = EVAL_SEED, data: str | None = None,
             device: str | None = None) -> Evaluation:
    """Accuracy of ``model`` on ``samples`` fresh random placements of held-out patches (``data``: default shapes)."""
    source = open_patch_source(data, model.config.patch)
    return Evaluation(name, model.config.grid, evaluate_probe(model, source, samples, seed, device=pick_device(device)))


@dataclass
class CellSweep:
    """One image placed in every cell in turn: the probabilities per cell (cells, outputs)."""

    task: str
    probs: torch.Tensor

    def accuracy(self, label: int | None = None) -> float:
        """Percentage of cells where the sweep is right (location: the cell; object: ``label``)."""
        return sweep_accuracy(self.probs, self.task, label)

    def rate(self, label: int | None = None) -> str:
        """How often it is right, with n (the cells) and its 95% Wilson interval."""
        cells = len(self.probs)
        return format_rate(round(self.accuracy(label) * cells / 100), cells, 0)

    def rows(self) -> list[Row]:
        """One row per cell: the predicted output and its probability."""
        return [{"cell": c, "predicted": int(p.argmax()), "probability": float(p.max())} for c, p in enumerate(self.probs)]


def sweep(model: ProbeNet, patch: torch.Tensor) -> CellSweep:
    """:func:`engine.probe.evaluate.cell_sweep` of one patch, kept in the shared cache by the weights and the
    image (a PermuteNet's shuffles are drawn once: moving the cell reads the same sweep)."""
    key = f"probe/sweep-{model_key(model, model.config.__dict__, fingerprint(patch))}"
    return CellSweep(model.config.task, CACHE.get_or_compute(key, lambda: cell_sweep(model, patch)))


@dataclass
class Table1:
    """Table 1: measured cells (GAPNet and PermuteNet per task, padding and grid) beside the paper's numbers."""

    cells: list[Table1Row]
    trained: list[TrainedProbe] = field(default_factory=list)

    def rows(self) -> list[Row]:
        return [cell.as_dict() for cell in self.cells]


def table1(tasks: Iterable[str] = ("location",), paddings: Iterable[str] = ("zero",), grids: Iterable[int] = (3, 5, 7),
           folder: Path = PROBE_ASSETS, *, data: str | None = None, samples: int = 2000, device: str | None = None,
           unshipped: bool = True, train_with: TrainConfig | None = None, width: float = 0.25, patch: int = 32,
           command: str | None = None, on_progress: ProgressFn | None = None, note: Note = quiet) -> Table1:
    """Table 1 from the checkpoints in ``folder`` (trained there first with ``train_with``); cells without one come
    from the measured unshipped rows (unless ``unshipped`` is false), the rest are reported to ``note``."""
    tasks, paddings, grids = list(tasks), list(paddings), list(grids)
    trained = []
    if train_with is not None:
        for task, padding, grid, head in product(tasks, paddings, grids, ("gapnet", "permutenet")):
            config = ProbeConfig(head=head, task=task, grid=grid, padding=padding, width=width, patch=patch)
            trained.append(train(config, train_with, shipped_probe_path(head, task, grid, padding, folder), data=data,
                                 device=device, eval_samples=samples, command=command, on_progress=on_progress,
                                 note=note))
    cells = measure_table1(tasks, paddings, grids, Path(folder), data, samples, pick_device(device),
                           UNSHIPPED_ROWS if unshipped else None, on_missing=lambda why: note(f"skipped {why} (use --train)"))
    return Table1(cells, trained)

