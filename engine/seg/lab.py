"""What the CLI and the page share: the val data (generated or a Cityscapes folder), subsets, channel orders."""
from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.core.distributed import SINGLE, Shard
from engine.core.progress import ProgressFn, StopToken
from engine.core.storage import save_json
from engine.data.cityscapes import load_cityscapes
from engine.data.cityscapes_classes import NUM_CLASSES
from engine.data.patches import DataError
from engine.data.scenes import SceneConfig, SceneSet, generate, person_subsets
from engine.models.segmentation import SegModel
from engine.seg.ablation import random_order, range_sweep, sweep
from engine.seg.features import BATCH, LatentCache, Latents, StreamedLatents, latent_bytes, latents_for
from engine.seg.ranking import METHODS, rank

DEFAULT_VAL = SceneConfig("val", 200, 128, 256, 0)
RANK_SPLIT = SceneConfig("rank", 300, 128, 256, 0)  # rankings are computed here by default: disjoint from val
SUBSETS = ("val", "val-left", "val-right")
RANKINGS = (*METHODS, "random")
RANK_ON = ("held-out", "val")
LIVE_IMAGES = 200  # the page's live slider holds at most this many images' latents (POSLAB_LIVE_IMAGES overrides)


def live_limit() -> int:
    """How many images of a subset the page's live slider uses (the first ones); sweeps use them all."""
    return max(1, int(os.environ.get("POSLAB_LIVE_IMAGES", LIVE_IMAGES)))


def load_data(path: str | None = None, split: str = "val", count: int = DEFAULT_VAL.count, height: int = DEFAULT_VAL.height,
              seed: int = DEFAULT_VAL.seed, on_progress: ProgressFn | None = None, workers: int = 1,
              layout: str = DEFAULT_VAL.layout) -> SceneSet:
    """Generated scenes (rendered by ``workers`` processes) when ``path`` is empty, else the first ``count`` images of
    a Cityscapes folder."""
    if path:
        return load_cityscapes(path, split, height, count, on_progress)
    return generate(SceneConfig(split, count, height, 2 * height, seed, layout), workers)


def moved(data: SceneSet, how: str) -> SceneSet:
    """The scenes and labels mirrored (``mirror``) or shifted right by k pixels with wrap-around (``roll:k``).

    Scoring a model on them measures how much it relies on absolute horizontal position: the
    premise of ranking channels by flip sensitivity.
    """
    if how == "mirror":
        images, labels = data.images[:, :, ::-1], data.labels[:, :, ::-1]
    elif how.startswith("roll:") and how[5:].isdigit():
        k = int(how[5:])
        images, labels = np.roll(data.images, k, axis=2), np.roll(data.labels, k, axis=2)
    else:
        raise ValueError(f"unknown move {how!r}; expected 'mirror' or 'roll:<pixels>'")
    sides = {"left": "right", "right": "left"} if how == "mirror" else {}
    return SceneSet(np.ascontiguousarray(images), np.ascontiguousarray(labels),
                    [tuple(sides.get(s, s) for s in p) for p in data.pedestrian_sides], {**data.key, "moved": how})


def check_metric_model(seg: SegModel) -> None:
    """Refuse mIoU for a model whose classes are not the 19 Cityscapes train ids of the labels."""
    if seg.num_classes != NUM_CLASSES:
        raise ValueError(f"{seg.arch} predicts {seg.num_classes} classes; mIoU against Cityscapes train-id labels needs "
                         f"{NUM_CLASSES}. Rankings and photo segmentation still work.")


def subset_index(data: SceneSet, subset: str) -> np.ndarray:
    """Image indices of ``val`` (all), ``val-left`` or ``val-right``."""
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; expected one of {SUBSETS}")
    return np.arange(len(data.labels)) if subset == "val" else person_subsets(data.labels)[subset.split("-")[1]]


def subset_latents(lat: Latents, data: SceneSet, subset: str) -> Latents:
    """The cached latents of a subset (no recomputation)."""
    return lat if subset == "val" else lat.take(subset_index(data, subset))


def shard_index(data: SceneSet, subset: str = "val", shard: Shard = SINGLE) -> np.ndarray:
    """The images of ``subset`` this rank evaluates: whole head batches of the subset, contiguous (engine.core.distributed)."""
    index = subset_index(data, subset)
    lo, hi = shard.range(len(index), BATCH)
    return index[lo:hi]


def scaled_latents(seg: SegModel, data: SceneSet, subset: str = "val", shard: Shard = SINGLE, limit: int | None = None,
                   cache: LatentCache | None = None, on_progress: ProgressFn | None = None,
                   stop: StopToken | None = None) -> Latents | StreamedLatents:
    """The latents a sweep of ``subset`` needs on this rank: in one process within ``limit`` bytes, the latent
    cache's (as the lab always did); else this rank's share, in memory when it fits ``limit`` and streamed from
    disk when not. Every way gives bit-identical latents (same batches)."""
    if not shard.distributed and (limit is None or latent_bytes(seg, data) * len(data.labels) <= limit):
        cache = cache or LatentCache()
        return subset_latents(cache.get(seg, data, on_progress=on_progress, stop=stop), data, subset)
    return latents_for(seg, data, shard_index(data, subset, shard), limit=limit, use_disk=not seg.meta.get("uploaded"),
                       on_progress=on_progress, stop=stop)


def ranking_data(data: SceneSet, rank_on: str = "held-out") -> SceneSet:
    """The images a ranking is computed on: ``held-out`` (default) = generated scenes of the rank split (same size
    and layout; disjoint from train and val), or a Cityscapes folder's train split; ``val`` = ``data`` itself
    (in-sample, as the authors ranked and attacked the same val set)."""
    if rank_on not in RANK_ON:
        raise ValueError(f"unknown rank-on choice {rank_on!r}; expected one of {RANK_ON}")
    if rank_on == "val":
        return data
    key = data.key
    if key.get("kind") == "scenes":
        return _rank_scenes(SceneConfig("rank", RANK_SPLIT.count, key["height"], key["width"], key["seed"], key["layout"]))
    try:
        return load_cityscapes(key["root"], "train", key["height"], RANK_SPLIT.count)
    except DataError as err:
        raise DataError(f"{err} Held-out rankings of a Cityscapes folder use its train split; rank on the evaluated "
                        "images instead (rank-on val).") from err


@lru_cache(maxsize=2)
def _rank_scenes(config: SceneConfig) -> SceneSet:
    return generate(config)


def channel_order(seg: SegModel, data: SceneSet, ranking: str, draw: int = 0, rank_on: str = "held-out",
                  on_progress: ProgressFn | None = None, stop: StopToken | None = None, shard: Shard = SINGLE) -> np.ndarray:
    """Channel order of a ranking method computed on ``ranking_data(data, rank_on)`` (sharded over ``shard``'s
    ranks), or of random draw ``draw`` (seeded by the draw number: the same on every rank)."""
    if ranking == "random":
        return random_order(seg.channels, draw)
    return rank(seg, ranking_data(data, rank_on), ranking, on_progress=on_progress, stop=stop, shard=shard).order


def full_sweep(seg: SegModel, data: SceneSet, subset: str, orders: dict[str, np.ndarray], ns: Sequence[int] = (),
               draws: int = 5, step: int | None = None, limit: int | None = None, path: Path | None = None,
               on_progress: ProgressFn | None = None, stop: StopToken | None = None) -> list[dict]:
    """A top-N sweep (or, with ``step``, a rank-range sweep whose first row is the no-ablation baseline) over every
    image of ``subset``, its latents streamed from disk beyond ``limit`` bytes; the rows are written to ``path``
    atomically when given (never a partial file: a stopped or failed sweep writes nothing)."""
    lat = scaled_latents(seg, data, subset, limit=limit, on_progress=on_progress, stop=stop)
    if step:
        rows = range_sweep(seg, lat, orders, step, on_progress=on_progress, stop=stop, baseline=True)
    else:
        rows = sweep(seg, lat, orders, ns, draws, on_progress=on_progress, stop=stop)
    if path is not None:
        save_json(rows, path)
    return rows
