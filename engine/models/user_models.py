"""A user's checkpoint of any kind this app can use (probe, image classifier or segmentation), told apart by its contents
(an ONNX file or a timm architecture is always an image classifier: ``engine.models.importers``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.core.checkpoints import unwrap_state_dict
from engine.core.storage import load_torch
from engine.models.importers import classifier_from_onnx, classifier_from_timm, read_state
from engine.models.probe import ProbeNet, is_probe_blob, probe_from_blob
from engine.models.segmentation import SegModel, model_from_blob
from engine.models.user_classifier import ARCHS as CLASSIFIER_ARCHS
from engine.models.user_classifier import UserClassifier, classifier_from_state, is_classifier_state


@dataclass
class UserModel:
    """A loaded checkpoint: its kind, the model and a one-line description."""

    kind: str
    model: ProbeNet | UserClassifier | SegModel
    label: str


def load_user_checkpoint(source: Path | str | bytes, name: str | None = None, arch: str = "auto",
                         config: str = "torchvision") -> UserModel:
    """A PosLab probe checkpoint, a torchvision image classifier's state dict, else a segmentation checkpoint; an
    ``.onnx`` file or ``arch`` ``timm:<name>`` (a ``.pth`` / ``.safetensors`` state dict): an image classifier.

    ``arch``: ``auto`` (told from the keys), a classifier, ``timm:<name>`` or a segmentation architecture; ``config``
    applies to segmentation state dicts. Bytes are read in memory (never written to disk); a file over the model size
    limit is not read; anything unusable raises ``CheckpointError``.
    """
    name = name or (Path(source).name if not isinstance(source, bytes) else "upload")
    if name.lower().endswith(".onnx") or arch.startswith("timm:"):
        classifier = (classifier_from_onnx(source, name) if name.lower().endswith(".onnx")
                      else classifier_from_timm(arch[5:], read_state(source, name), name))
        return UserModel("classifier", classifier, classifier.label)
    blob = load_torch(source, name)
    if is_probe_blob(blob):
        model, _ = probe_from_blob(blob, name)
        return UserModel("probe", model, model.config.label)
    state = unwrap_state_dict(blob, name)
    if arch in CLASSIFIER_ARCHS or (arch == "auto" and is_classifier_state(state)):
        classifier = classifier_from_state(state, name, arch)
        return UserModel("classifier", classifier, classifier.label)
    seg = model_from_blob(blob, name, arch, config)
    return UserModel("segmentation", seg, seg.label)
