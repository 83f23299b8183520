"""The probe checkpoints that ship in ``assets/probe``, how they are named, and the paper's Table 1 beside them."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from engine.core.storage import ASSETS
from engine.data.patches import PatchSource, open_patch_source
from engine.models.probe import HEAD_LABELS, ProbeNet, load_probe
from engine.probe.evaluate import EVAL_SEED, channel_sum_accuracy, evaluate_probe

PROBE_ASSETS = ASSETS / "probe"
# Rows measured from checkpoints that do not ship (the 40 MB asset budget), each with the command that made it.
UNSHIPPED_ROWS = PROBE_ASSETS / "table1-unshipped.json"
TABLE1_SEED_OFFSET = 1  # Table 1 is measured at EVAL_SEED + 1: not the placements a checkpoint's own eval used

# Paper Table 1 (ResNet-18): location / object accuracy per padding, net and grid.
PAPER_TABLE1 = {
    ("location", "zero", "gapnet"): {3: 100.0, 5: 100.0, 7: 100.0},
    ("location", "zero", "permutenet"): {3: 78.8, 5: 37.8, 7: 21.4},
    ("location", "reflect", "gapnet"): {3: 100.0, 5: 100.0, 7: 100.0},
    ("location", "reflect", "permutenet"): {3: 78.3, 5: 36.3, 7: 23.2},
    ("location", "replicate", "gapnet"): {3: 100.0, 5: 100.0, 7: 100.0},
    ("location", "replicate", "permutenet"): {3: 78.3, 5: 40.1, 7: 23.6},
    ("object", "zero", "gapnet"): {3: 82.6, 5: 82.4, 7: 82.1},
    ("object", "zero", "permutenet"): {3: 73.6, 5: 72.2, 7: 69.9},
    ("object", "reflect", "gapnet"): {3: 83.8, 5: 83.4, 7: 82.9},
    ("object", "reflect", "permutenet"): {3: 71.1, 5: 71.4, 7: 65.7},
    ("object", "replicate", "gapnet"): {3: 83.1, 5: 82.9, 7: 82.8},
    ("object", "replicate", "permutenet"): {3: 72.0, 5: 71.5, 7: 71.4},
}


def paper_accuracy(task: str, padding: str, head: str, grid: int) -> float | None:
    """The paper's Table 1 number for this cell, if it reported one."""
    return PAPER_TABLE1.get((task, padding, head), {}).get(grid)


def shipped_probe_path(head: str, task: str, grid: int, padding: str = "zero", folder: Path = PROBE_ASSETS) -> Path:
    """Where the checkpoint for this setting lives in ``folder`` (default: the shipped assets; it may not exist)."""
    return Path(folder) / f"{task}-{head}-g{grid}-{padding}.pt"


def load_shipped_probe(head: str, task: str, grid: int, padding: str = "zero") -> tuple[ProbeNet, dict]:
    """Load a shipped probe; ``FileNotFoundError`` says which command makes it when missing."""
    path = shipped_probe_path(head, task, grid, padding)
    if not path.is_file():
        raise FileNotFoundError(f"No shipped checkpoint {path.name} in {PROBE_ASSETS}; make it with "
                                f"`python -m engine train-probe --head {head} --task {task} --grid {grid} --padding {padding} --out {path}`.")
    return load_probe(path)


@dataclass(frozen=True)
class Table1Row:
    """One measured cell of Table 1, where it came from, and the paper's number beside it."""

    task: str
    padding: str
    grid: int
    net: str
    accuracy: float
    samples: int
    paper: float | None
    source: str  # "checkpoint" (evaluated now) or "measured row" (from UNSHIPPED_ROWS)
    command: str | None
    sum_only: float | None = None  # PermuteNet: accuracy from the channel sum alone, same placements (see below)

    def as_dict(self) -> dict:
        return asdict(self)


def measure_table1(tasks: Iterable[str], paddings: Iterable[str], grids: Iterable[int], folder: Path = PROBE_ASSETS,
                   data: str | None = None, samples: int = 2000, device: torch.device | None = None,
                   unshipped: Path | None = UNSHIPPED_ROWS,
                   on_missing: Callable[[str], None] | None = None) -> list[Table1Row]:
    """Evaluate every (task, padding, grid, net) checkpoint found in ``folder`` on fresh placements (PermuteNet also
    from its channel sum alone: :func:`engine.probe.evaluate.channel_sum_accuracy`); a cell without a checkpoint is taken
    from the ``unshipped`` rows when they hold it, else reported to ``on_missing``."""
    stored = {_key(r): r for r in json.loads(unshipped.read_text())} if unshipped and unshipped.is_file() else {}
    sources: dict[int, PatchSource] = {}
    rows = []
    for task in tasks:
        for padding in paddings:
            for grid in grids:
                for head in ("gapnet", "permutenet"):
                    key = (task, padding, grid, HEAD_LABELS[head])
                    path = shipped_probe_path(head, task, grid, padding, folder)
                    if path.is_file():
                        model, meta = load_probe(path)
                        source = sources.setdefault(model.config.patch, open_patch_source(data, model.config.patch))
                        seed = EVAL_SEED + TABLE1_SEED_OFFSET
                        result = evaluate_probe(model, source, samples, seed, device=device)
                        sum_only = channel_sum_accuracy(model, source, samples, seed)[1] if head == "permutenet" else None
                        rows.append(Table1Row(*key, round(result.accuracy, 2), result.samples,
                                              paper_accuracy(task, padding, head, grid), "checkpoint", command_chain(meta),
                                              None if sum_only is None else round(sum_only, 2)))
                    elif key in stored:
                        rows.append(Table1Row(**{**stored[key], "source": "measured row"}))
                    elif on_missing is not None:
                        on_missing(f"{task} {padding} {grid}x{grid} {HEAD_LABELS[head]}: no checkpoint {path.name} "
                                   f"in {folder} and no measured row")
    return rows


def command_chain(meta: dict) -> str | None:
    """The commands that made a checkpoint, first leg first (a continued run records the one it started from)."""
    commands, node = [], meta
    while node:
        if node.get("command"):
            commands.append(node["command"])
        node = node.get("init")
    return " ; then ".join(reversed(commands)) or None


def _key(row: dict) -> tuple[str, str, int, str]:
    return row["task"], row["padding"], row["grid"], row["net"]
