"""Benchmark: a sweep in one process vs ``torchrun --nproc_per_node K``, and a sweep whose latents are several times
the memory budget (streamed from disk) vs the same sweep in memory.

    python bench/bench_distributed.py [--images 64] [--height 64] [--procs 2] [--stream-images 384] [--stream-factor 4]

Part 1 runs the same ``python -m engine sweep`` (rankings computed in-sample, so they are sharded too) as one process
with every core's threads, as one process with one thread, and under torchrun with ``--procs`` processes (torchrun gives
each one thread). It prints wall times (imports, scenes, ranking, latents and head included), the speed ratio and whether
the JSON results are identical. CPU convolutions round differently with another thread count, so "identical" is
checked against the one-process run with the same threads per process.

Part 2 sweeps ``--stream-images`` scenes with a randomly initialised slim DeepLabV3-ResNet at output stride 8 (large
latents for little compute): once in memory, once with ``--cache-limit`` = latents / ``--stream-factor``. It prints
the latent bytes, the budget, each run's peak RSS (from ``wait4``) and the time ratio; the results must be identical.
Every run uses its own empty cache folder, so nothing is reused between runs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


CPU = {}  # command log name -> CPU seconds (user + system) of it and every process it waited for


def run(cmd: list[str], cache: Path, env: dict | None = None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (bytes) of the command's largest process, and its output; its CPU seconds go to CPU."""
    log = cache.with_suffix(".log")
    env = {**os.environ, "POSLAB_CACHE": str(cache), **(env or {})}
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    CPU[cache.name] = usage.ru_utime + usage.ru_stime
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{text[-3000:]}")
    return seconds, usage.ru_maxrss * 1024, text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64, help="scenes in part 1")
    parser.add_argument("--height", type=int, default=64, help="scene height (width 2x) in both parts")
    parser.add_argument("--procs", type=int, default=2, help="torchrun processes in part 1")
    parser.add_argument("--ns", default="0,26,51,128")
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--stream-images", type=int, default=384, help="scenes in part 2")
    parser.add_argument("--stream-factor", type=float, default=4.0, help="latent bytes / budget in part 2")
    parser.add_argument("--skip", choices=("distributed", "stream"), help="leave one part out")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="poslab-bench-"))
    threads = torch.get_num_threads()
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f} (wall-time ratios "
          "mean little when other jobs hold the cores; CPU seconds show the work done)")

    if args.skip != "distributed":
        sweep = ["sweep", "--val-images", str(args.images), "--height", str(args.height), "--rank-on", "val",
                 "--rankings", "overall", "--ns", args.ns, "--draws", str(args.draws)]
        one = [sys.executable, "-m", "engine", *sweep]
        many = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(args.procs), "-m", "engine", *sweep]
        t1, _, _ = run([*one, "--json", str(tmp / "one.json")], tmp / "c-one", {"OMP_NUM_THREADS": str(threads)})
        t1t, _, _ = run([*one, "--json", str(tmp / "one-1t.json")], tmp / "c-one-1t", {"OMP_NUM_THREADS": "1"})
        tk, _, _ = run([*many, "--json", str(tmp / "many.json")], tmp / "c-many", {"OMP_NUM_THREADS": "1"})
        same_1t = (tmp / "one-1t.json").read_text() == (tmp / "many.json").read_text()
        same = (tmp / "one.json").read_text() == (tmp / "many.json").read_text()
        rows = json.loads((tmp / "many.json").read_text())
        print(f"\nPart 1: sweep of {args.images} scenes {args.height}x{2 * args.height}, {len(rows)} (ranking, N) cells, "
              "ranking in-sample")
        print(f"  1 process, {threads} threads:   {t1:7.1f} s wall, {CPU['c-one']:6.1f} s CPU")
        print(f"  1 process, 1 thread:    {t1t:7.1f} s wall, {CPU['c-one-1t']:6.1f} s CPU")
        print(f"  torchrun {args.procs} processes:    {tk:7.1f} s wall, {CPU['c-many']:6.1f} s CPU (all processes)  -> "
              f"{t1 / tk:.2f}x vs 1 process ({threads} threads), {t1t / tk:.2f}x vs 1 thread")
        print(f"  JSON identical to 1 process with 1 thread: {same_1t}; to {threads} threads: {same}")

    if args.skip != "stream":
        from engine.models.segmentation import build_model, save_model, wrap
        torch.manual_seed(0)
        ckpt = save_model(wrap(build_model("deeplabv3_resnet_slim", output_stride=8), "deeplabv3_resnet_slim", 8),
                          tmp / "slim-os8.pt")
        per_image = 512 * (args.height // 8) * (args.height // 4) * 2  # fp16 latent at output stride 8
        latents = per_image * args.stream_images
        budget = int(latents / args.stream_factor)
        sweep = [sys.executable, "-m", "engine", "sweep", "--checkpoint", str(ckpt), "--val-images", str(args.stream_images),
                 "--height", str(args.height), "--rank-on", "val", "--rankings", "overall", "--ns", "0,128", "--draws", "1"]
        base = [a if a != str(args.stream_images) else "32" for a in sweep]  # one batch: everything but the bulk
        _, rss_0, _ = run([*base, "--cache-limit", str(budget)], tmp / "c-base")
        tm, rss_m, _ = run([*sweep, "--json", str(tmp / "mem.json"), "--cache-limit", str(4 * latents)], tmp / "c-mem")
        ts, rss_s, text = run([*sweep, "--json", str(tmp / "stream.json"), "--cache-limit", str(budget)], tmp / "c-stream")
        assert "streamed from disk" in text, text[-2000:]
        same = (tmp / "mem.json").read_text() == (tmp / "stream.json").read_text()
        mib = 1 << 20
        print(f"\nPart 2: sweep of {args.stream_images} scenes {args.height}x{2 * args.height}, slim ResNet output stride 8 "
              f"(random weights), 3 (ranking, N) cells")
        print(f"  latents {latents / mib:.1f} MiB, budget (--cache-limit) {budget / mib:.1f} MiB "
              f"({latents / budget:.1f}x smaller)")
        extra = args.stream_images * args.height * 2 * args.height * 4 / mib  # images + labels beyond one batch's
        print(f"  the same command on 32 scenes (model, libraries, one batch): peak RSS {rss_0 / mib:.1f} MiB; the "
              f"{args.stream_images} scenes' images and labels add {extra:.1f} MiB")
        print(f"  in memory: {tm:7.1f} s, peak RSS {rss_m / mib:7.1f} MiB (+{(rss_m - rss_0) / mib:.1f} over 32 scenes)")
        print(f"  streamed:  {ts:7.1f} s, peak RSS {rss_s / mib:7.1f} MiB (+{(rss_s - rss_0) / mib:.1f} over 32 scenes)"
              f"  -> time {ts / tm:.2f}x in-memory, peak RSS {(rss_m - rss_s) / mib:.1f} MiB lower")
        print(f"  JSON identical: {same}")
    print(f"\n(outputs in {tmp})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
