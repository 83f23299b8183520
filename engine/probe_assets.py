"""The probe checkpoints that ship in ``assets/probe``, how they are named, and the paper's Table 1 beside them."""
from __future__ import annotations

from pathlib import Path

from engine.models.probe import ProbeNet, load_probe
from engine.storage import ASSETS

PROBE_ASSETS = ASSETS / "probe"

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


def shipped_probe_path(head: str, task: str, grid: int, padding: str = "zero") -> Path:
    """Where the shipped checkpoint for this setting lives (it may not exist)."""
    return PROBE_ASSETS / f"{task}-{head}-g{grid}-{padding}.pt"


def load_shipped_probe(head: str, task: str, grid: int, padding: str = "zero") -> tuple[ProbeNet, dict]:
    """Load a shipped probe; ``FileNotFoundError`` says which command makes it when missing."""
    path = shipped_probe_path(head, task, grid, padding)
    if not path.is_file():
        raise FileNotFoundError(f"No shipped checkpoint {path.name} in {PROBE_ASSETS}; make it with "
                                f"`python -m engine train-probe --head {head} --task {task} --grid {grid} --padding {padding} --out {path}`.")
    return load_probe(path)
