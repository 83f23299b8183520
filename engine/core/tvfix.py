"""Make ``import torchvision`` work on a CPU-only torch paired with a CUDA torchvision build.

The registry's torchvision wheel registers its C++ kernels against operator schemas it expects
torch to know. On a CPU torch those schemas are missing and the import fails with
``operator torchvision::nms does not exist``. Declaring the two schemas (with a plain-torch CPU
kernel) before the first torchvision import is enough for models, datasets and transforms.
Where torch and torchvision match, the import already works and this module does nothing.
"""
from __future__ import annotations

import importlib.util
import sys

import torch

_LIB: torch.library.Library | None = None


def _nms_cpu(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression in plain torch (indices kept, by descending score)."""
    order = scores.argsort(descending=True)
    boxes = boxes[order]
    x1, y1, x2, y2 = boxes.unbind(1)
    area = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    keep: list[int] = []
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        w = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1)).clamp(min=0)
        h = (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1)).clamp(min=0)
        inter = w * h
        iou = inter / (area[i] + area - inter).clamp(min=1e-12)
        suppressed |= iou > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long)]


def _qnms_cpu(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    return _nms_cpu(dets.dequantize(), scores.dequantize(), iou_threshold)


def _declare_schemas() -> None:
    global _LIB
    _LIB = torch.library.Library("torchvision", "DEF")
    _LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIB.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
    _LIB.impl("nms", _nms_cpu, "CPU")
    _LIB.impl("qnms", _qnms_cpu, "QuantizedCPU")


def install() -> None:
    """Import torchvision; if its compiled ops cannot load, declare their schemas and retry."""
    if _LIB is not None or importlib.util.find_spec("torchvision") is None:
        return
    try:
        import torchvision  # noqa: F401  (a matching pair imports cleanly: nothing to do)
    except RuntimeError as err:
        if "torchvision::nms" not in str(err):
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        _declare_schemas()
        import torchvision  # noqa: F401,F811


install()
