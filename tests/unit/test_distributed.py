"""Sharded runs (torchrun, gloo on CPU) equal one process exactly; shards cover every image once; latents streamed
from disk give the in-memory numbers; a failing or missing rank fails the run with its message, never a hang; a
failed run leaves no JSON.

Run as a script (``torchrun ... tests/unit/test_distributed.py MODE OUT``) this file is the worker of those runs.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

DATA = ["--val-images", "72", "--height", "32", "--rank-on", "val"]  # 3 batches of 32: rank 1 holds 2 of them
COMMANDS = {  # name -> arguments; each writes <out>/<name>.json
    "rank": ["rank", "--method", "overall", "left", *DATA],
    "sweep": ["sweep", "--rankings", "overall,magnitude", "--ns", "0,25,128", "--draws", "2", *DATA],
    "streamed": ["sweep", "--rankings", "overall", "--ns", "0,64", "--draws", "1", "--cache-limit", "1K", *DATA],
    "ablate": ["ablate", "--ranking", "left", "--n", "64", "--subset", "val-left", *DATA],
    "position": ["position", "--moves", "mirror", "--cache-limit", "1K", *DATA],
    "one-batch": ["sweep", "--rankings", "overall", "--ns", "0,64", "--draws", "1", *DATA, "--val-images", "16"],  # rank 0: none
}
TIMEOUT = 300  # seconds for a whole torchrun run on a loaded 2-core machine


def _run_commands(out: Path, names) -> list[int]:
    from engine.cli.main import main
    return [main([*COMMANDS[name], "--json", str(out / f"{name}.json")]) for name in names]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(tmp_path: Path, mode: str, processes: int) -> subprocess.CompletedProcess:
    """This file as the worker: under torchrun for 2+ processes, plainly for 1. One thread per process either way:
    CPU convolutions round differently with another thread count (the engine's exactness is per thread count)."""
    env = {**os.environ, "POSLAB_CACHE": str(tmp_path / f"cache-{mode}-{processes}"), "OMP_NUM_THREADS": "1"}
    out = tmp_path / f"{mode}-{processes}"
    out.mkdir()
    launch = ["-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_addr", "127.0.0.1",
              "--master_port", str(_free_port())] if processes > 1 else []
    return subprocess.run([sys.executable, *launch, __file__, mode, str(out)], capture_output=True, text=True,
                          timeout=TIMEOUT, env=env, cwd=Path(__file__).resolve().parents[2])


def test_shards_cover_every_item_once_in_whole_blocks():
    from engine.core.distributed import block_range
    for count in (0, 1, 5, 31, 32, 33, 72, 500):
        for world in (1, 2, 3, 7, 8, 40):
            for block in (1, 32):
                ranges = [block_range(count, r, world, block) for r in range(world)]
                covered = [i for a, b in ranges for i in range(a, b)]
                assert covered == list(range(count)), (count, world, block)
                assert all(a % block == 0 for a, b in ranges if b > a)  # whole blocks: same batches as one process
                sizes = [-(-(b - a) // block) for a, b in ranges]
                assert max(sizes) - min(sizes) <= 1  # as even as whole blocks allow
    assert sum(a == b for a, b in (block_range(3, r, 8) for r in range(8))) == 5  # more ranks than items: 5 empty shares
    with pytest.raises(ValueError):
        block_range(5, 2, 2)


def test_sizes_parse():
    from engine.core.distributed import parse_bytes
    assert parse_bytes("2G") == 2 << 30 and parse_bytes("500M") == 500 << 20 and parse_bytes("1.5k") == 1536
    assert parse_bytes("64MiB") == 64 << 20 and parse_bytes("1000") == 1000
    with pytest.raises(ValueError, match="not a size"):
        parse_bytes("lots")


def test_streamed_sweep_equals_the_in_memory_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path))
    from engine.core.progress import Stopped, StopToken
    from engine.data.scenes import SceneConfig, generate
    from engine.models.segmentation import load_model
    from engine.seg.ablation import channel_mask, evaluate_latents, evaluate_masks, random_order, sweep
    from engine.seg.features import LatentCache, StreamedLatents, latents_for
    from engine.seg.lab import subset_index
    seg, data = load_model(), generate(SceneConfig("val", 72, 32, 64, 3))
    memory = LatentCache(use_disk=False).get(seg, data)
    streamed = latents_for(seg, data, limit=1)
    assert isinstance(streamed, StreamedLatents) and streamed.rows == 32 and len(list(streamed.chunks())) == 3
    assert streamed.disk_bytes == memory.z.numel() * 2 and streamed.nbytes == memory.labels.numel()
    orders = {"a": random_order(seg.channels, 7)}
    assert json.dumps(sweep(seg, streamed, orders, [0, 64, 300], 1)) == json.dumps(sweep(seg, memory, orders, [0, 64, 300], 1))
    again = latents_for(seg, data, limit=1)  # the file is reused, not recomputed
    assert again.path == streamed.path and len(list((tmp_path / "seg" / "stream").iterdir())) == 1
    left = subset_index(data, "val-left")  # a subset: computed in the whole set's batches, so the same values
    sub = latents_for(seg, data, left, limit=1, use_disk=False)
    mask = [channel_mask(seg.channels, np.arange(100))]
    got, want = evaluate_masks(seg, sub, mask)[0], evaluate_latents(seg, memory.take(left), mask[0])
    assert all((got[r] == want[r]).all() for r in got)  # and the same as the live path's matrices
    stop = StopToken()
    with pytest.raises(Stopped):  # stopped while writing: no file, no temporary file left
        latents_for(seg, data, np.arange(40), limit=1, on_progress=lambda p: stop.stop(), stop=stop)
    assert len(list((tmp_path / "seg" / "stream").iterdir())) == 1


def test_two_gloo_processes_equal_one_process_exactly(tmp_path):
    one, two = _worker(tmp_path, "all", 1), _worker(tmp_path, "all", 2)
    for run in (one, two):
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "2 processes (gloo)" in two.stdout and "latents streamed from disk" in two.stdout
    for name in COMMANDS:  # identical JSON: channel orders, scores, every mIoU (from identical integer matrices)
        assert (tmp_path / "all-1" / f"{name}.json").read_text() == (tmp_path / "all-2" / f"{name}.json").read_text(), name
    assert json.loads((tmp_path / "all-2" / "rank.json").read_text())[0]["images"] == 72


def test_a_failing_rank_fails_the_run_with_its_message_and_no_json(tmp_path):
    run = _worker(tmp_path, "fail", 2)
    assert run.returncode != 0
    assert "rank 1 of 2: disk full (test)" in run.stdout + run.stderr
    assert not list((tmp_path / "fail-2").iterdir())  # rank 0 was waiting to write: nothing, not even a temporary file


def test_a_missing_rank_times_out_instead_of_hanging():
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port())}
    code = "from engine.core import distributed; distributed.init(timeout_s=3)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode != 0 and "rank 0 of 2: could not join the gloo process group" in run.stderr


if __name__ == "__main__":  # the worker of a torchrun run: MODE OUT
    import engine  # noqa: F401  (torchvision importable first)
    from engine.core import distributed

    mode, out = sys.argv[1], Path(sys.argv[2])
    shard = distributed.init()
    if mode == "fail" and shard.rank == 1:  # fails after rank 0 has entered the sweep's all_reduce
        import engine.seg.lab as lab

        def broken(*args, **kwargs):
            raise ValueError("disk full (test)")
        lab.latents_for = broken
    codes = _run_commands(out, ["streamed"] if mode == "fail" else COMMANDS)
    distributed.finish()
    raise SystemExit(max(codes))
