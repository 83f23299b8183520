"""The segmentation lab's API, one call per experiment for the CLI and the page: :func:`rank`, :func:`ablate`,
:func:`sweep`, :func:`position`, :func:`fidelity`, each returning a typed result with ``rows()``; and what they share:
the val data (generated or a Cityscapes folder), subsets, channel orders, latents. The names the page needs from the
modules below are importable from here, so it imports one module.

Each call runs in one process or as one rank of a torchrun run (``shard``: a disjoint share of the images, partial
sums combined by ``all_reduce``); latents stay in the engine's shared cache within ``limit`` bytes and are streamed
from disk beyond it.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.core.cache import CACHE
from engine.core.distributed import SINGLE, Shard
from engine.core.progress import ProgressFn, StopToken
from engine.core.storage import fingerprint, save_json
from engine.data.cityscapes import SPLITS as SPLITS
from engine.data.cityscapes import load_cityscapes
from engine.data.cityscapes_classes import NUM_CLASSES
from engine.data.images import ImageError as ImageError
from engine.data.images import decode_image as decode_image
from engine.data.images import fit_image as fit_image
from engine.data.patches import DataError
from engine.data.scenes import SceneConfig, SceneSet, kept, person_subsets
from engine.models.segmentation import SegModel
from engine.models.segmentation import cached_pretrained as cached_pretrained
from engine.models.segmentation import pretrained_file as pretrained_file
from engine.seg.ablation import channel_mask, evaluate_masks, qualitative, random_order, range_sweep, scores, select
from engine.seg.ablation import sweep as sweep_orders
from engine.seg.features import BATCH, LatentCache, Latents, StreamedLatents, latent_bytes, latents_for
from engine.seg.metrics import REGIONS
from engine.seg.metrics import region_fractions as region_fractions
from engine.seg.ranking import METHODS, Ranking, add_to_shipped
from engine.seg.ranking import rank as rank_method

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
    """Generated scenes (rendered by ``workers`` processes, or read back from the cache folder) when ``path`` is empty,
    else the first ``count`` images of a Cityscapes folder."""
    if path:
        return load_cityscapes(path, split, height, count, on_progress)
    return kept(SceneConfig(split, count, height, 2 * height, seed, layout), workers)


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
    """The cached latents of a subset (no recomputation; the subset's copy is held in the engine's cache)."""
    if subset == "val":
        return lat
    return CACHE.get_or_compute(f"seg/subset/{lat.key}/{subset}", lambda: lat.take(subset_index(data, subset)))


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
        cache = cache or LatentCache(use_disk=not seg.meta.get("uploaded"))
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
    return CACHE.get_or_compute(f"seg/held-out/{fingerprint(data.key)}", lambda: _held_out(data.key))


def _held_out(key: dict) -> SceneSet:
    """The rank split of generated scenes like ``key``'s, or the train split of ``key``'s Cityscapes folder."""
    if key.get("kind") == "scenes":
        return kept(SceneConfig("rank", RANK_SPLIT.count, key["height"], key["width"], key["seed"], key["layout"]))
    try:
        return load_cityscapes(key["root"], "train", key["height"], RANK_SPLIT.count)
    except DataError as err:
        raise DataError(f"{err} Held-out rankings of a Cityscapes folder use its train split; rank on the evaluated "
                        "images instead (rank-on val).") from err


def method_ranking(seg: SegModel, data: SceneSet, method: str, rank_on: str = "held-out",
                   on_progress: ProgressFn | None = None, stop: StopToken | None = None, shard: Shard = SINGLE) -> Ranking:
    """One method's ranking of ``seg`` on ``ranking_data(data, rank_on)``, once per model, data and split in one process
    (the shared cache; shipped and on-disk rankings are found by :func:`engine.seg.ranking.rank`)."""
    def compute() -> Ranking:
        return rank_method(seg, ranking_data(data, rank_on), method, on_progress=on_progress, stop=stop, shard=shard)

    if shard.distributed:
        return compute()
    return CACHE.get_or_compute(f"seg/ranking/{fingerprint(seg.fingerprint, data.key, method, rank_on)}", compute)


def channel_order(seg: SegModel, data: SceneSet, ranking: str, draw: int = 0, rank_on: str = "held-out",
                  on_progress: ProgressFn | None = None, stop: StopToken | None = None, shard: Shard = SINGLE) -> np.ndarray:
    """Channel order of a ranking method (:func:`method_ranking`), or of random draw ``draw`` (seeded by the draw number: the
    same on every rank)."""
    if ranking == "random":
        return random_order(seg.channels, draw)
    return method_ranking(seg, data, ranking, rank_on, on_progress, stop, shard).order


def latents(seg: SegModel, data: SceneSet, subset: str = "val", images: int | None = None, limit: int | None = None,
            shard: Shard = SINGLE, on_progress: ProgressFn | None = None, stop: StopToken | None = None) -> Latents | StreamedLatents:
    """The latents an experiment on ``subset`` reads: its first ``images`` images (the page's live slider on a large
    data set; held in the engine's cache, never on disk) or all of them (:func:`scaled_latents`)."""
    index = subset_index(data, subset)
    if images is None or len(index) <= images:
        return scaled_latents(seg, data, subset, shard, limit, on_progress=on_progress, stop=stop)
    key = fingerprint(seg.fingerprint, data.key, subset, images)
    return CACHE.get_or_compute(f"seg/live/{key}", lambda: latents_for(seg, data, index[:images], use_disk=False,
                                                                        on_progress=on_progress, stop=stop))


def _percent(values: dict[str, float]) -> dict[str, float]:
    return {k: 100 * values[k] for k in REGIONS}


@dataclass(frozen=True)
class RankResult:
    """Channel rankings of one model, by method, computed on ``rank_on`` images."""

    rank_on: str
    channels: int
    rankings: dict[str, Ranking]

    def rows(self) -> list[dict]:
        """One row per method and rank: method, rank, channel, score."""
        return [{"method": m, "rank": i, "channel": int(c), "score": float(r.scores[c])}
                for m, r in self.rankings.items() for i, c in enumerate(r.order)]

    def to_json(self) -> dict | list[dict]:
        """The CLI's ``rank --json``: per method its image count and every channel (one method: the object alone)."""
        out = [{"method": m, "images": r.count,
                "channels": [{"rank": i, "channel": int(c), "score": float(r.scores[c])} for i, c in enumerate(r.order)]}
               for m, r in self.rankings.items()]
        return out[0] if len(out) == 1 else out


def rank(seg: SegModel, data: SceneSet, methods: Sequence[str] = ("overall",), rank_on: str = "held-out",
         add_to: Path | None = None, shard: Shard = SINGLE, on_progress: ProgressFn | None = None,
         stop: StopToken | None = None) -> RankResult:
    """Rank ``seg``'s latent channels by each method on ``ranking_data(data, rank_on)``; with ``add_to`` also store
    each ranking in that rankings file (how assets/seg/rankings.json is made; rank 0 only)."""
    out = {method: method_ranking(seg, data, method, rank_on, on_progress, stop, shard) for method in methods}
    if add_to is not None and shard.main:
        for result in out.values():
            add_to_shipped(seg, ranking_data(data, rank_on), result, Path(add_to))
    return RankResult(rank_on, seg.channels, out)


@dataclass(frozen=True)
class Ablated:
    """mIoU (0-1) per region with ``zeroed`` channels zeroed (``draw``: the random draw, else None)."""

    draw: int | None
    zeroed: np.ndarray
    scores: dict[str, float]


@dataclass(frozen=True)
class AblationResult:
    """One ablation on ``images`` images of ``subset``: the mIoU without it, and with each draw's channels zeroed."""

    subset: str
    images: int
    ranking: str
    baseline: dict[str, float]
    draws: list[Ablated] = field(default_factory=list)

    @property
    def mean(self) -> dict[str, float]:
        """mIoU per region averaged over the draws."""
        return {k: float(np.mean([d.scores[k] for d in self.draws])) for k in REGIONS}

    def rows(self) -> list[dict]:
        """ranking, draw, n and mIoU (0-1) per region: no ablation first, then each draw, then (random) their mean."""
        rows = [{"ranking": "none", "draw": None, "n": 0, **self.baseline}]
        rows += [{"ranking": self.ranking, "draw": d.draw, "n": len(d.zeroed), **d.scores} for d in self.draws]
        if self.ranking == "random":
            rows.append({"ranking": "random mean", "draw": None, "n": rows[-1]["n"], **self.mean})
        return rows


def baseline(seg: SegModel, lat: Latents | StreamedLatents, shard: Shard = SINGLE) -> dict[str, float]:
    """mIoU per region without ablation (one process: held in the engine's cache, so a slider move runs the head once)."""
    def compute() -> dict[str, float]:
        return scores(evaluate_masks(seg, lat, [None], shard)[0])

    if shard.distributed or isinstance(lat, StreamedLatents):
        return compute()
    return CACHE.get_or_compute(f"seg/baseline/{fingerprint(seg.fingerprint, lat.key)}", compute)


def ablate(seg: SegModel, data: SceneSet, ranking: str = "overall", n: int | None = 0,
           rank_range: tuple[int, int] | None = None, draws: int | Sequence[int] = 5, subset: str = "val",
           rank_on: str = "held-out", images: int | None = None, limit: int | None = None, shard: Shard = SINGLE,
           on_progress: ProgressFn | None = None, stop: StopToken | None = None) -> AblationResult:
    """Zero the top ``n`` channels (or ranks ``rank_range``) of ``ranking`` and score ``subset`` (its first ``images``
    when given); ``draws`` (a count, or the draw numbers) applies to the random ranking only."""
    lat = latents(seg, data, subset, images, limit, shard, on_progress, stop)
    picked = (range(draws) if isinstance(draws, int) else draws) if ranking == "random" else [0]
    zeroed = [select(channel_order(seg, data, ranking, d, rank_on, stop=stop, shard=shard), n, rank_range) for d in picked]
    confs = evaluate_masks(seg, lat, [channel_mask(seg.channels, z) for z in zeroed], shard, stop=stop)
    return AblationResult(subset, len(lat), ranking, baseline(seg, lat, shard),
                          [Ablated(d if ranking == "random" else None, z, scores(c)) for d, z, c in zip(picked, zeroed, confs)])


@dataclass(frozen=True)
class SweepResult:
    """mIoU (0-1) per region for every cell of a sweep of ``images`` images of ``subset``: (ranking, draw, n) for a
    top-N sweep, (ranking, a, b) for a rank-range sweep; ``streamed``: images per chunk read from disk, if streamed."""

    subset: str
    images: int
    ranges: bool
    cells: list[dict]
    streamed: int | None = None

    @property
    def columns(self) -> list[str]:
        """The keys of a row, in order."""
        return ["ranking", "a", "b", *REGIONS] if self.ranges else ["ranking", "draw", "n", *REGIONS]

    def rows(self) -> list[dict]:
        """Every cell as a row (its keys: :attr:`columns`)."""
        return [dict(c) for c in self.cells]


def default_ns(channels: int) -> list[int]:
    """A sweep's N when none are given: 0 and 5/10/25% of the latent width."""
    return [round(f * channels) for f in (0, 0.05, 0.1, 0.25)]


def sweep(seg: SegModel, data: SceneSet, rankings: Sequence[str] = ("overall", "kflip1", "kflip2"),
          ns: Sequence[int] | None = None, draws: int = 5, step: int | None = None, stop_at: int | None = None,
          subset: str = "val", rank_on: str = "held-out", baseline_row: bool = False, limit: int | None = None,
          path: Path | None = None, shard: Shard = SINGLE, on_progress: ProgressFn | None = None,
          stop: StopToken | None = None) -> SweepResult:
    """A top-N sweep of ``rankings`` (``random`` or ``draws`` adds random draws) over every image of ``subset``,
    or with ``step`` a rank-range sweep up to ``stop_at`` (``baseline_row``: a first row ``ranking="none"``);
    rows written to ``path`` atomically when given (never a partial file: a stopped or failed sweep writes nothing)."""
    orders = {m: channel_order(seg, data, m, rank_on=rank_on, on_progress=on_progress, stop=stop, shard=shard)
              for m in rankings if m != "random"}
    lat = scaled_latents(seg, data, subset, shard, limit, on_progress=on_progress, stop=stop)
    if step:
        cells = range_sweep(seg, lat, orders, step, stop_at, on_progress=on_progress, stop=stop, shard=shard,
                            baseline=baseline_row)
    else:
        cells = sweep_orders(seg, lat, orders, default_ns(seg.channels) if ns is None else ns, draws,
                             on_progress=on_progress, stop=stop, shard=shard)
    result = SweepResult(subset, len(lat), bool(step), cells, lat.rows if isinstance(lat, StreamedLatents) else None)
    if path is not None and shard.main:
        save_json(result.rows(), path)
    return result


@dataclass(frozen=True)
class PositionResult:
    """mIoU (0-1) per region on ``images`` scenes as given and moved (mirrored, rolled): how much a model relies on
    absolute position."""

    images: int
    moves: dict[str, dict[str, float]]  # "as given" / "mirror" / "roll:<px>" -> mIoU per region

    @property
    def mirror_cost(self) -> float | None:
        """All-image mIoU points (0-1) lost when the scenes are mirrored (None: not measured)."""
        return self.moves["as given"]["all"] - self.moves["mirror"]["all"] if "mirror" in self.moves else None

    def rows(self) -> list[dict]:
        """scenes and mIoU per region in percent (as the CLI has always written them)."""
        return [{"scenes": how, **_percent(values)} for how, values in self.moves.items()]


def position(seg: SegModel, data: SceneSet, moves: Sequence[str] = ("mirror", "roll:32", "roll:64"),
             limit: int | None = None, shard: Shard = SINGLE, on_progress: ProgressFn | None = None,
             stop: StopToken | None = None) -> PositionResult:
    """mIoU of ``seg`` on the scenes as given and moved by each of ``moves`` (their latents never kept on disk)."""
    out = {}
    for how in ["as given", *moves]:
        scenes = data if how == "as given" else moved(data, how)
        lat = scaled_latents(seg, scenes, "val", shard, limit, cache=LatentCache(use_disk=False), on_progress=on_progress,
                             stop=stop)
        out[how] = scores(evaluate_masks(seg, lat, [None], shard, stop=stop)[0])
    return PositionResult(len(data.labels), out)


def view(seg: SegModel, lat: Latents, index: int, zeroed: np.ndarray | None,
         before: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One image of ``lat`` before and after zeroing ``zeroed``: truth, both predictions, changed pixels (Fig. 5);
    ``before`` reuses a known prediction without zeroing; with ``zeroed`` None only truth and ``before``."""
    return qualitative(seg, lat, index, None if zeroed is None else channel_mask(seg.channels, zeroed), before)


def live_view(seg: SegModel, lat: Latents, index: int, zeroed: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`view` for the page's live slider, computed once per server for every session (the engine's cache); the
    prediction before zeroing once per image."""
    image = fingerprint(seg.fingerprint, lat.key, index)
    before = CACHE.get_or_compute(f"seg/live-before/{image}", lambda: view(seg, lat, index, None)["before"])
    key = fingerprint(image, np.asarray(zeroed).tolist())
    return CACHE.get_or_compute(f"seg/live-view/{key}", lambda: view(seg, lat, index, zeroed, before))


def fidelity(seg: SegModel, data: SceneSet, rank_on: str = "held-out", draws: int = 5,
             on_progress: ProgressFn | None = None, stop: StopToken | None = None):
    """The paper's Fig. 4/6 claims measured on ``seg`` (:class:`engine.seg.fidelity.Fidelity`, which has ``rows()``)."""
    from engine.seg.fidelity import measure  # it imports this module

    return measure(seg, data, rank_on, draws, on_progress=on_progress, stop=stop)
