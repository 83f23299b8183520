"""torchvision DeepLabV3 / FCN models split into backbone (the latent) and head, plus kernel-flipped copies.

Latent = the backbone output that feeds the head (``model.backbone(x)["out"]``). The CPU
default is ``deeplabv3_resnet_slim``: torchvision's ``DeepLabV3`` class on a ResNet trunk built by
torchvision's own ``ResNet._make_layer`` with Bottleneck stages a quarter as wide as ResNet-50's
(512-channel sparse post-ReLU latent like the paper's 2048-channel one, output stride 16, ASPP rates
6/12/18 with 96 channels). It was chosen by measurement over MobileNetV3-Small, whose dense hardswish
latent showed no Fig. 4 effect (docs/research/2026-seg-fig6-factor-table.md).

Users' checkpoints: the torchvision builders' layouts (DeepLabV3 ResNet-50/101 and
MobileNetV3-Large, FCN ResNet-50/101, with or without the auxiliary head), plain or wrapped state
dicts; the architecture and the number of classes are read from the keys. Weights do not record
output stride or ASPP rates, so a *config* names them: ``torchvision`` (the builders' settings) or
``paper`` (output stride 16, ASPP rates 6/12/18, the paper's DeepLabV3-ResNet-50).
torchvision's pretrained weights are used only when already in the local torch hub cache.
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
from torchvision.models import mobilenet_v3_large, mobilenet_v3_small, resnet50, resnet101
from torchvision.models import segmentation as tvseg
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.resnet import Bottleneck, ResNet
from torchvision.models.segmentation import FCN, DeepLabV3
from torchvision.models.segmentation.deeplabv3 import ASPP, ASPPPooling, DeepLabHead
from torchvision.models.segmentation.fcn import FCNHead

from engine.core.checkpoints import load_state_into, unwrap_state_dict
from engine.core.storage import ASSETS, CheckpointError, fingerprint, half_state_dict, load_torch, save_torch
from engine.data.cityscapes_classes import NAMES, NUM_CLASSES
from engine.data.normalization import IMAGENET_MEAN, IMAGENET_STD

ARCHS = ("deeplabv3_resnet_slim", "deeplabv3_mobilenet_v3_small", "deeplabv3_mobilenet_v3_large", "deeplabv3_resnet50", "deeplabv3_resnet101",
         "fcn_resnet50", "fcn_resnet101")
CONFIGS = ("torchvision", "paper")
PRETRAINED = {"deeplabv3_resnet50": tvseg.DeepLabV3_ResNet50_Weights, "deeplabv3_resnet101": tvseg.DeepLabV3_ResNet101_Weights,
              "deeplabv3_mobilenet_v3_large": tvseg.DeepLabV3_MobileNet_V3_Large_Weights,
              "fcn_resnet50": tvseg.FCN_ResNet50_Weights, "fcn_resnet101": tvseg.FCN_ResNet101_Weights}
DEFAULT_ARCH = "deeplabv3_resnet_slim"
DEFAULT_WEIGHTS = ASSETS / "seg" / "default.pt"  # trained without flips: leans on absolute horizontal position
CONTROL_WEIGHTS = ASSETS / "seg" / "control.pt"  # the same recipe with random flips: cannot use it


SLIM_WIDTHS, SLIM_DEPTHS, SLIM_ASPP = (16, 32, 64, 128), (2, 2, 2, 2), 96


class SlimResNet(ResNet):
    """torchvision's ResNet with Bottleneck stages a quarter as wide (latent 4 x 128 = 512 channels, post-ReLU).

    Built by torchvision's own ``_make_layer`` (dilation included), so only the widths differ from
    ``resnet50``: a sparse post-ReLU latent like the paper's 2048-channel one, small enough to train
    on a 2-core CPU and to ship.
    """

    def __init__(self, widths: tuple[int, ...] = SLIM_WIDTHS, depths: tuple[int, ...] = SLIM_DEPTHS,
                 output_stride: int = 16) -> None:
        nn.Module.__init__(self)
        self._norm_layer, self.dilation, self.groups, self.base_width = nn.BatchNorm2d, 1, 1, 64
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1, self.relu = nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(Bottleneck, widths[0], depths[0])
        self.layer2 = self._make_layer(Bottleneck, widths[1], depths[1], stride=2)
        self.layer3 = self._make_layer(Bottleneck, widths[2], depths[2], stride=2, dilate=output_stride == 8)
        self.layer4 = self._make_layer(Bottleneck, widths[3], depths[3], stride=2, dilate=True)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def slim_head(in_channels: int, num_classes: int, rates: tuple[int, ...], width: int = SLIM_ASPP,
              pooling: bool = True) -> nn.Sequential:
    """``DeepLabHead`` with a narrower ASPP (torchvision's ``ASPP(out_channels=width)``): same module indices.
    ``pooling=False`` removes ASPP's image-pooling branch (a GAP of the latent broadcast to every pixel), its
    projection narrowed to match: a head whose every pixel reads only the latent positions its convolutions reach."""
    aspp = ASPP(in_channels, list(rates), out_channels=width)
    if not pooling:
        aspp.convs = nn.ModuleList(list(aspp.convs)[:-1])
        aspp.project[0] = nn.Conv2d(width * len(aspp.convs), width, 1, bias=False)
    return nn.Sequential(aspp, nn.Conv2d(width, width, 3, padding=1, bias=False),
                         nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, num_classes, 1))


def head_options(model: DeepLabV3 | FCN) -> dict[str, Any]:
    """A slim model's non-default build options (``pooling``, ``stages``), read from its modules; {} for the rest."""
    if not isinstance(model, DeepLabV3):
        return {}
    options = {"pooling": False} if not isinstance(model.classifier[0].convs[-1], ASPPPooling) else {}
    last = next(iter(model.backbone.return_layers))
    return options | ({"stages": int(last[-1])} if last != "layer4" and last.startswith("layer") else {})


def default_rates(output_stride: int) -> tuple[int, int, int]:
    """ASPP rates of the DeepLabV3 paper for an output stride: 16 -> 6/12/18, 8 -> 12/24/36."""
    return (6, 12, 18) if output_stride == 16 else (12, 24, 36)


def preset(arch: str, config: str = "torchvision") -> tuple[int, tuple[int, ...] | None]:
    """(output stride, ASPP rates or ``None`` for FCN) of torchvision's builder or of the paper's setup."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHS}")
    if config not in CONFIGS:
        raise ValueError(f"unknown config {config!r}; expected one of {CONFIGS}")
    fcn = arch.startswith("fcn")
    if config == "paper" or "mobilenet" in arch or arch == "deeplabv3_resnet_slim":
        rates = (12, 24, 36) if arch == "deeplabv3_mobilenet_v3_large" and config == "torchvision" else default_rates(16)
        return 16, None if fcn else rates
    return 8, None if fcn else default_rates(8)


def build_model(arch: str = DEFAULT_ARCH, num_classes: int = NUM_CLASSES, output_stride: int = 16,
                rates: tuple[int, ...] | None = None, aux: bool = False, pooling: bool = True,
                stages: int = 4) -> DeepLabV3 | FCN:
    """A randomly initialised model (nothing downloaded) with torchvision's module names.

    ResNet trunks take output stride 8 or 16, MobileNets 16; ``rates`` default to :func:`default_rates`;
    ``aux`` adds the auxiliary FCN head that torchvision's pretrained weights carry. The slim ResNet also takes
    ``pooling=False`` (see :func:`slim_head`) and ``stages=3`` (the latent is layer3's output, 256 channels).
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHS}")
    trunk_name = arch.split("_", 1)[1]
    if (not pooling or stages != 4) and trunk_name != "resnet_slim":
        raise ValueError(f"only deeplabv3_resnet_slim is built without ASPP pooling or with fewer stages, not {arch}")
    if trunk_name == "resnet_slim":
        if output_stride not in (8, 16) or stages not in (3, 4):
            raise ValueError(f"{arch} supports output stride 8 or 16 and 3 or 4 stages")
        body = IntermediateLayerGetter(SlimResNet(SLIM_WIDTHS, SLIM_DEPTHS, output_stride), {f"layer{stages}": "out"})
        return DeepLabV3(body, slim_head(4 * SLIM_WIDTHS[stages - 1], num_classes, rates or default_rates(output_stride),
                                         SLIM_ASPP, pooling))
    if trunk_name.startswith("resnet"):
        if output_stride not in (8, 16):
            raise ValueError(f"{arch} supports output stride 8 or 16")
        trunk = {"resnet50": resnet50, "resnet101": resnet101}[trunk_name](
            weights=None, replace_stride_with_dilation=[False, output_stride == 8, True])
        layers, channels, aux_at, aux_channels = trunk, 2048, "layer3", 1024
        out_at = "layer4"
    else:
        if output_stride != 16:
            raise ValueError(f"{arch} has output stride 16")
        layers = (mobilenet_v3_small if trunk_name.endswith("small") else mobilenet_v3_large)(weights=None, dilated=True).features
        stages = [0] + [i for i, b in enumerate(layers) if getattr(b, "_is_cn", False)] + [len(layers) - 1]
        out_at, aux_at = str(stages[-1]), str(stages[-4])  # torchvision's choice: C5 (stride 16), C2 (stride 8)
        channels, aux_channels = layers[stages[-1]].out_channels, layers[stages[-4]].out_channels
    backbone = IntermediateLayerGetter(layers, {out_at: "out", **({aux_at: "aux"} if aux else {})})
    aux_head = FCNHead(aux_channels, num_classes) if aux else None
    if arch.startswith("fcn"):
        return FCN(backbone, FCNHead(channels, num_classes), aux_head)
    return DeepLabV3(backbone, DeepLabHead(channels, num_classes, rates or default_rates(output_stride)), aux_head)


@dataclass
class SegModel:
    """A model in eval mode with what identifies it: architecture, settings and a weights hash."""

    model: DeepLabV3 | FCN
    arch: str
    output_stride: int = 16
    meta: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    rates: tuple[int, ...] | None = (6, 12, 18)

    @property
    def channels(self) -> int:
        """Width of the latent (number of channels that can be ranked and zeroed)."""
        first = self.model.classifier[0]
        return first.convs[0][0].in_channels if isinstance(self.model, DeepLabV3) else first.in_channels

    @property
    def num_classes(self) -> int:
        """Number of classes the head predicts (19 for Cityscapes train ids)."""
        return self.model.classifier[-1].out_channels

    @property
    def class_names(self) -> list[str]:
        """Names of the predicted classes: the checkpoint's, else Cityscapes' for 19, else ``class k``."""
        names = self.meta.get("classes")
        if names and len(names) == self.num_classes:
            return list(names)
        return list(NAMES) if self.num_classes == NUM_CLASSES else [f"class {k}" for k in range(self.num_classes)]

    @property
    def label(self) -> str:
        """A one-line description: architecture, stride, rates, classes."""
        rates = f", ASPP {'/'.join(map(str, self.rates))}" if self.rates else ""
        return f"{self.arch} (output stride {self.output_stride}{rates}, {self.num_classes} classes)"


def wrap(model: DeepLabV3 | FCN, arch: str, output_stride: int = 16, meta: dict[str, Any] | None = None) -> SegModel:
    """Put a model in eval mode and fingerprint its weights and settings (the cache key for latents and rankings)."""
    model.eval()
    convs = model.classifier[0].convs[1:4] if isinstance(model, DeepLabV3) else None
    rates = tuple(c[0].dilation[0] for c in convs if not isinstance(c, ASPPPooling)) if convs is not None else None
    flat = {k: v.reshape(-1) for k, v in model.state_dict().items()}  # flattened: the shipped rankings are keyed by this hash
    settings = [] if (output_stride, rates) == (16, default_rates(16)) else [output_stride, list(rates or [])]
    return SegModel(model, arch, output_stride, meta or {}, fingerprint(arch, *settings, flat), rates)


def save_model(seg: SegModel, path: Path) -> Path:
    """Save the weights as an fp16 state dict (half the size; BN statistics included) with its settings."""
    return save_torch({"arch": seg.arch, "output_stride": seg.output_stride, "rates": seg.rates, "meta": seg.meta,
                       **head_options(seg.model), "state_dict": half_state_dict(seg.model)}, path)


def detect_arch(state: dict[str, torch.Tensor]) -> str:
    """The architecture of a torchvision-layout segmentation state dict, told from its keys."""
    head = "deeplabv3" if "classifier.0.convs.0.0.weight" in state else "fcn" if "classifier.0.weight" in state else None
    if "backbone.layer1.0.conv1.weight" in state and state["backbone.conv1.weight"].shape[0] == SLIM_WIDTHS[0]:
        trunk = "resnet_slim"
    elif "backbone.layer1.0.conv1.weight" in state:
        trunk = "resnet101" if any(k.startswith("backbone.layer3.6.") for k in state) else "resnet50"
    elif "backbone.0.0.weight" in state:
        trunk = "mobilenet_v3_large" if "backbone.16.0.weight" in state else "mobilenet_v3_small"
    else:
        trunk = None
    arch = f"{head}_{trunk}"
    if arch not in ARCHS:
        sample = ", ".join(list(state)[:3])
        raise CheckpointError(f"cannot tell the architecture from the keys (e.g. {sample}): expected a torchvision "
                              f"DeepLabV3/FCN state dict (backbone.*, classifier.*) of one of {', '.join(ARCHS)}; "
                              "choose the architecture explicitly.")
    return arch


def load_model(source: Path | str | bytes = DEFAULT_WEIGHTS, arch: str = "auto", config: str = "torchvision",
               name: str | None = None) -> SegModel:
    """A checkpoint (path or upload bytes, read with ``weights_only=True``) as a :class:`SegModel` (see :func:`model_from_blob`)."""
    name = name or (Path(source).name if not isinstance(source, bytes) else "upload")
    return model_from_blob(load_torch(source, name), name, arch, config)


def model_from_blob(blob: object, name: str = "checkpoint", arch: str = "auto", config: str = "torchvision") -> SegModel:
    """A loaded checkpoint as a :class:`SegModel`: one saved by :func:`save_model` (which records its settings),
    or a user's state dict (plain, wrapped, prefixed) for ``arch`` (``auto`` = from the keys) built with
    ``config``'s output stride and rates; the number of classes is read from the weights."""
    meta: dict[str, Any] = {"source": name}
    if isinstance(blob, dict) and blob.get("arch") in ARCHS and "output_stride" in blob and "state_dict" in blob:
        arch, output_stride = blob["arch"], blob["output_stride"]
        rates = blob.get("rates", None if arch.startswith("fcn") else default_rates(output_stride))
        options = {k: blob[k] for k in ("pooling", "stages") if k in blob}
        meta |= blob.get("meta") or {}
        state = unwrap_state_dict(blob["state_dict"], name)
    else:
        state = unwrap_state_dict(blob, name)
        arch = detect_arch(state) if arch == "auto" else arch
        output_stride, rates = preset(arch, config)
        options = {}
        meta["config"] = config
    last = state.get("classifier.4.weight")
    num_classes = int(last.shape[0]) if last is not None and last.dim() == 4 else NUM_CLASSES
    aux = any(k.startswith("aux_classifier.") for k in state)
    model = build_model(arch, num_classes, output_stride, tuple(rates) if rates else None, aux, **options)
    load_state_into(model, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, name)
    return wrap(model, arch, output_stride, meta)


def pretrained_file(arch: str) -> Path:
    """Where torchvision keeps ``arch``'s pretrained weights in the local torch hub cache."""
    if arch not in PRETRAINED:
        raise ValueError(f"torchvision has no pretrained weights for {arch!r}; it has: {', '.join(PRETRAINED)}")
    url = PRETRAINED[arch].DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]


def cached_pretrained() -> list[str]:
    """Architectures whose torchvision pretrained weights are already in the local cache."""
    return [arch for arch in PRETRAINED if pretrained_file(arch).is_file()]


def load_pretrained(arch: str) -> SegModel:
    """torchvision's pretrained weights for ``arch`` from the local cache only (never downloaded)."""
    path = pretrained_file(arch)
    weights = PRETRAINED[arch].DEFAULT
    if not path.is_file():
        raise CheckpointError(f"torchvision's pretrained {arch} weights are not in the local torch cache ({path}) and "
                              f"this app never downloads: copy {path.name} there (from {weights.url}) to use them.")
    seg = load_model(path, arch, "torchvision", name=f"torchvision {weights.name}")
    seg.meta["classes"] = list(weights.meta["categories"])
    return seg


def open_model(spec: str, arch: str = "auto", config: str = "torchvision") -> SegModel:
    """A checkpoint path, or ``torchvision:<arch>`` for torchvision's pretrained weights from the local cache."""
    if spec.startswith("torchvision:"):
        return load_pretrained(spec.split(":", 1)[1])
    return load_model(spec, arch, config)


def to_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Normalised float NCHW batch from uint8 NHWC images."""
    x = torch.as_tensor(images).permute(0, 3, 1, 2).float().div_(255)
    return (x - IMAGENET_MEAN.to(x.device)) / IMAGENET_STD.to(x.device)


def backbone_latent(model: DeepLabV3, x: torch.Tensor) -> torch.Tensor:
    """The latent z = backbone output that feeds the ASPP head."""
    return model.backbone(x)["out"]


def class_logits(model: DeepLabV3, z: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Latent-resolution logits (fp32, channels_last) of the head, with channels of ``z`` multiplied by ``mask``
    (0 = zeroed) first; ``z`` and the model are not modified. Without autocast (a CPU without native bf16), fp16
    cached latents are computed in the head's own dtype."""
    weight = next(model.classifier.parameters())
    if z.dtype != weight.dtype and not torch.is_autocast_enabled(z.device.type):
        z = z.to(weight.dtype)
    if mask is not None:
        z = z * mask.to(device=z.device, dtype=z.dtype).view(1, -1, 1, 1)
    # channels_last: upsampling and the caller's argmax over classes run ~4x faster on CPU, same values
    return model.classifier(z).float().contiguous(memory_format=torch.channels_last)


def upsample_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Logits at image size, bilinear as in ``DeepLabV3.forward`` (each image independently: a slice of a batch
    gives the same values as the batch)."""
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def head_logits(model: DeepLabV3, z: torch.Tensor, size: tuple[int, int], mask: torch.Tensor | None = None) -> torch.Tensor:
    """Logits at image size from a latent, with channels multiplied by ``mask`` (0 = zeroed) first: the same ops as
    ``DeepLabV3.forward`` after the backbone."""
    return upsample_logits(class_logits(model, z, mask), size)


def kernel_flipped(model: DeepLabV3) -> DeepLabV3:
    """A copy whose every backbone conv kernel is mirrored along its width (Kernel-Flip); the original is untouched."""
    flipped = copy.deepcopy(model)
    with torch.no_grad():
        for module in flipped.backbone.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.copy_(module.weight.flip(-1))
    return flipped.eval()
