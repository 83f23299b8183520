"""Per-image costs of the paper's full-scale sweep, and a projection of its run time (clearly an estimate).

    python bench/bench_scale_costs.py [--images 500] [--height 1024] [--cells 60] [--gpu-tflops 150] [--gpu-tbps 1.5] [--gpus 1 8]

Counted exactly (``torch.utils.flop_counter`` on the meta device, nothing computed): the FLOPs of DeepLabV3-ResNet-50
at output stride 16 (ASPP 6/12/18) for one ``height`` x ``2 height`` image, split into the backbone (run once per image
to make its latent) and the head (ASPP + classifier + upsampling, run once per image and (ranking, N) cell); the fp16
latent bytes per image. Measured on this CPU, one thread, CPU time (so another job on the machine changes little):
the backbone and the head at a small size (``--measure-height``), scaled by pixels, and the per-image step after the
head at full size (argmax over 19 classes and the four region confusion matrices), which the engine runs on the CPU.

The projection adds: backbone once per image + head, upsampling, argmax and confusions once per image and cell, over
``--gpus`` ranks. On a GPU (where the engine also counts the confusions) the convolutions run at ``--gpu-tflops``
sustained and the per-cell full-size steps move about 2 x 19 x 4 bytes per pixel at ``--gpu-tbps``: both are
assumptions, not measurements (no GPU was available). The CPU-only line uses the CPU timings. Every input is printed.
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from engine.models.segmentation import build_model, head_logits
from engine.seg.metrics import region_confusions

ARCH = "deeplabv3_resnet50"


def flops(height: int) -> tuple[float, float, int]:
    """(backbone FLOPs, head FLOPs, fp16 latent bytes) for one image, counted on the meta device."""
    with torch.device("meta"):
        model = build_model(ARCH, output_stride=16).eval()
        x = torch.empty(1, 3, height, 2 * height)
        with FlopCounterMode(display=False) as counter:
            z = model.backbone(x)["out"]
        backbone = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            head_logits(model, z, (height, 2 * height))
        head = counter.get_total_flops()
    return float(backbone), float(head), z[0].numel() * 2


def cpu_seconds(fn, repeat: int = 2) -> float:
    """Best CPU time of ``fn()`` over ``repeat`` runs (one thread)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--cells", type=int, default=60, help="(ranking, N) cells: e.g. 10 values of N x 6 rankings")
    parser.add_argument("--measure-height", type=int, default=128, help="size of the CPU timing of backbone and head")
    parser.add_argument("--gpu-tflops", type=float, default=150.0, help="assumed sustained bf16 TFLOP/s of one GPU")
    parser.add_argument("--gpu-tbps", type=float, default=1.5, help="assumed sustained memory TB/s of one GPU")
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    torch.set_num_threads(1)
    h, w = args.height, 2 * args.height

    fb, fh, latent = flops(h)
    print(f"DeepLabV3-ResNet-50, output stride 16, one {h}x{w} image (counted, FlopCounterMode on meta):")
    print(f"  backbone {fb / 1e9:.0f} GFLOP, head (ASPP + classifier) {fh / 1e9:.0f} GFLOP per (ranking, N) cell, "
          f"latent {latent / 1e6:.1f} MB fp16 ({args.images} images: {args.images * latent / 1e9:.1f} GB)")

    mh = args.measure_height
    torch.manual_seed(0)
    model = build_model(ARCH, output_stride=16).eval()
    x = torch.randn(1, 3, mh, 2 * mh)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        z = model.backbone(x)["out"]
        t_back = cpu_seconds(lambda: model.backbone(x)["out"])
        t_head = cpu_seconds(lambda: head_logits(model, z, (mh, 2 * mh)).argmax(1))
    scale = (h * w) / (mh * 2 * mh)
    print(f"CPU, one thread, bf16, measured at {mh}x{2 * mh} and scaled by pixels (x{scale:.0f}): backbone "
          f"{t_back * scale:.1f} s, head {t_head * scale:.1f} s per image")

    logits = torch.randn(1, 19, h // 16, w // 16)
    target = torch.randint(0, 19, (1, h, w), dtype=torch.uint8)

    def confusions() -> None:
        big = torch.nn.functional.interpolate(logits.contiguous(memory_format=torch.channels_last), size=(h, w),
                                              mode="bilinear", align_corners=False)
        region_confusions(big.argmax(1).to(torch.uint8), target)

    t_conf = cpu_seconds(confusions)
    print(f"CPU, one thread, measured at {h}x{w}: upsampling + argmax + region confusions {t_conf:.2f} s per image and cell")

    cells = args.images * args.cells
    per_cell_bytes = 2 * 19 * 4 * h * w
    print(f"\nPROJECTION (an estimate, not a measurement): {args.images} images x {args.cells} cells = {cells:,} head passes; "
          f"assumed per GPU: {args.gpu_tflops:g} TFLOP/s sustained, {args.gpu_tbps:g} TB/s for the full-size steps "
          f"({per_cell_bytes / 1e6:.0f} MB moved per image and cell)")
    for k in args.gpus:
        backbone = args.images * fb / (args.gpu_tflops * 1e12) / k
        head = cells * fh / (args.gpu_tflops * 1e12) / k
        post = cells * per_cell_bytes / (args.gpu_tbps * 1e12) / k
        print(f"  {k} GPU(s): backbone {backbone:.0f} s + head {head:.0f} s + upsampling/argmax/confusions {post:.0f} s "
              f"= {(backbone + head + post) / 60:.1f} min; latents per rank {args.images * latent / k / 1e9:.1f} GB "
              f"(read once per sweep)")
    cpu = args.images * t_back * scale + cells * (t_head * scale + t_conf)
    print(f"  CPU only, one core: {cpu / 3600:.0f} h (from the CPU timings above)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
