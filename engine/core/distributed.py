"""Sharded runs on PyTorch's own distributed runtime: which images a rank takes, and how partial results combine.

Launched by ``torchrun`` (one node or several), :func:`init` reads the ``RANK`` / ``WORLD_SIZE`` /
``LOCAL_RANK`` / ``MASTER_ADDR`` / ``MASTER_PORT`` variables torchrun sets and starts a process group:
``nccl`` when CUDA is present (each rank on ``cuda:LOCAL_RANK``), ``gloo`` on CPU. Without those
variables it returns :data:`SINGLE`, a one-process :class:`Shard` whose reductions are the identity, so
the same code runs unchanged in one process.

Work is split in contiguous *blocks* (e.g. batches): :func:`block_range` gives every rank a disjoint run
of whole blocks, together covering every item exactly once, for any item count and rank count (ranks
beyond the number of blocks get nothing). Keeping batches whole keeps each item in the same batch as in
one process, so per-item results are bit-identical. Partial results combine with
:meth:`Shard.all_reduce` (sums: exact for integer counts) or :meth:`Shard.gather_rows` (every block's row
in global order, so a float sum can be folded in exactly the one-process order).

Every collective has a timeout (``POSLAB_DIST_TIMEOUT`` seconds, default 1800): a rank that fails ends
with its own message and its peers stop at their next collective instead of waiting forever (under
torchrun the agent also stops them at once). Nothing here knows about any experiment.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

DEFAULT_TIMEOUT_S = 1800.0


def launched() -> bool:
    """Whether this process was started by torchrun (or with its environment variables set by hand)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def block_range(count: int, rank: int, world: int, block: int = 1) -> tuple[int, int]:
    """The items ``[start, stop)`` of ``rank`` among ``world`` ranks: whole blocks of ``block`` items, contiguous,
    as even as the blocks allow; every item in exactly one rank's range (empty for ranks beyond the blocks)."""
    if world < 1 or not 0 <= rank < world or block < 1 or count < 0:
        raise ValueError(f"bad shard: rank {rank} of {world}, block {block}, {count} items")
    blocks = -(-count // block)
    first, last = blocks * rank // world, blocks * (rank + 1) // world
    return min(first * block, count), min(last * block, count)


@dataclass(frozen=True)
class Shard:
    """This process's place in a run: its rank among ``world`` ranks and how results are combined.

    ``backend`` is ``None`` for a single process (every reduction is the identity)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        """More than one rank: reductions talk to the others."""
        return self.backend is not None and self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that prints and writes files."""
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        """Where this rank computes: ``cuda:LOCAL_RANK`` under NCCL, else the CPU."""
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    @property
    def label(self) -> str:
        """``rank r of K`` (for messages)."""
        return f"rank {self.rank} of {self.world}"

    def range(self, count: int, block: int = 1) -> tuple[int, int]:
        """This rank's ``[start, stop)`` of ``count`` items in whole blocks (see :func:`block_range`)."""
        return block_range(count, self.rank, self.world, block)

    def _to_comm(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self.device) if self.backend == "nccl" else tensor.clone()

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """The elementwise sum of ``tensor`` over all ranks (a new CPU tensor; the input itself for one process)."""
        if not self.distributed:
            return tensor
        buf = self._to_comm(tensor)
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        return buf.cpu()

    def gather_rows(self, local: torch.Tensor, start: int, total: int) -> torch.Tensor:
        """All ranks' rows in global order: this rank's ``local`` rows are rows ``[start, start + len(local))`` of a
        ``total``-row result. Every row comes from one rank and the rest add zeros, so the values are exact."""
        if not self.distributed:
            return local
        full = torch.zeros((total, *local.shape[1:]), dtype=local.dtype)
        full[start:start + len(local)] = local
        return self.all_reduce(full)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (a picklable value), e.g. a cache lookup every rank must agree on."""
        if not self.distributed:
            return obj
        box = [obj if self.main else None]
        dist.broadcast_object_list(box, src=0, device=self.device if self.backend == "nccl" else None)
        return box[0]

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.distributed:
            dist.barrier()


SINGLE = Shard()


def timeout_seconds() -> float:
    """The collective timeout: ``POSLAB_DIST_TIMEOUT`` seconds, default 1800."""
    return float(os.environ.get("POSLAB_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))


def init(timeout_s: float | None = None, backend: str | None = None) -> Shard:
    """Join the torchrun process group (started once per process; later calls return the same shard), or
    :data:`SINGLE` when not launched by torchrun. ``backend`` defaults to nccl with CUDA, else gloo."""
    if not launched():
        return SINGLE
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if dist.is_initialized():
        return Shard(dist.get_rank(), dist.get_world_size(), local_rank, dist.get_backend())
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if world == 1:  # torchrun --nproc_per_node 1: one process, but on its own GPU
        return Shard(0, 1, local_rank, backend if backend == "nccl" else None)
    seconds = timeout_s or timeout_seconds()
    try:
        dist.init_process_group(backend, timeout=timedelta(seconds=seconds))
    except Exception as err:  # noqa: BLE001 - store and backend errors come in many types
        where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
        raise RuntimeError(f"rank {rank} of {world}: could not join the {backend} process group at {where} within "
                           f"{seconds:g} s: {type(err).__name__}: {err}") from err
    return Shard(rank, world, local_rank, backend)


def active() -> bool:
    """Whether this process is in a process group now."""
    return dist.is_available() and dist.is_initialized()


def finish() -> None:
    """Leave the process group (if one was started)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_bytes(text: str | int) -> int:
    """``2G``, ``500M``, ``64k``, ``1.5G`` or a plain byte count as bytes (binary units; a trailing B/iB is allowed)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", str(text))
    if not m:
        raise ValueError(f"not a size: {text!r} (expected e.g. 2G, 500M, 64K or a byte count)")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable`` on Linux, else free physical pages)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def memory_budget(share: float = 0.5) -> int:
    """A per-process memory budget: ``share`` of the available memory split over the ranks on this node."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return int(available_memory() * share / max(local, 1))
