"""Benchmark: how fast the Segmentation lab generates its street scenes (images per second, one worker).

    python bench/bench_scenes.py [--images 40] [--height 128] [--rounds 3] [--target 20]

The engine tests check that generation is deterministic and labelled; its speed is measured here, where a
shared or slow machine cannot fail the suite. Prints the best of ``rounds`` and whether it meets ``--target``
(the rate the Segmentation lab's first load was sized for).
"""
from __future__ import annotations

import argparse
import time

from engine.data.scenes import SceneConfig, generate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=40, help="scenes per round (default: %(default)s)")
    parser.add_argument("--height", type=int, default=128, help="scene height; width is twice it (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the fastest counts (default: %(default)s)")
    parser.add_argument("--target", type=float, default=20.0, help="images per second to meet (default: %(default)s)")
    args = parser.parse_args()
    config = SceneConfig("val", args.images, args.height, 2 * args.height, 9)
    best = float("inf")
    for _ in range(args.rounds):
        start = time.perf_counter()
        generate(config)
        best = min(best, time.perf_counter() - start)
    rate = args.images / best
    verdict = "meets" if rate >= args.target else "misses"
    print(f"{args.images} scenes {args.height}x{2 * args.height}: {rate:.1f} img/s (best of {args.rounds}), "
          f"{verdict} the target {args.target:g} img/s")
    return 0 if rate >= args.target else 1


if __name__ == "__main__":
    raise SystemExit(main())
