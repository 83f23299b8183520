"""Backbone latents computed once per (model, data) and kept in memory and on disk.

Re-running only the head on cached latents is what makes ablations live. Latents are stored in
fp16 by default (half the memory of fp32; fp32 is kept for exact comparisons); the in-memory
cache is a byte-bounded LRU shared by threads; disk copies are keyed by
``fingerprint(model weights, data config, precision)``.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from engine.device import autocast
from engine.progress import Progress, ProgressFn, StopToken, report
from engine.seg.classes import IGNORE
from engine.seg.models import SegModel, backbone_latent, to_input
from engine.seg.scenes import SceneSet
from engine.storage import cache_dir, fingerprint, load_torch, save_torch

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16}
BATCH = 32  # one batch size for latents, head and full forward keeps fp32 results bit-identical


@dataclass(frozen=True)
class Latents:
    """Cached backbone outputs z (N,C,h,w) in storage dtype, with the labels and image size they belong to."""

    z: torch.Tensor
    labels: torch.Tensor
    size: tuple[int, int]
    key: str

    @property
    def nbytes(self) -> int:
        """Memory held by the latents and labels."""
        return self.z.numel() * self.z.element_size() + self.labels.numel()

    def take(self, index: np.ndarray | list[int]) -> "Latents":
        """The latents of a subset of images (e.g. val-left), without recomputing anything."""
        idx = torch.as_tensor(np.asarray(index, dtype=np.int64))
        return Latents(self.z[idx], self.labels[idx], self.size, f"{self.key}:{fingerprint(idx)}")


def compute_latents(seg: SegModel, images: np.ndarray, dtype: torch.dtype = torch.float16, batch_size: int = BATCH,
                    on_progress: ProgressFn | None = None, stop: StopToken | None = None) -> torch.Tensor:
    """Backbone latents of uint8 images, in batches; fp32 compute when storing fp32, else bf16 autocast."""
    device = next(seg.model.parameters()).device
    out = []
    with torch.inference_mode(), autocast(device, enabled=dtype != torch.float32):
        for start in range(0, len(images), batch_size):
            if stop:
                stop.check()
            x = to_input(images[start:start + batch_size]).to(device)
            out.append(backbone_latent(seg.model, x).to("cpu", dtype))
            report(on_progress, Progress(min(start + batch_size, len(images)), len(images), "backbone latents"))
    return torch.cat(out)


def unlabelled_latents(seg: SegModel, images: np.ndarray, precision: str = "fp32") -> Latents:
    """Latents of images without ground truth (e.g. an uploaded photo): labels are all ignore."""
    z = compute_latents(seg, images, PRECISIONS[precision])
    labels = torch.full(images.shape[:3], IGNORE, dtype=torch.uint8)
    return Latents(z, labels, tuple(images.shape[1:3]), fingerprint(seg.fingerprint, torch.from_numpy(images), precision))


class LatentCache:
    """Thread-safe byte-bounded LRU of :class:`Latents`, backed by files in the cache folder."""

    def __init__(self, max_bytes: int = 1 << 30, use_disk: bool = True) -> None:
        self.max_bytes, self.use_disk = max_bytes, use_disk
        self._items: OrderedDict[str, Latents] = OrderedDict()
        self._lock = threading.Lock()
        self.peak_bytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes held in memory now."""
        return sum(v.nbytes for v in self._items.values())

    def get(self, seg: SegModel, data: SceneSet, precision: str = "fp16",
            on_progress: ProgressFn | None = None, stop: StopToken | None = None) -> Latents:
        """Latents of ``data`` under ``seg``: from memory, else disk, else computed (and stored)."""
        key = fingerprint(seg.fingerprint, data.key, precision)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            path = cache_dir() / "seg" / "latents" / f"{key}.pt"
            z = load_torch(path)["z"] if self.use_disk and path.is_file() else None
            if z is None:
                z = compute_latents(seg, data.images, PRECISIONS[precision], on_progress=on_progress, stop=stop)
                if self.use_disk:
                    save_torch({"z": z}, path)
            item = Latents(z, torch.from_numpy(data.labels), tuple(data.labels.shape[1:]), key)
            self._items[key] = item
            while len(self._items) > 1 and self.nbytes > self.max_bytes:
                self._items.popitem(last=False)
            self.peak_bytes = max(self.peak_bytes, self.nbytes)
            return item
