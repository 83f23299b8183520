"""Backbone latents computed once per (model, data) and kept in memory and on disk.

Re-running only the head on cached latents is what makes ablations live. Latents are stored in
fp16 by default (half the memory of fp32; fp32 is kept for exact comparisons); the in-memory
cache is a byte-bounded LRU shared by threads; disk copies are keyed by
``fingerprint(model weights, data config, precision)``.

At scale (:func:`latents_for`): the latents of some images (one rank's shard, a subset) are computed in the
same batches as for the whole data set and kept in memory when they fit a byte budget; otherwise they are
written to an fp16 ``.npy`` file on disk and read back in chunks (:class:`StreamedLatents`), so memory holds
one chunk at a time. Both kinds yield ``chunks(rows)``, which is all the sweeps need.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.core.cache import CACHE, Cache
from engine.core.device import autocast
from engine.core.progress import Progress, ProgressFn, StopToken, report
from engine.core.storage import cache_dir, fingerprint, stored
from engine.data.cityscapes_classes import IGNORE
from engine.data.scenes import SceneSet
from engine.models.segmentation import SegModel, backbone_latent, to_input

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

    def __len__(self) -> int:
        return len(self.labels)

    def chunks(self, rows: int | None = None) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """``(start, z, labels)`` of consecutive ``rows`` images (all at once by default)."""
        rows = rows or max(len(self), 1)
        for start in range(0, len(self), rows):
            yield start, self.z[start:start + rows], self.labels[start:start + rows]


@dataclass(frozen=True)
class StreamedLatents:
    """Latents in an ``.npy`` file on disk, read ``rows`` images at a time; labels in memory.

    The file keeps the backbone's memory layout (``channels_last``: stored as N,h,w,C), so a chunk read back is
    the very tensor the backbone produced, strides included, and the head computes the same bits on it."""

    path: Path
    shape: tuple[int, ...]  # (images, C, h, w)
    dtype: torch.dtype
    labels: torch.Tensor
    size: tuple[int, int]
    key: str
    rows: int = BATCH  # images per chunk read (a multiple of BATCH: head batches stay those of one process)
    channels_last: bool = False

    @property
    def nbytes(self) -> int:
        """Memory held between chunks: the labels only."""
        return self.labels.numel()

    @property
    def disk_bytes(self) -> int:
        """Bytes of latents on disk."""
        return int(np.prod(self.shape)) * torch.finfo(self.dtype).bits // 8

    @property
    def image_bytes(self) -> int:
        """Bytes of one image's latent."""
        return self.disk_bytes // max(self.shape[0], 1)

    def __len__(self) -> int:
        return self.shape[0]

    def chunks(self, rows: int | None = None) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """``(start, z, labels)`` of consecutive ``rows`` images, each read from disk once into fresh memory (the
        file mapping is dropped after every chunk, so resident memory stays about one chunk)."""
        rows = rows or self.rows
        for start in range(0, len(self), rows):
            mm = np.load(self.path, mmap_mode="r")
            z = torch.from_numpy(np.array(mm[start:start + rows]))
            del mm
            yield start, z.permute(0, 3, 1, 2) if self.channels_last else z, self.labels[start:start + rows]


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


NUMPY = {torch.float16: np.float16, torch.float32: np.float32}


def _is_channels_last(z: torch.Tensor) -> bool:
    return z.dim() == 4 and not z.is_contiguous() and z.is_contiguous(memory_format=torch.channels_last)


def _write_npy(path: Path, batches: Iterator[torch.Tensor], count: int, channels_last: bool) -> tuple[int, ...]:
    """Write ``count`` rows arriving in batches to an ``.npy`` file atomically (temporary file, then rename), never
    holding more than one batch, as N,h,w,C when ``channels_last``; the logical (N,C,h,w) shape."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            shape: tuple[int, ...] | None = None
            for z in batches:
                stored = z.permute(0, 2, 3, 1) if channels_last else z
                if shape is None:
                    shape = (count, *z.shape[1:])
                    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(NUMPY[z.dtype])), "fortran_order": False,
                              "shape": (count, *stored.shape[1:])}
                    np.lib.format.write_array_header_1_0(fh, header)
                fh.write(stored.contiguous().numpy().tobytes())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return shape or (0,)


def _latent_batches(seg: SegModel, images: np.ndarray, index: np.ndarray, dtype: torch.dtype,
                    on_progress: ProgressFn | None, stop: StopToken | None) -> Iterator[torch.Tensor]:
    """Latents of the images ``index`` (sorted), each computed in its batch of the whole data set's batch grid (so it
    is bit-identical to :func:`compute_latents` on all images)."""
    device = next(seg.model.parameters()).device
    done = 0
    for b in np.unique(index // BATCH):
        if stop:
            stop.check()
        rows = index[(index >= b * BATCH) & (index < (b + 1) * BATCH)] - b * BATCH
        with torch.inference_mode(), autocast(device, enabled=dtype != torch.float32):
            x = to_input(images[b * BATCH:(b + 1) * BATCH]).to(device)
            z = backbone_latent(seg.model, x).to("cpu", dtype)
        done += len(rows)
        report(on_progress, Progress(done, len(index), "backbone latents"))
        yield z[torch.as_tensor(rows)]


def latents_for(seg: SegModel, data: SceneSet, index: np.ndarray | None = None, precision: str = "fp16",
                limit: int | None = None, use_disk: bool = True, on_progress: ProgressFn | None = None,
                stop: StopToken | None = None) -> Latents | StreamedLatents:
    """Latents of the images ``index`` (default: all) of ``data``, in memory when they fit ``limit`` bytes (default:
    no limit), else streamed from an fp16/fp32 ``.npy`` file in the cache folder (reused by later runs; written
    atomically). Each image is computed in the same batch as for the whole data set, so values equal
    :meth:`LatentCache.get`'s whatever the index. With ``use_disk`` off (uploaded models) nothing is kept on disk:
    the file of a streamed run is deleted when the returned object is garbage."""
    index = np.arange(len(data.labels)) if index is None else np.asarray(index, dtype=np.int64)
    if len(index) and (np.diff(index) <= 0).any():
        raise ValueError("image indices must be sorted and distinct")
    dtype = PRECISIONS[precision]
    whole = len(index) == len(data.labels)  # sorted and distinct: every image
    labels = torch.from_numpy(data.labels if whole else data.labels[index])
    size = tuple(data.labels.shape[1:])
    key = fingerprint(seg.fingerprint, data.key, precision, torch.from_numpy(index))
    folder = cache_dir() / "seg" / "stream"
    found = [(folder / f"{key}.{layout}.npy", layout == "nhwc") for layout in ("nchw", "nhwc")]
    found = [(path, last) for path, last in found if path.is_file()]
    if use_disk and found:
        path, last = found[0]
        mm = np.load(path, mmap_mode="r")
        shape = (mm.shape[0], mm.shape[3], mm.shape[1], mm.shape[2]) if last else tuple(mm.shape)
        del mm
        per_image = int(np.prod(shape[1:])) * torch.finfo(dtype).bits // 8
        streamed = StreamedLatents(path, shape, dtype, labels, size, key, chunk_rows(per_image, limit), last)
        if limit is None or streamed.disk_bytes <= limit:
            return Latents(torch.cat([z for _, z, _ in streamed.chunks(BATCH * 8)]) if len(index) else
                           torch.empty(0, dtype=dtype), labels, size, key)
        return streamed
    if not len(index):
        return Latents(torch.empty(0, dtype=dtype), labels, size, key)
    batches = _latent_batches(seg, data.images, index, dtype, on_progress, stop)
    first = next(batches)
    per_image = first[0].numel() * first.element_size()
    if limit is None or per_image * len(index) <= limit:
        return Latents(torch.cat([first, *batches]), labels, size, key)
    last = _is_channels_last(first)
    path = folder / f"{key}.{'nhwc' if last else 'nchw'}.npy"
    if not use_disk:  # a private temporary file, removed with the object
        path = Path(tempfile.mkdtemp(prefix="poslab-latents-")) / path.name
    try:
        shape = _write_npy(path, _chain(first, batches), len(index), last)
    except BaseException:
        if not use_disk:
            shutil.rmtree(path.parent, ignore_errors=True)
        raise
    streamed = StreamedLatents(path, shape, dtype, labels, size, key, chunk_rows(per_image, limit), last)
    if not use_disk:
        weakref.finalize(streamed, shutil.rmtree, str(path.parent), True)
    return streamed


def latent_bytes(seg: SegModel, data: SceneSet, precision: str = "fp16") -> int:
    """Bytes of one image's latent in storage precision (from one forward of the first image)."""
    if not len(data.images):
        return 0
    device = next(seg.model.parameters()).device
    with torch.inference_mode():
        z = backbone_latent(seg.model, to_input(data.images[:1]).to(device))
    return z[0].numel() * torch.finfo(PRECISIONS[precision]).bits // 8


def chunk_rows(image_bytes: int, limit: int | None) -> int:
    """Images per streamed chunk: as many whole batches as fit ``limit`` bytes of latents (at least one batch)."""
    if not limit:
        return BATCH
    return max(BATCH, limit // max(image_bytes, 1) // BATCH * BATCH)


def _chain(first: torch.Tensor, rest: Iterator[torch.Tensor]) -> Iterator[torch.Tensor]:
    yield first
    yield from rest


class LatentCache:
    """Latents of whole scene sets in the shared byte-bounded :class:`~engine.core.cache.Cache` (``cache``), backed
    by files in the cache folder unless ``use_disk`` is off (uploaded models)."""

    def __init__(self, cache: Cache = CACHE, use_disk: bool = True) -> None:
        self.cache, self.use_disk = cache, use_disk

    def get(self, seg: SegModel, data: SceneSet, precision: str = "fp16",
            on_progress: ProgressFn | None = None, stop: StopToken | None = None) -> Latents:
        """Latents of ``data`` under ``seg``: from memory, else disk, else computed (and stored)."""
        key = fingerprint(seg.fingerprint, data.key, precision)

        def compute() -> Latents:
            def run() -> dict[str, torch.Tensor]:
                return {"z": compute_latents(seg, data.images, PRECISIONS[precision], on_progress=on_progress, stop=stop)}
            z = (stored(cache_dir() / "seg" / "latents" / f"{key}.pt", run) if self.use_disk else run())["z"]
            return Latents(z, torch.from_numpy(data.labels), tuple(data.labels.shape[1:]), key)

        return self.cache.get_or_compute(f"seg/latents/{key}", compute)
