"""GAPNet, PermuteNet and a plain GAP classifier on the paper's ResNet-18 (paper Fig. 1).

- GAPNet: latent -> Conv2d(C, K, 3, padding=1) -> global average pool; those K values are the logits.
- PermuteNet: latent -> GAP -> channels shuffled -> Linear(C, K). As in the authors' code the
  permutation is drawn afresh on every forward call (one per batch) in training and evaluation;
  ``permute="fixed"`` uses one permutation stored with the weights instead.
- Classifier: latent -> GAP -> Linear(C, K), no shuffle: the control.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.core.checkpoints import load_state_into
from engine.core.storage import CheckpointError, load_torch, save_torch, weight_entries
from engine.models.resnet import PaperResNet18, canonical_padding

HEADS = ("gapnet", "permutenet", "classifier")
TASKS = ("location", "object")
HEAD_LABELS = {"gapnet": "GAPNet", "permutenet": "PermuteNet", "classifier": "Classifier"}


@dataclass(frozen=True)
class ProbeConfig:
    """Everything needed to rebuild a probe network and its data."""

    head: str = "gapnet"
    task: str = "location"
    grid: int = 3
    padding: str = "zero"
    width: float = 0.25
    patch: int = 32
    num_classes: int = 10
    permute: str = "per_call"
    background: str = "mean"

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if not 2 <= self.grid <= 9:
            raise ValueError(f"grid must be between 2 and 9, got {self.grid}")
        if self.permute not in ("per_call", "fixed"):
            raise ValueError(f"permute must be 'per_call' or 'fixed', got {self.permute!r}")
        canonical_padding(self.padding)

    @property
    def num_outputs(self) -> int:
        return self.grid * self.grid if self.task == "location" else self.num_classes

    @property
    def canvas(self) -> int:
        return self.grid * self.patch

    @property
    def label(self) -> str:
        return f"{HEAD_LABELS[self.head]} {self.grid}x{self.grid} {self.task} ({self.padding}, width {self.width:g})"

    def with_(self, **changes: Any) -> "ProbeConfig":
        return replace(self, **changes)


class ProbeNet(nn.Module):
    """Backbone plus one of the three heads; ``gap_vector`` exposes the pooled latent."""

    def __init__(self, config: ProbeConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = PaperResNet18(config.width, config.padding)
        channels, k = self.backbone.out_channels, config.num_outputs
        if config.head == "gapnet":
            self.head = nn.Conv2d(channels, k, kernel_size=3, padding=1)
            self.head.padding_mode = canonical_padding(config.padding)
        else:
            self.head = nn.Linear(channels, k)
        self.register_buffer("fixed_perm", torch.randperm(channels), persistent=True)

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of the stem and the four backbone stages (what the channel-code tools pool)."""
        return self.backbone.stages(x)

    def gap_vector(self, x: torch.Tensor) -> torch.Tensor:
        """The globally average-pooled latent (n, C): for GAPNet, the pooled backbone output."""
        return self.backbone(x).mean((2, 3))

    def permutation(self, channels: int, device: torch.device) -> torch.Tensor | None:
        """The channel permutation for this forward call (``None`` when the head does not shuffle)."""
        if self.config.head != "permutenet":
            return None
        if self.config.permute == "fixed":
            return self.fixed_perm
        return torch.randperm(channels, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.backbone(x)
        if self.config.head == "gapnet":
            return self.head(z).mean((2, 3))
        pooled = z.mean((2, 3))
        perm = self.permutation(pooled.shape[1], pooled.device)
        return self.head(pooled if perm is None else pooled[:, perm])


PROBE_FORMAT = "poslab-probe/1"  # the tag save_probe writes and the loaders check


def build_probe(config: ProbeConfig) -> ProbeNet:
    """A freshly initialised probe network for ``config``."""
    return ProbeNet(config)


def save_probe(model: ProbeNet, path: Path, meta: dict[str, Any], train_state: dict[str, Any] | None = None) -> Path:
    """Write weights (fp16, to keep assets small; fp32 with ``train_state``, a run to be continued), config and
    ``meta`` (command, seed, metrics) atomically."""
    return save_torch({"format": PROBE_FORMAT, "config": asdict(model.config), **weight_entries(model, train_state),
                       "meta": meta}, path)


def load_probe(source: Path | str | bytes, name: str | None = None) -> tuple[ProbeNet, dict[str, Any]]:
    """Rebuild a probe written by :func:`save_probe` (a path or an upload's bytes); else :class:`CheckpointError`."""
    name = name or (Path(source).name if not isinstance(source, bytes) else "upload")
    return probe_from_blob(load_torch(source, name), name)


def is_probe_blob(blob: object) -> bool:
    """Whether a loaded checkpoint object carries PosLab's probe format tag."""
    return isinstance(blob, dict) and blob.get("format") == PROBE_FORMAT


def probe_from_blob(blob: object, name: str) -> tuple[ProbeNet, dict[str, Any]]:
    """Rebuild a probe from an already loaded checkpoint object (so callers that inspect it read the file once)."""
    if not is_probe_blob(blob):
        raise CheckpointError(f"{name} is not a PosLab probe checkpoint (no '{PROBE_FORMAT}' format tag).")
    config = ProbeConfig(**blob["config"])
    model = load_state_into(build_probe(config), blob["state_dict"], name)
    return model.eval(), blob.get("meta", {})


def predict_proba(model: ProbeNet, canvases: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities for normalised canvases, in fp32 (no grad)."""
    with torch.inference_mode():
        return F.softmax(model(canvases).float(), dim=1)
