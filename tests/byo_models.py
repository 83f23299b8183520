"""Classifier files made elsewhere, built in the test (for the test_byo_models* tests): a tiny timm model saved as .pth
and .safetensors, a tiny torch model exported to ONNX, and a Hugging Face cache folder in its official layout."""
from __future__ import annotations

import io
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

TIMM_ARCH = "test_resnet"  # timm's own test model: 0.47 M weights, 160 x 160 input
HF_NAME = "test_resnet.r160_in1k"


def tiny_timm(classes: int = 6, seed: int = 0) -> nn.Module:
    import timm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return timm.create_model(TIMM_ARCH, pretrained=False, num_classes=classes).eval()


def save_timm(folder: Path, net: nn.Module) -> tuple[Path, Path]:
    """The net's state dict as ``tiny.pth`` (wrapped as training scripts save it) and ``tiny.safetensors``."""
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    pth, st = folder / "tiny.pth", folder / "tiny.safetensors"
    torch.save({"state_dict": state, "epoch": 1}, pth)
    save_file(state, str(st))
    return pth, st


class TinyNet(nn.Module):
    """Two strided convolutions, global average pooling, a linear classifier (the pool named for the test)."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


class NoPoolNet(nn.Module):
    """A classifier that flattens its feature map: no global pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, 4)
        self.fc = nn.LazyLinear(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))


def tiny_onnx(seed: int = 0) -> tuple[bytes, TinyNet]:
    """A :class:`TinyNet` with random (non-trivial) batch-norm statistics, and its ONNX export (batch size dynamic)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = TinyNet()
        bn = net.features[1]
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2)
    net.eval()
    buf = io.BytesIO()
    torch.onnx.export(net, (torch.randn(1, 3, 96, 96),), buf, dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "n"}})
    return buf.getvalue(), net


def fake_hf_cache(root: Path, net: nn.Module, name: str = HF_NAME, rev: str = "0123abcd") -> Path:
    """``root/models--timm--<name>/snapshots/<rev>/{model.safetensors, config.json}`` and ``refs/main``, as
    huggingface_hub leaves a timm download."""
    repo = root / f"models--timm--{name}"
    snap = repo / "snapshots" / rev
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(snap / "model.safetensors"))
    config = {"architecture": TIMM_ARCH, "num_classes": net.num_classes, "pretrained_cfg": {
        "input_size": [3, 128, 128], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "classifier": "fc"}}
    (snap / "config.json").write_text(json.dumps(config))
    return root
