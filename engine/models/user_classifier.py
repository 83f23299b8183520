"""A user's own image classifier, probed by the channel-code tools the way a ProbeNet is.

torchvision classifiers come as a state dict (plain or wrapped, ``module.`` prefixes ok: ``engine.core.checkpoints``);
the architecture is built with ``weights=None`` (nothing downloaded), told from the keys unless named,
with the class count read from the final Linear layer. Its five stages by resolution stand in for the
probe's stem and layer1-4: a ResNet's own, a MobileNet's ``features`` split before each downsampling
block. The last one's global average is the vector its classifier reads. Any other network (ONNX, timm:
``engine.models.importers``) has its global pooling and stages found in its graph (``engine.models.gap_graph``).

Canvases arrive in this app's normalised space (``engine.data.grid``); they are converted to what the network
takes (:class:`InputSpec`: ImageNet's normalisation at the canvas's own size for torchvision classifiers).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models as tvm
from torchvision.models import ResNet

from engine.core.checkpoints import load_state_into
from engine.core.storage import CheckpointError
from engine.data.grid import denormalize
from engine.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from engine.models.gap_graph import find_gap
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


@dataclass(frozen=True)
class InputSpec:
    """What a network takes: its input size (``None``: any, the canvas at its own size), normalisation, channel order,
    and where these came from."""

    size: tuple[int, int] | None = None
    mean: tuple[float, float, float] = tuple(IMAGENET_MEAN.flatten().tolist())
    std: tuple[float, float, float] = tuple(IMAGENET_STD.flatten().tolist())
    bgr: bool = False
    source: str = "ImageNet mean and std, the canvas at its own size"

    def to_input(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (n, 3, h, w) -> the network's input: with a fixed size, resized to fit it (aspect kept) and
        padded right and bottom with zeros in the network's normalised space (as PP-OCR pads its text lines)."""
        x = images.flip(1) if self.bgr else images
        if self.size is not None:
            (h, w), (ih, iw) = self.size, images.shape[-2:]
            scale = min(h / ih, w / iw)
            fit = (max(1, min(h, round(ih * scale))), max(1, min(w, round(iw * scale))))
            x = x if fit == (ih, iw) else F.interpolate(x, size=fit, mode="bilinear", align_corners=False)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        x = (x - mean) / std
        if self.size is not None:
            x = F.pad(x, (0, self.size[1] - x.shape[-1], 0, self.size[0] - x.shape[-2]))
        return x

    def sample_shape(self, canvas: int = 96) -> tuple[int, int]:
        """The input size to trace the network with."""
        return self.size or (canvas, canvas)


IMAGENET_INPUT = InputSpec()


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


STAGES = 5  # stem, layer1-4 (``engine.channel.features.LAYERS``)


class UserClassifier(nn.Module):
    """An image classifier behind the probe interface: ``config`` (the canvases) and ``stages`` (what is pooled).

    A torchvision classifier of :data:`ARCHS` is split by its known structure; any other network is
    traced and its GAP and stages found in the graph (``gap``: what was found; ``permute``: a channel shuffle of the
    GAP vector at inference). Found stages beyond five keep the deepest five; fewer repeat the shallowest.
    """

    def __init__(self, net: nn.Module, arch: str, grid: int = 3, spec: InputSpec = IMAGENET_INPUT,
                 name: str | None = None) -> None:
        super().__init__()
        self.arch, self.spec = arch, spec
        self.config = ProbeConfig(head="classifier", task="object", grid=grid, width=1.0)
        if arch in ARCHS and type(net).__module__.startswith("torchvision.models"):
            self.net, self.gap = net.eval(), None
            self.num_classes = net.get_submodule(_layout(arch)[1]).out_features
            self._stages = split_stages(net)  # a plain list: registered once, under ``net``
        else:
            h, w = spec.sample_shape(self.config.canvas)
            gap = find_gap(net.eval(), torch.randn(2, 3, h, w), name or arch)
            self.net, self.gap, self.num_classes = gap.module, gap, gap.num_classes
        self.config = self.config.with_(num_classes=self.num_classes)

    @property
    def label(self) -> str:
        return f"{self.arch} ({self.num_classes} classes)"

    @property
    def stage_names(self) -> list[str]:
        """The graph nodes read as stem and layer1-4 (found networks only)."""
        return _five(self.gap.stages) if self.gap else []

    def _apply(self, fn: Callable, recurse: bool = True) -> UserClassifier:
        super()._apply(fn, recurse)
        if self.gap is not None:  # the extractor shares the weights but holds its own references to constants
            self.gap.extractor._apply(fn, recurse)
        return self

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Canvases in this app's normalised space -> the network's input."""
        return self.spec.to_input(denormalize(x))

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of the five stages for canvases in this app's normalised space."""
        x = self.inputs(x)
        if self.gap is not None:
            return _five(list(self.gap.extractor(x)))
        outs = []
        for stage in self._stages:
            x = stage(x)
            outs.append(x)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores for canvases in this app's normalised space."""
        return self.net(self.inputs(x))


def _five(items: list) -> list:
    """The deepest :data:`STAGES` items, the first repeated in front when there are fewer."""
    items = items[-STAGES:]
    return [items[0]] * (STAGES - len(items)) + items


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
