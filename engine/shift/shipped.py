"""The shift-lab checkpoints that ship in ``assets/shift`` and the paper's Table 2 for comparison."""
from __future__ import annotations

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


SHIPPED_SETS = {"shapes": "generated shapes (10 classes)", "shapes100": "generated shapes-100 (100 classes)"}


def shipped_path(method: str, dataset: str = "shapes") -> Path:
    """Where the shipped checkpoint of ``method`` trained on ``dataset`` lives (it may not exist)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {'|'.join(METHODS)}, got {method!r}")
    if dataset not in SHIPPED_SETS:
        raise ValueError(f"dataset must be one of {'|'.join(SHIPPED_SETS)}, got {dataset!r}")
    folder = SHIFT_ASSETS if dataset == "shapes" else SHIFT_ASSETS / dataset
    return folder / f"{method.replace('+', '-')}.pt"


def load_shipped(method: str, dataset: str = "shapes") -> tuple[ShiftNet, dict]:
    """Load a shipped model; ``FileNotFoundError`` names the command that makes it when missing."""
    path = shipped_path(method, dataset)
    if not path.is_file():
        data = "" if dataset == "shapes" else f" --data {dataset}"
        raise FileNotFoundError(f"No shipped checkpoint {path.name} in {path.parent}; make it with "
                                f"`python -m engine train-shift --method {method}{data} --out {path}` (see MODEL_CARD.md).")
    return load_shift_model(path)
