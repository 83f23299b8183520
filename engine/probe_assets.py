"""The probe checkpoints that ship in ``assets/probe`` and how they are named."""
from __future__ import annotations

from pathlib import Path

from engine.models.probe import ProbeNet, load_probe
from engine.storage import ASSETS

PROBE_ASSETS = ASSETS / "probe"


def shipped_probe_path(head: str, task: str, grid: int, padding: str = "zero") -> Path:
    """Where the shipped checkpoint for this setting lives (it may not exist)."""
    return PROBE_ASSETS / f"{task}-{head}-g{grid}-{padding}.pt"


def list_shipped_probes() -> list[Path]:
    """All shipped probe checkpoints, sorted by name."""
    return sorted(PROBE_ASSETS.glob("*.pt"))


def load_shipped_probe(head: str, task: str, grid: int, padding: str = "zero") -> tuple[ProbeNet, dict]:
    """Load a shipped probe; ``FileNotFoundError`` says which command makes it when missing."""
    path = shipped_probe_path(head, task, grid, padding)
    if not path.is_file():
        raise FileNotFoundError(f"No shipped checkpoint {path.name} in {PROBE_ASSETS}; make it with "
                                f"`python -m engine train-probe --head {head} --task {task} --grid {grid} --padding {padding} --out {path}`.")
    return load_probe(path)
