"""What the CLI and the page share: the val data (generated or a Cityscapes folder), subsets, channel orders."""
from __future__ import annotations

import numpy as np

from engine.progress import ProgressFn, StopToken
from engine.seg.ablation import random_order
from engine.seg.cityscapes import load_cityscapes
from engine.seg.classes import NUM_CLASSES
from engine.seg.features import Latents
from engine.seg.models import SegModel
from engine.seg.ranking import METHODS, rank
from engine.seg.scenes import SceneConfig, SceneSet, generate, person_subsets

DEFAULT_VAL = SceneConfig("val", 200, 128, 256, 0)
SUBSETS = ("val", "val-left", "val-right")
RANKINGS = (*METHODS, "random")


def load_data(path: str | None = None, split: str = "val", count: int = DEFAULT_VAL.count, height: int = DEFAULT_VAL.height,
              seed: int = DEFAULT_VAL.seed, on_progress: ProgressFn | None = None, workers: int = 1) -> SceneSet:
    """Generated scenes (rendered by ``workers`` processes) when ``path`` is empty, else the first ``count`` images of
    a Cityscapes folder."""
    if path:
        return load_cityscapes(path, split, height, count, on_progress)
    return generate(SceneConfig(split, count, height, 2 * height, seed), workers)


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


def channel_order(seg: SegModel, data: SceneSet, ranking: str, draw: int = 0,
                  on_progress: ProgressFn | None = None, stop: StopToken | None = None) -> np.ndarray:
    """Channel order of a ranking method, or of random draw ``draw`` (seeded by the draw number)."""
    if ranking == "random":
        return random_order(seg.channels, draw)
    return rank(seg, data, ranking, on_progress=on_progress, stop=stop).order
