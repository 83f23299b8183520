"""The shift-lab checkpoints that ship in ``assets/shift`` and the paper's Table 2 for comparison."""
from __future__ import annotations

import json
from pathlib import Path

from engine.core.storage import ASSETS
from engine.models.shift import METHODS, ShiftNet, load_shift_model

SHIFT_ASSETS = ASSETS / "shift"
# Paper Table 2 (ResNet-18): (Top-1, Cons.8) on CIFAR-10 and CIFAR-100; the combination was never measured.
PAPER_TABLE2: dict[str, dict[str, tuple[float, float]] | None] = {
    "baseline": {"cifar10": (93.1, 90.8), "cifar100": (72.6, 70.1)},
    "augshift": {"cifar10": (92.1, 94.8), "cifar100": (72.6, 85.6)},
    "blurpool": {"cifar10": (92.5, 92.5), "cifar100": (72.4, 78.2)},
    "augshift+blurpool": None,
}


UNSHIPPED = "unshipped.json"  # rows of models trained by their recorded command but left out of assets/
SHIPPED_SETS = {"shapes": "generated shapes (10 classes)", "shapes100": "generated shapes-100 (100 classes)"}


def shipped_path(method: str, dataset: str = "shapes") -> Path:
    """Where the shipped checkpoint of ``method`` trained on ``dataset`` lives (it may not exist)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {'|'.join(METHODS)}, got {method!r}")
    if dataset not in SHIPPED_SETS:
        raise ValueError(f"dataset must be one of {'|'.join(SHIPPED_SETS)}, got {dataset!r}")
    folder = SHIFT_ASSETS if dataset == "shapes" else SHIFT_ASSETS / dataset
    return folder / f"{method.replace('+', '-')}.pt"


def recorded_row(method: str, dataset: str) -> dict | None:
    """The measured row (Top-1, Cons.8, the command) of a model trained but not shipped (the asset budget), if any."""
    path = shipped_path(method, dataset).parent / UNSHIPPED
    rows = json.loads(path.read_text()) if path.is_file() else []
    return next((r for r in rows if r["method"] == method and r["dataset"] == dataset), None)


def load_shipped(method: str, dataset: str = "shapes") -> tuple[ShiftNet, dict]:
    """Load a shipped model; ``FileNotFoundError`` says what was measured without it, or the command that makes it."""
    path = shipped_path(method, dataset)
    if not path.is_file():
        row = recorded_row(method, dataset)
        if row is not None:
            raise FileNotFoundError(f"{method} on {dataset} is not shipped (asset budget); measured Top-1 {row['top1']:.1f}, "
                                    f"Cons.8 {row['cons']:.1f} on {row['samples']} test images; made by `{row['command']}` "
                                    f"(see MODEL_CARD.md).")
        data = "" if dataset == "shapes" else f" --data {dataset}"
        raise FileNotFoundError(f"No shipped checkpoint {path.name} in {path.parent}; make it with "
                                f"`python -m engine train-shift --method {method}{data} --out {path}` (see MODEL_CARD.md).")
    return load_shift_model(path)
