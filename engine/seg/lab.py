"""What the CLI and the page share: the default val data, subsets and the channel orders to ablate."""
from __future__ import annotations

import numpy as np

from engine.progress import ProgressFn, StopToken
from engine.seg.ablation import random_order
from engine.seg.features import Latents
from engine.seg.models import SegModel
from engine.seg.ranking import METHODS, rank
from engine.seg.scenes import SceneConfig, SceneSet, person_subsets

DEFAULT_VAL = SceneConfig("val", 200, 128, 256, 0)
SUBSETS = ("val", "val-left", "val-right")
RANKINGS = (*METHODS, "random")


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
