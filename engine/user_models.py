"""A user's checkpoint of any kind this app can use (probe or segmentation), told apart by its contents."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.models.probe import ProbeNet, load_probe
from engine.seg.models import SegModel, model_from_blob
from engine.storage import load_torch

KINDS = ("probe", "segmentation")


@dataclass
class UserModel:
    """A loaded checkpoint: its kind, the model and a one-line description."""

    kind: str
    model: ProbeNet | SegModel
    label: str


def load_user_checkpoint(source: Path | str | bytes, name: str | None = None, arch: str = "auto",
                         config: str = "torchvision") -> UserModel:
    """A PosLab probe checkpoint, else a segmentation checkpoint (this app's or a torchvision state dict).

    Bytes are read in memory (never written to disk); anything unusable raises ``CheckpointError``.
    """
    name = name or (Path(source).name if not isinstance(source, bytes) else "upload")
    blob = load_torch(source, name)
    if isinstance(blob, dict) and blob.get("format") == "poslab-probe/1":
        model, _ = load_probe(source, name)
        return UserModel("probe", model, model.config.label)
    seg = model_from_blob(blob, name, arch, config)
    return UserModel("segmentation", seg, seg.label)
