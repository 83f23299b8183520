"""Zero sets of latent channels before the head and measure mIoU per region (paper Fig. 4-6).

The shared model is never modified: the channels to zero travel as a mask tensor multiplied into
a copy of the latent (no hooks). The cached path runs only the head on :class:`Latents`; the
naive path (:func:`evaluate_full`) runs the whole network for every channel set, as the paper's
scripts do, and gives the same confusion matrices in fp32.

Sweeps go through :func:`evaluate_masks`: every channel set's confusion matrices accumulate chunk by
chunk, so latents streamed from disk (:class:`StreamedLatents`) are read once per sweep, and a
``shard`` (engine.core.distributed) sums the integer matrices of all ranks: the same numbers as one process.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from engine.core.device import autocast
from engine.core.distributed import SINGLE, Shard
from engine.core.progress import Progress, ProgressFn, StopToken, report
from engine.data.cityscapes_classes import NUM_CLASSES
from engine.data.scenes import SceneSet
from engine.models.segmentation import SegModel, backbone_latent, class_logits, head_logits, to_input, upsample_logits
from engine.seg.features import BATCH, Latents, StreamedLatents
from engine.seg.metrics import REGIONS, miou, quarter_counts, region_confusions, regions_of

SLICE = 4  # images upsampled, argmaxed and counted at a time: their full-size logits (~10 MB at 128x256) stay in cache


def channel_mask(channels: int, zeroed: Sequence[int] | np.ndarray) -> torch.Tensor:
    """A float mask over latent channels: 0 for the zeroed ones, 1 elsewhere."""
    mask = torch.ones(channels)
    mask[torch.as_tensor(np.asarray(zeroed, dtype=np.int64))] = 0
    return mask


def random_order(channels: int, seed: int) -> np.ndarray:
    """A seeded random channel order: its first N are "N random channels" (nested as N grows)."""
    return np.random.default_rng(seed).permutation(channels)


def select(order: np.ndarray, n: int | None = None, rank_range: tuple[int, int] | None = None) -> np.ndarray:
    """Channels to zero from an order: its top ``n``, or the ranks ``[a, b)``."""
    if rank_range is not None:
        return order[rank_range[0]:rank_range[1]]
    return order[: n or 0]


def _device(seg: SegModel) -> torch.device:
    return next(seg.model.parameters()).device


def _accumulate(total: dict[str, torch.Tensor] | None, part: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return part if total is None else {r: total[r] + part[r] for r in REGIONS}


def _predict(seg: SegModel, z: torch.Tensor, size: tuple[int, int], mask: torch.Tensor | None) -> torch.Tensor:
    device, exact = _device(seg), z.dtype == torch.float32
    preds = []
    with torch.inference_mode(), autocast(device, enabled=not exact):
        for start in range(0, len(z), BATCH):
            logits = head_logits(seg.model, z[start:start + BATCH].to(device), size, mask)
            preds.append(logits.argmax(1).to("cpu", torch.uint8))
    return torch.cat(preds)


def predict_latents(seg: SegModel, lat: Latents, mask: torch.Tensor | None = None, index: slice | None = None) -> torch.Tensor:
    """Predicted train ids (N,H,W uint8) from cached latents, head only (fp32 when the latents are fp32)."""
    return _predict(seg, lat.z if index is None else lat.z[index], lat.size, mask)


def _confusions(seg: SegModel, z: torch.Tensor, labels: torch.Tensor, size: tuple[int, int],
                mask: torch.Tensor | None) -> torch.Tensor:
    """(4 quarters, K, K) counts of the head's predictions on ``z``, batch by batch on the model's device (on a GPU
    the argmax and the counting stay there; only the counts come back). The head runs on whole batches; upsampling,
    argmax and counting on :data:`SLICE` images at a time, whose logits stay in cache (same values as the batch)."""
    device, exact = _device(seg), z.dtype == torch.float32
    total = torch.zeros(4, NUM_CLASSES, NUM_CLASSES, dtype=torch.int64, device=device)
    with torch.inference_mode(), autocast(device, enabled=not exact):
        for start in range(0, len(z), BATCH):
            low = class_logits(seg.model, z[start:start + BATCH].to(device), mask)
            for s in range(0, len(low), SLICE):
                logits = upsample_logits(low[s:s + SLICE], size)
                pred = logits.permute(0, 2, 3, 1).argmax(-1)  # over the contiguous class axis of channels_last
                total += quarter_counts(pred, labels[start + s:start + s + SLICE].to(device))
    return total.cpu()


def evaluate_masks(seg: SegModel, lat: Latents | StreamedLatents, masks: Sequence[torch.Tensor | None],
                   shard: Shard = SINGLE, names: Sequence[str] | None = None, on_progress: ProgressFn | None = None,
                   stop: StopToken | None = None) -> list[dict[str, torch.Tensor]]:
    """Region confusion matrices for each mask, summed over every rank of ``shard``.

    Latents are read chunk by chunk (one chunk in memory, each read once); within a chunk every mask runs the
    head. Chunks are whole batches, so each image meets the head in the batch it would in one process, and the
    integer sums equal the one-process matrices (and :func:`evaluate_latents`') exactly."""
    total = torch.zeros(len(masks), 4, NUM_CLASSES, NUM_CLASSES, dtype=torch.int64)
    rows = getattr(lat, "rows", None) or max(len(lat), 1)
    chunks, steps = -(-len(lat) // rows), 0
    for c, (_, z, labels) in enumerate(lat.chunks(rows)):
        for j, mask in enumerate(masks):
            if stop:
                stop.check()
            total[j] += _confusions(seg, z, labels, lat.size, mask)
            steps += 1
            last = c == chunks - 1
            report(on_progress, Progress(steps, chunks * len(masks), names[j] if names else "head",
                                         {"all": miou(total[j].sum(0))} if last else {}))
    total = shard.all_reduce(total)
    return [regions_of(t) for t in total]


def evaluate_latents(seg: SegModel, lat: Latents, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Region confusion matrices with ``mask`` applied to the cached latents (the live path)."""
    return evaluate_masks(seg, lat, [mask])[0]


def evaluate_full(seg: SegModel, data: SceneSet, mask: torch.Tensor | None = None, exact: bool = True) -> dict[str, torch.Tensor]:
    """Region confusion matrices from a full forward of every image (the naive path, no cache)."""
    device, total = _device(seg), None
    labels = torch.from_numpy(data.labels)
    with torch.inference_mode(), autocast(device, enabled=not exact):
        for start in range(0, len(data.images), BATCH):
            z = backbone_latent(seg.model, to_input(data.images[start:start + BATCH]).to(device))
            if not exact:
                z = z.to(torch.float16)  # what the latent cache stores
            pred = head_logits(seg.model, z, labels.shape[1:], mask).argmax(1).cpu()
            total = _accumulate(total, region_confusions(pred, labels[start:start + BATCH]))
    return total


def scores(confusions: dict[str, torch.Tensor]) -> dict[str, float]:
    """mIoU of each region."""
    return {r: miou(confusions[r]) for r in REGIONS}


def sweep(seg: SegModel, lat: Latents | StreamedLatents, orders: dict[str, np.ndarray], ns: Sequence[int],
          random_draws: int = 5, seed: int = 0, on_progress: ProgressFn | None = None, stop: StopToken | None = None,
          shard: Shard = SINGLE) -> list[dict]:
    """mIoU per region when zeroing the top N of each order and of ``random_draws`` random orders (every latent
    read once for all of them; ``shard``: this rank's images, results over all ranks)."""
    jobs = [(name, None, order) for name, order in orders.items()]
    jobs += [("random", d, random_order(seg.channels, seed + d)) for d in range(random_draws)]
    cells = [(name, draw, int(n), order) for name, draw, order in jobs for n in ns]
    confs = evaluate_masks(seg, lat, [channel_mask(seg.channels, select(order, n)) for _, _, n, order in cells], shard,
                           [f"{name} N={n}" for name, _, n, _ in cells], on_progress, stop)
    return [{"ranking": name, "draw": draw, "n": n, **scores(c)} for (name, draw, n, _), c in zip(cells, confs)]


def range_sweep(seg: SegModel, lat: Latents | StreamedLatents, orders: dict[str, np.ndarray], step: int,
                stop_at: int | None = None, on_progress: ProgressFn | None = None, stop: StopToken | None = None,
                shard: Shard = SINGLE, baseline: bool = False) -> list[dict]:
    """mIoU per region when zeroing only the ranks [a, a+step) of each order (paper Fig. 4, bottom row); with
    ``baseline`` a first row ``ranking="none", a=b=0`` holds the mIoU without ablation (from the same pass)."""
    end = min(stop_at or seg.channels, seg.channels)
    cells = [("none", 0, 0, np.empty(0, np.int64))] if baseline else []
    cells += [(name, a, min(a + step, end), order) for name, order in orders.items() for a in range(0, end, step)]
    confs = evaluate_masks(seg, lat, [channel_mask(seg.channels, select(order, rank_range=(a, b))) for _, a, b, order in cells],
                           shard, [f"{name} [{a},{b})" for name, a, b, _ in cells], on_progress, stop)
    return [{"ranking": name, "a": a, "b": b, **scores(c)} for (name, a, b, _), c in zip(cells, confs)]


def qualitative(seg: SegModel, lat: Latents, index: int, mask: torch.Tensor | None,
                before: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """For one image: ground truth, prediction before and after zeroing, and the changed pixels (Fig. 5); ``before``:
    the prediction without zeroing when it is known already (with ``mask`` None, only it is computed)."""
    one = slice(index, index + 1)
    if before is None:
        before = predict_latents(seg, lat, None, one)[0].numpy()
    if mask is None:
        return {"truth": lat.labels[index].numpy(), "before": before}
    after = predict_latents(seg, lat, mask, one)[0].numpy()
    return {"truth": lat.labels[index].numpy(), "before": before, "after": after, "changed": before != after}
