"""Rank latent channels by how much their global average changes when the image is flipped.

- ``overall`` (Eq. 2): mean over val of |GAP(z(x)) - GAP(z(flip x))|, descending.
- ``left`` / ``right`` (Eq. 3): mean signed difference over val-left / val-right, descending.
- ``kflip1`` (Kernel-Flip*): Eq. 2 through a copy of the model with width-mirrored backbone kernels.
- ``kflip2`` (Kernel-Flip**): |GAP(z(x)) - GAP(z'(x))|, original vs kernel-flipped copy, same image.
- ``magnitude``: mean GAP(z(x)), descending: a baseline that ranks merely *large* channels, to tell
  flip-sensitive channels from big ones.
- ``relative``: Eq. 2 divided by ``magnitude`` (flip change per unit of activation), descending: flip
  sensitivity with size taken out, for when the Eq. 2 top and the largest channels are the same ones.

A :class:`Ranking` keeps the sum and the image count, so partial rankings of shards add up. Under torchrun
(``shard``, engine.core.distributed) each rank sums whole batches of the images and every batch's sum is gathered
in order, so the total is folded exactly as one process folds it: the same bits, hence the same order.
Results are cached on disk, keyed by model weights + data + method + precision; the default
model's rankings ship in assets/seg/rankings.json under the same keys.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.core.device import autocast
from engine.core.distributed import SINGLE, Shard
from engine.core.progress import Progress, ProgressFn, StopToken, report
from engine.core.storage import ASSETS, cache_dir, fingerprint, save_json
from engine.data.scenes import SceneSet, person_subsets
from engine.models.segmentation import SegModel, backbone_latent, kernel_flipped, to_input
from engine.seg.features import BATCH

METHODS = ("overall", "left", "right", "kflip1", "kflip2", "magnitude", "relative")
SHIPPED = ASSETS / "seg" / "rankings.json"


@dataclass
class Ranking:
    """Summed per-image GAP differences of one method, and how many images were summed."""

    method: str
    total: np.ndarray
    count: int

    def __add__(self, other: "Ranking") -> "Ranking":
        if other.method != self.method:
            raise ValueError("cannot add rankings of different methods")
        return Ranking(self.method, self.total + other.total, self.count + other.count)

    @property
    def scores(self) -> np.ndarray:
        """Mean difference per channel (the ranking score)."""
        return self.total / max(self.count, 1)

    @property
    def order(self) -> np.ndarray:
        """Channel indices from most to least position-encoding (stable on ties)."""
        return np.argsort(-self.scores, kind="stable")

    def to_json(self) -> dict:
        return {"method": self.method, "count": self.count, "total": self.total.tolist()}

    @staticmethod
    def from_json(obj: dict) -> "Ranking":
        return Ranking(obj["method"], np.asarray(obj["total"], dtype=np.float64), int(obj["count"]))


def ranking_images(method: str, data: SceneSet) -> np.ndarray:
    """Indices of the images a method ranks on: val-left / val-right for Eq. 3, all images otherwise."""
    if method not in METHODS:
        raise ValueError(f"unknown ranking method {method!r}; expected one of {METHODS}")
    return person_subsets(data.labels)[method] if method in ("left", "right") else np.arange(len(data.labels))


def _gap(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return backbone_latent(model, x).float().mean((2, 3)).double()


def partial_ranking(seg: SegModel, images: np.ndarray, method: str, precision: str = "fp32",
                    on_progress: ProgressFn | None = None, stop: StopToken | None = None, shard: Shard = SINGLE) -> Ranking:
    """The summed differences of ``method`` over ``images`` (shards reduce with ``+``; with ``shard``, this rank
    computes its batches and the result is the whole set's, summed in one process's order)."""
    if method == "relative":
        raise ValueError("the relative ranking is derived from the overall and magnitude rankings: use rank()")
    device = next(seg.model.parameters()).device
    flipped = kernel_flipped(seg.model) if method.startswith("kflip") else None
    first = flipped if method == "kflip1" else seg.model
    lo, hi = shard.range(len(images), BATCH)
    sums = []
    with torch.inference_mode(), autocast(device, enabled=precision != "fp32"):
        for start in range(lo, hi, BATCH):
            if stop:
                stop.check()
            x = to_input(images[start:start + BATCH]).to(device)
            a = _gap(first, x)
            if method == "magnitude":
                sums.append(a.sum(0).cpu())
            else:
                diff = a - (_gap(flipped, x) if method == "kflip2" else _gap(first, x.flip(-1)))
                sums.append((diff if method in ("left", "right") else diff.abs()).sum(0).cpu())
            report(on_progress, Progress(min(start + BATCH, hi) - lo, hi - lo, f"ranking {method}"))
    local = torch.stack(sums) if sums else torch.zeros(0, seg.channels, dtype=torch.float64)
    total = torch.zeros(seg.channels, dtype=torch.float64)
    for row in shard.gather_rows(local, lo // BATCH, -(-len(images) // BATCH)):  # one process's order of additions
        total += row
    return Ranking(method, total.numpy(), len(images))


def ranking_key(seg: SegModel, data: SceneSet, method: str, precision: str = "fp32") -> str:
    """Cache key of a ranking: model weights, data, method and precision."""
    return fingerprint(seg.fingerprint, data.key, method, precision)


def add_to_shipped(seg: SegModel, data: SceneSet, ranking: Ranking, path: Path = SHIPPED, precision: str = "fp32") -> None:
    """Store ``ranking`` in a rankings file under its cache key (how assets/seg/rankings.json is made)."""
    if ranking.method == "relative":
        return  # derived from the stored overall and magnitude rankings whenever it is asked for
    stored = json.loads(path.read_text()) if path.is_file() else {}
    stored[ranking_key(seg, data, ranking.method, precision)] = ranking.to_json()
    save_json(stored, path)


def _stored(seg: SegModel, key: str) -> Ranking | None:
    shipped = json.loads(SHIPPED.read_text()) if SHIPPED.is_file() else {}
    if key in shipped:
        return Ranking.from_json(shipped[key])
    path = cache_dir() / "seg" / "rankings" / f"{key}.json"
    if not seg.meta.get("uploaded") and path.is_file():
        return Ranking.from_json(json.loads(path.read_text()))
    return None


def rank(seg: SegModel, data: SceneSet, method: str, precision: str = "fp32",
         on_progress: ProgressFn | None = None, stop: StopToken | None = None, shard: Shard = SINGLE) -> Ranking:
    """A method's ranking of ``seg`` on ``data``: shipped, else cached on disk, else computed and cached.

    Rankings of an uploaded model are never written to disk: nothing derived from an upload outlives it.
    Under torchrun (``shard``) rank 0's lookup decides for every rank, the ranks compute their batches, and
    rank 0 writes the cache file.
    """
    idx = ranking_images(method, data)
    if method == "relative":  # derived from two stored/cached rankings, so nothing of its own to compute or store
        flips, size = (rank(seg, data, m, precision, on_progress, stop, shard) for m in ("overall", "magnitude"))
        return Ranking(method, flips.scores / np.maximum(size.scores, np.finfo(np.float64).tiny) * len(idx), len(idx))
    key = ranking_key(seg, data, method, precision)
    hit = _stored(seg, key) if shard.main else None
    if shard.distributed:
        found = shard.broadcast(hit.to_json() if hit else None)
        hit = Ranking.from_json(found) if found is not None else None
    if hit is not None:
        return hit
    if len(idx) == 0:
        raise ValueError(f"no images for the {method!r} ranking (no image has pedestrians only on that side)")
    result = partial_ranking(seg, data.images[idx], method, precision, on_progress, stop, shard)
    if shard.main and not seg.meta.get("uploaded"):
        save_json(result.to_json(), cache_dir() / "seg" / "rankings" / f"{key}.json")
    return result
