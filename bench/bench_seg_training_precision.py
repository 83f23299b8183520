"""Training-step speed of the slim DeepLabV3 (the Segmentation lab's model) in fp32 vs bf16 autocast on this CPU.

Why the engine autocasts only where the CPU computes bf16 natively (engine/core/device.py: native_bf16): on an
AVX2-only CPU oneDNN emulates bf16. Same model and batch, rounds interleaved; prints both and the ratio.
Usage: python bench/bench_seg_training_precision.py [--batch 32] [--height 128] [--steps 2] [--rounds 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from engine.core.device import autocast, native_bf16, prepare_input, prepare_model
from engine.models.segmentation import build_model
from engine.seg.train import segmentation_loss


def seconds_per_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                     steps: int, bf16: bool) -> float:
    """Mean seconds of a full training step (forward, loss with the latent L1 term, backward, AdamW)."""
    start = time.perf_counter()
    for _ in range(steps):
        with autocast(x.device, bf16):
            loss = segmentation_loss(model, x, y, 0.25)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    native = native_bf16("cpu")
    os.environ["POSLAB_BF16"] = "1"  # measure bf16 even where the engine would not use it
    native_bf16.cache_clear()
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    model = prepare_model(build_model("deeplabv3_resnet_slim", rates=(1, 2, 3)), cpu).train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = prepare_input(torch.randn(args.batch, 3, args.height, 2 * args.height), cpu)
    y = torch.randint(0, 19, (args.batch, args.height, 2 * args.height))
    seconds_per_step(model, opt, x, y, 1, bf16=False)  # warm-up
    fp32, bf16 = [], []
    for _ in range(args.rounds):
        fp32.append(seconds_per_step(model, opt, x, y, args.steps, bf16=False))
        bf16.append(seconds_per_step(model, opt, x, y, args.steps, bf16=True))
    f, b = statistics.median(fp32), statistics.median(bf16)
    print(f"slim DeepLabV3, batch {args.batch} at {args.height}x{2 * args.height}, {torch.get_num_threads()} threads")
    print(f"fp32            : {f:6.2f} s/step")
    print(f"bf16 autocast   : {b:6.2f} s/step")
    print(f"bf16 / fp32 time: {b / f:.2f}x")
    print(f"native bf16 on this CPU: {native} (the engine trains in {'bf16' if native else 'fp32'} here)")


if __name__ == "__main__":
    main()
