"""Check that the converted PP-OCR text-direction classifier computes what the ONNX graph does.

Runs the same rendered text lines (``engine.data.textlines``, through PP-OCR's own preprocessing) through onnxruntime
on the bundled .onnx file and through PosLab's onnx2torch conversion, and prints the largest difference of the two
outputs and how often their argmax agrees. onnxruntime is not a PosLab dependency: install it only for this check
(``pip install --no-deps onnxruntime==1.32.0 flatbuffers``).

    python scripts/onnx_parity.py [--lines 64] [--seed 3]
"""
from __future__ import annotations

import argparse

import torch

from engine.data.textlines import text_lines
from engine.models.importers import RAPIDOCR_CLS, open_classifier, rapidocr_cls_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=64)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    import onnxruntime

    model = open_classifier(RAPIDOCR_CLS)
    images, labels = text_lines(args.lines, args.seed)
    x = torch.cat([model.spec.to_input(image.unsqueeze(0)) for image in images])
    session = onnxruntime.InferenceSession(str(rapidocr_cls_file()), providers=["CPUExecutionProvider"])
    reference = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
    with torch.inference_mode():
        ours = model.net(x)
    agree = (reference.argmax(1) == ours.argmax(1)).sum().item()
    print(f"onnxruntime {onnxruntime.__version__} vs onnx2torch on {args.lines} lines (seed {args.seed}): max |diff| "
          f"{(reference - ours).abs().max().item():.2e}, argmax agrees on {agree}/{args.lines}, onnxruntime accuracy "
          f"{100 * (reference.argmax(1) == labels).float().mean().item():.1f}%")


if __name__ == "__main__":
    main()
