"""Where the Channel code page's fresh 7x7 decode spends its time, and what bf16 autocast would change.

Part 1: one fresh decode as the page runs it (600 training and 300 test canvases, the first network offered at 7x7,
layer4) on an empty cache folder, its seconds split into making canvases, GAP features and the three linear-probe
fits. Part 2: the GAP features of 200 such canvases at two batch sizes and under bf16 autocast, side by side with the
engine's fp32 channels_last path, with the largest change in a layer4 value.

    python bench/bench_fresh_decode.py
"""
from __future__ import annotations

import copy
import os
import tempfile
import time
from collections.abc import Callable

os.environ["POSLAB_CACHE"] = tempfile.mkdtemp(prefix="poslab-fresh-")  # nothing computed earlier helps

import torch  # noqa: E402

from engine.channel import decode, lab  # noqa: E402
from engine.channel.features import FEATURE_BATCH, gap_features  # noqa: E402
from engine.channel.nets import net_for_grid  # noqa: E402
from engine.core.device import autocast, native_bf16, prepare_input, prepare_model  # noqa: E402
from engine.data.patches import GeneratedShapes  # noqa: E402
from engine.probe.train import make_batch  # noqa: E402

GRID, LAYER, SEED = 7, "layer4", 1234


def timed_phases() -> tuple[float, dict[str, float]]:
    """Seconds of one page-sized fresh decode, and of its phases (the decode module's calls, wrapped)."""
    spent: dict[str, float] = {}

    def wrap(name: str) -> None:
        inner = getattr(decode, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - start
        setattr(decode, name, timed)

    for name in ("make_batch", "gap_features", "fit_linear_probe"):
        wrap(name)
    start = time.perf_counter()
    lab.decode([GRID], [LAYER], [lab.available_nets(GRID)[0]], train=600, test=300, seed=SEED).rows()
    return time.perf_counter() - start, spent


def best_of(f: Callable[[], torch.Tensor], rounds: int = 2) -> tuple[float, torch.Tensor]:
    """The fastest of ``rounds`` calls after a warm-up, and the last result."""
    out, times = f(), []
    for _ in range(rounds):
        start = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    total, spent = timed_phases()
    print(f"fresh decode {GRID}x{GRID} ({lab.available_nets(GRID)[0]}, {LAYER}, 900 canvases): {total:.2f} s; "
          + ", ".join(f"{name} {s:.2f} s ({100 * s / total:.0f}%)" for name, s in spent.items()))
    model, _ = net_for_grid(lab.available_nets(GRID)[0], GRID)
    canvases = make_batch(model.config.with_(task="location"), GeneratedShapes(model.config.patch), 200, SEED, "train",
                          flip=False)[0]
    base_s, base = best_of(lambda: gap_features(model, canvases)[LAYER])
    print(f"GAP features of 200 canvases, fp32 channels_last, batch {FEATURE_BATCH} (the engine's): {base_s:.2f} s")
    for batch in (50, 400):
        s, out = best_of(lambda: gap_features(model, canvases, batch=batch)[LAYER])
        print(f"  batch {batch}: {s:.2f} s, {base_s / s:.2f}x; largest change {(out - base).abs().max().item():.2g}")
    device = torch.device("cpu")
    bf16_model = prepare_model(copy.deepcopy(model), device, True).eval()

    def bf16() -> torch.Tensor:
        with torch.inference_mode(), autocast(device):
            return bf16_model.stages(prepare_input(canvases, device, True))[-1].mean((2, 3)).float()

    s, out = best_of(bf16)
    print(f"  bf16 autocast (native bf16 here: {native_bf16('cpu')}): {s:.2f} s, {base_s / s:.2f}x; largest change "
          f"{(out - base).abs().max().item():.2g} (largest value {base.abs().max().item():.2g})")


if __name__ == "__main__":
    main()
