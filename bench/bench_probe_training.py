"""Training-step speed of the grid probe: PosLab's CPU path (bf16 autocast + channels_last) vs plain fp32.

Same model, same batches, interleaved rounds so machine noise hits both alike; prints the ratio. bf16 is forced on
here (POSLAB_BF16=1) to measure it; the engine itself uses it only where the CPU computes bf16 natively, and the
bench prints whether this one does (an AVX2-only CPU emulates bf16: the ratio then falls far below 1).
Usage: python bench/bench_probe_training.py [--grid 3] [--width 0.25] [--steps 20] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from engine.core.device import native_bf16
from engine.core.training import TrainConfig, fit
from engine.data.patches import GeneratedShapes
from engine.models.probe import ProbeConfig, build_probe
from engine.probe.train import make_batch


def time_steps(config: ProbeConfig, batches: list, fast: bool) -> float:
    """Seconds per training step (after one warm-up step)."""
    model = build_probe(config)
    train = TrainConfig(steps=len(batches), bf16=fast, channels_last=fast, report_every=10**9)
    fit(model, lambda step: batches[0], TrainConfig(steps=1, bf16=fast, channels_last=fast), device=torch.device("cpu"))
    start = time.perf_counter()
    fit(model, lambda step: batches[step - 1], train, device=torch.device("cpu"))
    return (time.perf_counter() - start) / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grid", type=int, default=3)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    config = ProbeConfig(grid=args.grid, width=args.width)
    batches = [make_batch(config, GeneratedShapes(), 48, seed=i)[:2] for i in range(args.steps)]
    os.environ["POSLAB_BF16"] = "1"  # measure bf16 even where the engine would not use it
    native_bf16.cache_clear()
    plain, fast = [], []
    for _ in range(args.rounds):
        plain.append(time_steps(config, batches, fast=False))
        fast.append(time_steps(config, batches, fast=True))
    p, f = statistics.median(plain), statistics.median(fast)
    print(f"grid {args.grid}x{args.grid}, width {args.width}, batch 48, {torch.get_num_threads()} threads")
    print(f"plain fp32           : {p * 1000:7.1f} ms/step  ({48 / p:6.0f} img/s)")
    print(f"bf16 + channels_last : {f * 1000:7.1f} ms/step  ({48 / f:6.0f} img/s)")
    print(f"speed-up             : {p / f:.2f}x")
    del os.environ["POSLAB_BF16"]
    native_bf16.cache_clear()
    print(f"native bf16 on this CPU: {native_bf16('cpu')} (the engine trains in {'bf16' if native_bf16('cpu') else 'fp32'} here)")


if __name__ == "__main__":
    main()
