"""torchvision DeepLabV3 models split into backbone (the latent) and head, plus kernel-flipped copies.

Latent = the backbone output that feeds the ASPP head (``model.backbone(x)["out"]``). The CPU
default is torchvision's ``DeepLabV3`` class with a dilated MobileNetV3-Small backbone (576-channel
latent, output stride 16, ASPP rates 6/12/18): it was chosen by measurement (see
assets/seg/MODEL_CARD.md) because it is as fast as MobileNetV3-Large on the head yet its fp16
weights (12 MB) fit the asset budget where the Large model's (22 MB) do not.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import engine.tvfix  # noqa: F401  (before torchvision)
from engine.seg.classes import NUM_CLASSES
from engine.storage import ASSETS, CheckpointError, fingerprint, load_torch, save_torch
from torchvision.models import mobilenet_v3_large, mobilenet_v3_small, resnet50
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation import DeepLabV3
from torchvision.models.segmentation.deeplabv3 import DeepLabHead

ARCHS = ("deeplabv3_mobilenet_v3_small", "deeplabv3_mobilenet_v3_large", "deeplabv3_resnet50")
DEFAULT_ARCH = "deeplabv3_mobilenet_v3_small"
DEFAULT_WEIGHTS = ASSETS / "seg" / f"{DEFAULT_ARCH}.pt"
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def build_model(arch: str = DEFAULT_ARCH, num_classes: int = NUM_CLASSES, output_stride: int = 16) -> DeepLabV3:
    """A randomly initialised DeepLabV3 (nothing downloaded); resnet50 takes output stride 8 or 16."""
    if arch == "deeplabv3_resnet50":
        if output_stride not in (8, 16):
            raise ValueError("deeplabv3_resnet50 supports output stride 8 or 16")
        dilate = [False, output_stride == 8, True]
        rates = (12, 24, 36) if output_stride == 8 else (6, 12, 18)
        trunk = resnet50(weights=None, replace_stride_with_dilation=dilate)
        return DeepLabV3(IntermediateLayerGetter(trunk, {"layer4": "out"}), DeepLabHead(2048, num_classes, rates))
    if arch in ("deeplabv3_mobilenet_v3_small", "deeplabv3_mobilenet_v3_large"):
        if output_stride != 16:
            raise ValueError(f"{arch} has output stride 16")
        maker = mobilenet_v3_small if arch.endswith("small") else mobilenet_v3_large
        features = maker(weights=None, dilated=True).features
        last = len(features) - 1
        channels = features[last].out_channels
        return DeepLabV3(IntermediateLayerGetter(features, {str(last): "out"}), DeepLabHead(channels, num_classes, (6, 12, 18)))
    raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHS}")


@dataclass
class SegModel:
    """A model in eval mode with what identifies it: architecture, settings and a weights hash."""

    model: DeepLabV3
    arch: str
    output_stride: int = 16
    meta: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    @property
    def channels(self) -> int:
        """Width of the latent (number of channels that can be ranked and zeroed)."""
        return self.model.classifier[0].convs[0][0].in_channels


def wrap(model: DeepLabV3, arch: str, output_stride: int = 16, meta: dict[str, Any] | None = None) -> SegModel:
    """Put a model in eval mode and fingerprint its weights (the cache key for latents and rankings)."""
    model.eval()
    flat = {k: v.reshape(-1) for k, v in model.state_dict().items()}  # flattened: the shipped rankings are keyed by this hash
    return SegModel(model, arch, output_stride, meta or {}, fingerprint(arch, flat))


def save_model(seg: SegModel, path: Path) -> Path:
    """Save the weights as an fp16 state dict (half the size; BN statistics included) with its settings."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in seg.model.state_dict().items()}
    return save_torch({"arch": seg.arch, "output_stride": seg.output_stride, "meta": seg.meta, "state_dict": state}, path)


def load_model(path: Path | str = DEFAULT_WEIGHTS) -> SegModel:
    """Load a model saved by :func:`save_model` into fp32 (refusing files that are not plain tensors)."""
    ckpt = load_torch(path)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or ckpt.get("arch") not in ARCHS:
        raise CheckpointError(f"{Path(path).name} is not a PosLab segmentation checkpoint.")
    model = build_model(ckpt["arch"], output_stride=ckpt["output_stride"])
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()})
    except RuntimeError as err:
        raise CheckpointError(f"{Path(path).name} does not match {ckpt['arch']}: {str(err)[:200]}") from err
    return wrap(model, ckpt["arch"], ckpt["output_stride"], ckpt.get("meta"))


def to_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Normalised float NCHW batch from uint8 NHWC images."""
    x = torch.as_tensor(images).permute(0, 3, 1, 2).float().div_(255)
    return (x - MEAN.to(x.device)) / STD.to(x.device)


def backbone_latent(model: DeepLabV3, x: torch.Tensor) -> torch.Tensor:
    """The latent z = backbone output that feeds the ASPP head."""
    return model.backbone(x)["out"]


def head_logits(model: DeepLabV3, z: torch.Tensor, size: tuple[int, int], mask: torch.Tensor | None = None) -> torch.Tensor:
    """Logits at image size from a latent, with channels multiplied by ``mask`` (0 = zeroed) first.

    The same ops as ``DeepLabV3.forward`` after the backbone; ``z`` and the model are not modified.
    """
    if mask is not None:
        z = z * mask.to(device=z.device, dtype=z.dtype).view(1, -1, 1, 1)
    return F.interpolate(model.classifier(z), size=size, mode="bilinear", align_corners=False)


def kernel_flipped(model: DeepLabV3) -> DeepLabV3:
    """A copy whose every backbone conv kernel is mirrored along its width (Kernel-Flip); the original is untouched."""
    flipped = copy.deepcopy(model)
    with torch.no_grad():
        for module in flipped.backbone.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.copy_(module.weight.flip(-1))
    return flipped.eval()
