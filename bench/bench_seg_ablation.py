"""Benchmark: a top-N sweep the naive way (full network per N) vs the cached-latent engine, and one live
slider step vs the physical limit of a re-run (the head alone on cached latents).

    python bench/bench_seg_ablation.py [--weights assets/seg/control.pt] [--images 200] [--ns 0,26,51,128] [--fp32]

Both paths must give identical confusion matrices (checked); the engine's time includes
computing the latents once. Prints both times, the ratio, and the feature cache's peak memory.
The ratio is bounded by the backbone's share of a full forward (Amdahl): the head still runs for
every N. ``--arch`` times a randomly initialised model of another architecture (e.g. the paper's
ResNet-50, whose backbone dominates) instead of the shipped weights.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from engine.core.cache import Cache
from engine.core.device import autocast
from engine.data.scenes import generate
from engine.models.segmentation import (
    ARCHS,
    DEFAULT_WEIGHTS,
    build_model,
    class_logits,
    head_logits,
    load_model,
    upsample_logits,
    wrap,
)
from engine.seg.ablation import SLICE, channel_mask, evaluate_full, evaluate_latents, scores, select
from engine.seg.features import BATCH, LatentCache
from engine.seg.lab import DEFAULT_VAL, channel_order


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--images", type=int, default=DEFAULT_VAL.count)
    parser.add_argument("--ns", help="comma list of N (default 0 and 5/10/25%% of the latent width)")
    parser.add_argument("--ranking", default="overall")
    parser.add_argument("--arch", choices=ARCHS, help="time a randomly initialised model of this architecture instead")
    parser.add_argument("--fp32", action="store_true", help="fp32 everywhere (default: bf16 compute, fp16 latents)")
    args = parser.parse_args()

    seg = wrap(build_model(args.arch), args.arch) if args.arch else load_model(args.weights)
    data = generate(replace(DEFAULT_VAL, count=args.images))
    ns = [int(n) for n in args.ns.split(",")] if args.ns else [round(f * seg.channels) for f in (0, 0.05, 0.1, 0.25)]
    order = channel_order(seg, data, args.ranking)
    masks = [channel_mask(seg.channels, select(order, n)) for n in ns]
    print(f"{seg.arch}, {len(data.images)} images {data.images.shape[1]}x{data.images.shape[2]}, "
          f"{'fp32' if args.fp32 else 'bf16 + fp16 latents'}, {torch.get_num_threads()} threads, N = {ns}")

    start = time.perf_counter()
    naive = [evaluate_full(seg, data, m, exact=args.fp32) for m in masks]
    t_naive = time.perf_counter() - start

    cache = LatentCache(Cache(), use_disk=False)  # its own memory tier: the peak below is this run's alone
    start = time.perf_counter()
    lat = cache.get(seg, data, precision="fp32" if args.fp32 else "fp16")
    t_latents = time.perf_counter() - start
    fast = [evaluate_latents(seg, lat, m) for m in masks]
    t_engine = time.perf_counter() - start

    same = all(torch.equal(a[r], b[r]) for a, b in zip(naive, fast) for r in a)
    for n, a, b in zip(ns, naive, fast):
        sa, sb = scores(a), scores(b)
        print(f"N={n:4d}  naive all/left/center/right " + " ".join(f"{100 * sa[k]:.2f}" for k in sa)
              + "   engine " + " ".join(f"{100 * sb[k]:.2f}" for k in sb))
    print(f"same confusion matrices: {same}")
    print(f"naive: {t_naive:.2f} s ({t_naive / len(ns):.2f} s per N; backbone share of a full forward "
          f"{t_latents / (t_naive / len(ns)):.0%}, so at most {(t_naive / len(ns)) / (t_naive / len(ns) - t_latents):.1f}x per extra N)")
    print(f"engine: {t_engine:.2f} s (latents once {t_latents:.2f} s, then {(t_engine - t_latents) / len(ns):.3f} s per N)")
    print(f"speed-up: {t_naive / t_engine:.1f}x for {len(ns)} values of N "
          f"(per extra N: {(t_naive / len(ns)) / ((t_engine - t_latents) / len(ns)):.1f}x)")
    print(f"feature cache peak memory: {cache.cache.peak_bytes / 2**20:.1f} MiB ({lat.z.dtype}, {tuple(lat.z.shape)})")
    t = live_vs_head(seg, lat, masks[-1])
    print(f"speed-up vs naive: {t_naive / t_engine:.1f}")
    print(f"live step / head-only forward: {t['live'] / t['head']:.2f} (live step {t['live']:.3f} s: head, upsample, "
          f"argmax, region confusions; head-only forward {t['head']:.3f} s: DeepLabV3's head and upsample; best of 5 each)")
    print(f"live step / head-only forward with the upsample in slices: {t['live'] / t['head_sliced']:.2f} "
          f"({t['head_sliced']:.3f} s: the stricter limit; the argmax over classes is the rest)")
    return 0 if same else 1


def live_vs_head(seg, lat, mask: torch.Tensor, repeats: int = 5) -> dict[str, float]:
    """Best-of-``repeats`` seconds of one live slider step (what the page runs: head, upsample, argmax, region
    confusions) and of two head-only forwards on the same cached latents: DeepLabV3's own (``DeepLabV3.forward``
    after the backbone: the head, then one upsample of the whole batch) and the same with the upsample in the live
    step's slices (cache-sized, so without the page faults of a fresh 80 MB tensor per batch)."""
    def head_only(sliced: bool) -> None:
        with torch.inference_mode(), autocast(next(seg.model.parameters()).device, enabled=lat.z.dtype != torch.float32):
            for start in range(0, len(lat.z), BATCH):
                if not sliced:
                    head_logits(seg.model, lat.z[start:start + BATCH], lat.size, mask)
                    continue
                low = class_logits(seg.model, lat.z[start:start + BATCH], mask)
                for s in range(0, len(low), SLICE):
                    upsample_logits(low[s:s + SLICE], lat.size)

    times = {}
    for name, step in (("live", lambda: evaluate_latents(seg, lat, mask)), ("head", lambda: head_only(False)),
                       ("head_sliced", lambda: head_only(True))):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - start)
        times[name] = best
    return times


if __name__ == "__main__":
    raise SystemExit(main())
