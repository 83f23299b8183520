"""The shift-lab classifier: the paper's ResNet-18 -> GAP latent z -> Linear, plain or anti-aliased.

``method`` says how it is trained (``augshift``) and built (``blurpool``); everything needed to
rebuild a network and its data handling is in :class:`ShiftConfig`, saved beside the weights.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.core.checkpoints import load_state_into
from engine.core.storage import CheckpointError, load_torch, save_torch, weight_entries
from engine.data.shapes import CLASSES as SHAPE_CLASSES
from engine.models.blurpool import antialias
from engine.models.resnet import PaperResNet18, canonical_padding

METHODS = ("baseline", "augshift", "blurpool", "augshift+blurpool")
METHOD_LABELS = {"baseline": "ResNet-18", "augshift": "+AugShift", "blurpool": "BlurPool",
                 "augshift+blurpool": "AugShift + BlurPool"}
DEFAULT_LAMBDA = 1.0  # picked on the val split by the sweep in docs/research/2026-shift-table2-search.md
FORMAT = "poslab-shift/1"


@dataclass(frozen=True)
class ShiftConfig:
    """Network and augmentation settings of one shift-lab model."""

    method: str = "baseline"
    width: float = 0.25
    crop: int = 32
    pad: int = 4
    blur_filter: int = 3
    lam: float = DEFAULT_LAMBDA
    padding: str = "zero"
    train_images: int = 1000  # a fixed pool, as in a real data set; 0 = fresh images every step
    clutter: float = 0.0  # harder generated shapes (engine.data.shapes); 0 = the clean set
    classes: tuple[str, ...] = SHAPE_CLASSES
    data: str = "generated shapes"
    dataset: str = "shapes"  # a built-in set of engine.data.named it is measured on, or "external" (a folder)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {'|'.join(METHODS)}, got {self.method!r}")
        if self.crop < 16 or self.pad < 0 or self.lam < 0 or self.train_images < 0:
            raise ValueError("crop must be >= 16 px; pad, lambda and train_images must be >= 0")
        if not 0 <= self.clutter <= 1:
            raise ValueError(f"clutter must be in [0, 1], got {self.clutter}")
        canonical_padding(self.padding)
        object.__setattr__(self, "classes", tuple(self.classes))

    @property
    def augshift(self) -> bool:
        return self.method.startswith("augshift")

    @property
    def blurpool(self) -> bool:
        return self.method.endswith("blurpool")

    @property
    def label(self) -> str:
        extra = f", lambda {self.lam:g}" if self.augshift else ""
        extra += f", blur {self.blur_filter}" if self.blurpool else ""
        return f"{METHOD_LABELS[self.method]} (width {self.width:g}{extra})"

    def with_(self, **changes: Any) -> "ShiftConfig":
        return replace(self, **changes)


class ShiftNet(nn.Module):
    """Backbone -> global average pool (the latent AugShift aligns) -> linear classifier."""

    def __init__(self, config: ShiftConfig) -> None:
        super().__init__()
        self.config = config
        backbone = PaperResNet18(config.width, config.padding)
        self.backbone = antialias(backbone, config.blur_filter) if config.blurpool else backbone
        self.head = nn.Linear(backbone.out_channels, len(config.classes))

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """The GAP latent z (n, C) that precedes the logits."""
        return self.backbone(x).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.latent(x))


def save_shift_model(model: ShiftNet, path: Path, meta: dict[str, Any], train_state: dict[str, Any] | None = None) -> Path:
    """Write weights (fp16: shipped models stay small; fp32 with ``train_state``, a run to be continued), config and
    ``meta`` atomically."""
    return save_torch({"format": FORMAT, "config": asdict(model.config), **weight_entries(model, train_state),
                       "meta": meta}, path)


def load_shift_model(path: Path | str) -> tuple[ShiftNet, dict[str, Any]]:
    """Rebuild a model written by :func:`save_shift_model` (in fp32); raise :class:`CheckpointError` otherwise."""
    blob = load_torch(path)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{Path(path).name} is not a PosLab shift-lab checkpoint (no '{FORMAT}' format tag).")
    try:
        model = ShiftNet(ShiftConfig(**blob["config"]))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{Path(path).name} has an unusable config: {err}") from err
    return load_state_into(model, blob["state_dict"], Path(path).name).eval(), blob.get("meta", {})
