"""Networks made elsewhere: seconds to convert and load an ONNX classifier, and GAP-feature throughput, side by side.

Rows, in one run on the same 3x3 canvases (the channel code's ``gap_features``, the work behind the map and decode):
- ``rapidocr-cls``: PP-OCR's text-direction classifier (ONNX -> onnx2torch -> GAP found in its graph), 48 x 192 inputs;
- ``mobilenet_v3_small``: torchvision's, random init, a plain torch module at the canvas size;
- ``mobilenet_v3_small via ONNX``: the same weights exported to ONNX and converted back, the converter's own cost.
Load time is the median of ``--repeats`` cold opens (parse, convert, trace, find the GAP); throughput the median of
``--repeats`` passes over ``--images`` canvases, after one warm-up pass.

    python bench/bench_byo.py [--images 600] [--repeats 3]
"""
from __future__ import annotations

import argparse
import io
import statistics
import time

import torch

from engine.channel.features import gap_features
from engine.core.device import pick_device
from engine.data.grid import place_on_grid
from engine.models.importers import classifier_from_onnx, open_classifier
from engine.models.user_classifier import UserClassifier


def _seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from torchvision.models import mobilenet_v3_small  # after engine's imports (engine/core/tvfix.py)

    torch.manual_seed(0)
    canvases = place_on_grid(torch.rand(args.images, 3, 32, 32), torch.randint(0, 9, (args.images,)), 3)
    native = mobilenet_v3_small(weights=None).eval()
    buf = io.BytesIO()
    torch.onnx.export(native, (torch.randn(1, 3, 96, 96),), buf, dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "n"}})
    exported = buf.getvalue()
    loads = {"rapidocr-cls": lambda: open_classifier("rapidocr-cls"),
             "mobilenet_v3_small": lambda: UserClassifier(mobilenet_v3_small(weights=None), "mobilenet_v3_small"),
             "mobilenet_v3_small via ONNX": lambda: classifier_from_onnx(exported, "mobilenet_v3_small.onnx")}
    models = {"mobilenet_v3_small": UserClassifier(native, "mobilenet_v3_small"),
              "rapidocr-cls": loads["rapidocr-cls"](), "mobilenet_v3_small via ONNX": loads["mobilenet_v3_small via ONNX"]()}
    print(f"device {pick_device()}, torch {torch.__version__}, {torch.get_num_threads()} threads; {args.images} 3x3 "
          f"canvases, median of {args.repeats}")
    print(f"{'network':30} {'params':>9} {'input':>9} {'load s':>8} {'images/s':>9} {'vs native':>9}")
    rates = {}
    for name, model in models.items():
        gap_features(model, canvases[:50])  # warm-up
        rates[name] = args.images / _seconds(lambda: gap_features(model, canvases), args.repeats)
        load = _seconds(loads[name], args.repeats)
        size = "x".join(map(str, model.spec.size)) if model.spec.size else "96x96"
        params = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
        print(f"{name:30} {params:9,d} {size:>9} {load:8.2f} {rates[name]:9.0f} "
              f"{rates[name] / rates['mobilenet_v3_small']:9.2f}")


if __name__ == "__main__":
    main()
