"""A user's own torchvision image classifier, probed by the channel-code tools the way a ProbeNet is.

The weights come as a state dict (plain or wrapped, ``module.`` prefixes ok: ``engine.core.checkpoints``);
the architecture is built with ``weights=None`` (nothing downloaded), told from the keys unless named,
with the class count read from the final Linear layer. Its five stages by resolution stand in for the
probe's stem and layer1-4: a ResNet's own, a MobileNet's ``features`` split before each downsampling
block. The last one's global average is the vector its classifier reads.

Canvases arrive in this app's normalised space (``engine.data.grid``); they are converted to the
ImageNet normalisation torchvision classifiers are trained with.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping

import torch
from torch import nn
from torchvision import models as tvm
from torchvision.models import ResNet

from engine.core.checkpoints import load_state_into
from engine.core.storage import CheckpointError
from engine.data.grid import denormalize
from engine.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from engine.models.probe import ProbeConfig

ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "mobilenet_v2", "mobilenet_v3_small",
         "mobilenet_v3_large")
DEFAULT_CLASSES = 1000  # torchvision's, when the final layer's weight is missing (the mismatch report names it)


@functools.cache
def _layout(arch: str) -> tuple[frozenset[str], str]:
    """The state-dict keys of ``arch`` and its final Linear layer's name (built on the meta device: no memory used)."""
    with torch.device("meta"):
        model = getattr(tvm, arch)(weights=None)
    last = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    return frozenset(_keys(model.state_dict())), last


def _keys(state: Mapping[str, torch.Tensor]) -> set[str]:
    return {k for k in state if not k.endswith("num_batches_tracked")}  # older files lack these


def is_classifier_state(state: Mapping[str, torch.Tensor]) -> bool:
    """Whether a state dict should be read as an image classifier: segmentation models' trunks are under ``backbone.``."""
    return not any(k.startswith("backbone.") for k in state)


def detect_arch(state: Mapping[str, torch.Tensor]) -> str:
    """The torchvision classifier whose keys are exactly those of ``state``."""
    keys = _keys(state)
    for arch in ARCHS:
        if _layout(arch)[0] == keys:
            return arch
    sample = ", ".join(list(state)[:3])
    raise CheckpointError(f"cannot tell the architecture from the keys (e.g. {sample}): expected a torchvision image "
                          f"classifier state dict of one of {', '.join(ARCHS)}, or a DeepLabV3/FCN one (backbone.*, "
                          "classifier.*); choose the architecture explicitly.")


def to_imagenet(canvases: torch.Tensor) -> torch.Tensor:
    """Canvases in this app's normalised space -> ImageNet-normalised inputs (the same pixels)."""
    return (denormalize(canvases) - IMAGENET_MEAN.to(canvases.device)) / IMAGENET_STD.to(canvases.device)


def _downsamples(block: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) and max(m.stride) > 1 for m in block.modules())


def split_stages(net: nn.Module) -> list[nn.Module]:
    """The five resolution stages of a ResNet or of a ``features`` trunk, in order (the same modules, not copies)."""
    if isinstance(net, ResNet):
        return [nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool), net.layer1, net.layer2, net.layer3, net.layer4]
    groups: list[list[nn.Module]] = []
    for block in net.features:
        if not groups or _downsamples(block):
            groups.append([])
        groups[-1].append(block)
    return [nn.Sequential(*group) for group in groups]


class UserClassifier(nn.Module):
    """A torchvision classifier behind the probe interface: ``config`` (the canvases) and ``stages`` (what is pooled)."""

    def __init__(self, net: nn.Module, arch: str, grid: int = 3) -> None:
        super().__init__()
        self.net, self.arch = net.eval(), arch
        self.num_classes = net.get_submodule(_layout(arch)[1]).out_features
        self.config = ProbeConfig(head="classifier", task="object", grid=grid, width=1.0, num_classes=self.num_classes)
        self._stages = split_stages(net)  # a plain list: registered once, under ``net``

    @property
    def label(self) -> str:
        return f"{self.arch} ({self.num_classes} classes)"

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of the five stages for canvases in this app's normalised space."""
        outs, x = [], to_imagenet(x)
        for stage in self._stages:
            x = stage(x)
            outs.append(x)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for canvases in this app's normalised space."""
        return self.net(to_imagenet(x))


def classifier_from_state(state: Mapping[str, torch.Tensor], name: str = "checkpoint", arch: str = "auto",
                          grid: int = 3) -> UserClassifier:
    """A user's unwrapped state dict as a :class:`UserClassifier` (``arch`` = ``auto``: told from the keys).

    Weights that do not fit raise :class:`CheckpointError` naming the missing, unexpected and mis-shaped keys.
    """
    arch = detect_arch(state) if arch == "auto" else arch
    if arch not in ARCHS:
        raise ValueError(f"unknown classifier architecture {arch!r}; expected one of {ARCHS}")
    last = state.get(f"{_layout(arch)[1]}.weight")
    classes = int(last.shape[0]) if last is not None and last.dim() == 2 else DEFAULT_CLASSES
    net = getattr(tvm, arch)(weights=None, num_classes=classes)
    load_state_into(net, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, name)
    return UserClassifier(net, arch, grid)
