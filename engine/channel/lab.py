"""The channel code's one API, shared by the CLI (``channel-map``, ``decode``, ``shuffle``, ``channel-nets``) and the
Channel code page: which networks to probe, the code map, the decode table, the 2 x 2 and the object classifier.
Each returns a typed result with ``rows()``; derived results are kept in the shared cache by content.
The names the page needs from the modules below are importable from here, so it imports one module."""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from engine.channel.code_map import SHIPPED_IMAGES, ChannelMap, channel_map, ship_maps
from engine.channel.decode import PROBE_SEED, DecodeResult, decode_cells
from engine.channel.features import LAYERS as LAYERS
from engine.channel.features import Probed, data_key
from engine.channel.nets import (
    OBJECT_CLASSIFIER,
    TRAIN_SEED,
    TRAIN_STEPS,
    at_grid,
    available_nets,
    load_net,
    net_for_grid,
    open_user_net,
    train_object_classifier,
)
from engine.channel.own_task import own_task_shuffle
from engine.channel.shuffle import Shuffled, shuffle_2x2
from engine.core.cache import CACHE, model_key
from engine.core.progress import Note, ProgressFn, StopToken, quiet
from engine.core.results import Row
from engine.core.stats import pct_interval
from engine.core.storage import fingerprint
from engine.data.grid import place_on_grid
from engine.data.patches import GeneratedShapes, PatchSource, open_patch_source
from engine.models.importers import RAPIDOCR_CLS, UNTRAINED, open_classifier, rapidocr_available, rapidocr_cls_file
from engine.models.probe import ProbeNet, predict_proba


@dataclass(frozen=True)
class UserNet:
    """A user's network (probe checkpoint or torchvision classifier) under its name; ``persist=False`` keeps
    everything derived from it out of the disk cache (uploads: nothing outlives them)."""

    name: str
    model: Probed
    persist: bool = True

    @property
    def trained_grid(self) -> int | None:
        """The grid a probe was trained on (``None`` for a classifier)."""
        return self.model.config.grid if isinstance(self.model, ProbeNet) else None


def open_user(path: Path | str, arch: str = "auto") -> UserNet:
    """A user's checkpoint file as a :class:`UserNet` named by its file name."""
    return UserNet(Path(path).name, open_user_net(path, arch=arch))


def open_model(spec: str, weights: Path | str | None = None) -> UserNet:
    """A model spec (``engine.models.importers``: an ONNX file, ``timm:<arch>`` with ``weights``, ``rapidocr-cls``,
    ``cache:...``, any with ``:untrained``) as a :class:`UserNet`, loaded once per spec and file version."""
    files = [Path(p) for p in (spec, weights) if p is not None and Path(p).is_file()]
    if spec.removesuffix(UNTRAINED) == RAPIDOCR_CLS and rapidocr_available():
        files.append(rapidocr_cls_file())
    version = fingerprint(spec, str(weights), [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files])
    model = CACHE.get_or_compute(f"channel/model-{version}", lambda: open_classifier(spec, weights))
    return UserNet(spec if weights is None else f"{spec} · {Path(weights).name}", model)


@dataclass(frozen=True)
class Subject:
    """A network set to probe ``grid`` canvases, its name, the grid it was trained on and whether its features
    may be cached on disk."""

    name: str
    model: Probed
    trained_grid: int | None
    persist: bool = True

    @property
    def grid(self) -> int:
        return self.model.config.grid


def subjects(grid: int, nets: Sequence[str] | None = None, user: UserNet | None = None, note: Note = quiet
             ) -> list[Subject]:
    """What to probe at ``grid``: the user's network, else the shipped ``nets`` (default: every one available
    there; a missing checkpoint is reported to ``note`` and skipped)."""
    if user is not None:
        return [Subject(user.name, at_grid(user.model, grid), user.trained_grid, user.persist)]
    found = []
    for key in nets or available_nets(grid):
        try:
            found.append(Subject(key, *net_for_grid(key, grid)))
        except FileNotFoundError as err:
            note(f"skipped: {err}")
    return found


def _sources(data: str | None) -> Callable[[int], PatchSource]:
    """``data`` opened once per patch size (the generated shapes without it)."""
    return functools.cache(lambda patch: open_patch_source(data, patch))


@dataclass
class CodeMap:
    """The cells x channels code of one network's GAP vector (see :class:`engine.channel.code_map.ChannelMap`)."""

    net: str
    map: ChannelMap

    def document(self) -> dict:
        """What ``channel-map --json`` writes: the whole map (response, preferred cell, selectivity per channel)."""
        return {"net": self.net, **self.map.as_dict()}

    def rows(self) -> list[Row]:
        """One row per channel, grouped by preferred cell: its cell, selectivity and position share."""
        cmap = self.map
        return [{"channel": ch, "preferred_cell": int(cmap.preferred[ch]), "selectivity": round(float(cmap.selectivity[ch]), 4),
                 "position_share": round(float(cmap.position_share[ch]), 4)} for ch in cmap.order.tolist()]

    def cell_rows(self) -> list[Row]:
        """One row per cell: how many channels prefer it, its most selective one and that channel's numbers."""
        cmap = self.map
        return [{"cell": cell, "channels": int((cmap.preferred == cell).sum()), "top channel": top,
                 "selectivity": f"{cmap.selectivity[top]:.3f}" if top >= 0 else None,
                 "position share": f"{cmap.position_share[top]:.3f}" if top >= 0 else None}
                for cell, top in enumerate(cmap.top_per_cell())]


def code_map(grid: int = 3, layer: str = "layer4", images: int = 64, net: str = OBJECT_CLASSIFIER,
             user: UserNet | None = None, data: str | None = None, compute: bool = True) -> CodeMap | None:
    """The code map of the shipped ``net`` (or the ``user``'s network) on ``grid`` canvases: ``images`` test patches
    placed in every cell, their ``layer`` GAP vectors averaged per cell (features from the shared cache).
    ``compute=False``: ``None`` where the map is neither shipped nor computed before (no network runs)."""
    subject = subjects(grid, user=user)[0] if user is not None else Subject(net, *net_for_grid(net, grid))
    source = _sources(data)(subject.model.config.patch)
    cmap = channel_map(subject.model, source, images=images, layer=layer, persist=subject.persist, compute=compute)
    return CodeMap(subject.name, cmap) if cmap is not None else None


def shipped_maps_document(grids: Sequence[int] = (3, 5, 7), images: int = SHIPPED_IMAGES) -> dict:
    """The code maps of every shipped network at each of ``grids``, every layer, on the generated shapes: what
    ``assets/channel_code/maps.pt`` holds so that the page's grid and network switches read instead of compute."""
    return ship_maps({f"{s.name}@{grid}": s.model for grid in grids for s in subjects(grid)}, images)


@dataclass
class Decoded:
    """One network's decode probe at one grid and layer, per read-out."""

    subject: Subject
    results: list[DecodeResult]

    def rows(self) -> list[Row]:
        s = self.subject
        return [{"net": s.name, "trained_grid": s.trained_grid, "grid": s.grid, "width": s.model.config.width,
                 "permuted": r.readout != "ordered", **r.as_dict()} for r in self.results]


@dataclass
class DecodeTable:
    """The decode probe over networks, grids and layers: one row per network, grid, layer and read-out."""

    decoded: list[Decoded] = field(default_factory=list)

    def rows(self) -> list[Row]:
        return [row for d in self.decoded for row in d.rows()]


def decode(grids: Sequence[int] = (3, 5, 7), layers: Sequence[str] = ("layer4",), nets: Sequence[str] | None = None,
           user: UserNet | None = None, data: str | None = None, train: int = 2000, test: int = 1000,
           seed: int = PROBE_SEED, note: Note = quiet) -> DecodeTable:
    """A linear probe decoding the cell from frozen GAP vectors (in order, permuted, sorted) of every network
    :func:`subjects` finds at each grid, per layer; each result kept in the shared cache by weights, data and settings."""
    source, table = _sources(data), DecodeTable()
    for grid in grids:
        for subject in subjects(grid, nets, user, note):
            patches = source(subject.model.config.patch)
            for layer in layers:
                key = "channel/decode-" + data_key(subject.model, patches, layer, train, test, seed)
                results = CACHE.get_or_compute(key, lambda: decode_cells(
                    subject.model, patches, train=train, test=test, layer=layer, seed=seed, persist=subject.persist))
                table.decoded.append(Decoded(subject, results))
    return table


@dataclass
class ShuffleTable:
    """The 2 x 2 (trained with / without a channel shuffle x tested with / without) per task and kind of shuffle."""

    entries: list[Row]

    def rows(self) -> list[Row]:
        return list(self.entries)


def shuffle(tasks: Sequence[str] = ("location", "object"), kinds: Sequence[str] = ("per_call", "fixed"), grid: int = 3,
            samples: int = 1000, seed: int = PROBE_SEED) -> ShuffleTable:
    """The 2 x 2 of the shipped GAPNet / PermuteNet pair of each task, for each kind of shuffle (kept in the shared
    cache by the weights and settings)."""
    entries: list[Row] = []
    for task in tasks:
        in_order, per_call = load_net(f"probe/{task}-gapnet", grid), load_net(f"probe/{task}-permutenet", grid)
        for kind in kinds:
            key = "channel/shuffle-" + model_key(in_order, model_key(per_call), kind, samples, seed)
            entries += CACHE.get_or_compute(key, lambda: shuffle_2x2(in_order, per_call, kind, samples=samples, seed=seed))
    return ShuffleTable(entries)


@dataclass
class TrainedNets:
    """The object-only classifiers trained and saved, one record each (path, accuracy, command)."""

    records: list[Row]

    def rows(self) -> list[Row]:
        return list(self.records)


def nets(grids: Sequence[int] = (3,), steps: int = TRAIN_STEPS, seed: int = TRAIN_SEED, out: Path | None = None,
         on_progress: ProgressFn | None = None, stop: StopToken | None = None) -> TrainedNets:
    """Train and save the object-only classifier of ``assets/channel_code`` for each grid (to ``out``: one grid)."""
    if out is not None and len(grids) != 1:
        raise ValueError(f"one checkpoint path for {len(grids)} grids: give one grid with --out")
    return TrainedNets([train_object_classifier(grid, steps, seed, out, on_progress=on_progress, stop=stop) for grid in grids])


@dataclass
class RealNetwork:
    """The decode (in order vs permuted, with the same architecture untrained beside it) and the shuffle at inference
    on its own task, of a network trained elsewhere: one row each, accuracy with its 95% Wilson interval."""

    entries: list[Row]

    def rows(self) -> list[Row]:
        return list(self.entries)


def _with_interval(row: Row) -> Row:
    low, high = pct_interval(row["accuracy"], row["n"])
    return {**row, "accuracy": round(row["accuracy"], 2), "interval": [round(low, 2), round(high, 2)]}


def real_network(spec: str = RAPIDOCR_CLS, grids: Sequence[int] = (3, 5), layer: str = "layer4", train: int = 2000,
                 test: int = 1000, samples: int = 1000, seed: int = PROBE_SEED, data: str | None = None) -> RealNetwork:
    """Network ``spec`` and its architecture untrained: the cell decoded from ``layer``'s GAP vector on each grid in
    channel order and permuted (the page's and ``decode``'s probe), then its own task with the GAP vector in order
    vs shuffled (``samples`` fresh examples from ``seed``)."""
    rows: list[Row] = []
    nets = [open_model(spec), open_model(spec + UNTRAINED)]
    for user in nets:
        for decoded in decode(grids, [layer], user=user, data=data, train=train, test=test, seed=seed).decoded:
            rows += [_with_interval({"network": user.name, "grid": decoded.subject.grid, "layer": layer,
                                     "readout": "order" if r.readout == "ordered" else r.readout, "accuracy": r.accuracy,
                                     "n": r.test, "train": r.train, "chance": round(r.chance, 2)})
                     for r in decoded.results if r.readout in ("ordered", "permuted")]
    for user in nets:
        rows += [_with_interval({**row, "network": user.name}) for row in own_task_shuffle(user.model, spec, samples, seed)]
    return RealNetwork(rows)


DEMO_NETS = ("probe/location-gapnet", "probe/object-permutenet", "probe/object-gapnet")


@dataclass
class PermutationDemo:
    """One test image placed in each cell of a 3x3 canvas and each demo network's probabilities there, its latent
    channels in order (``draw`` None) or through random permutation number ``draw``."""

    canvases: torch.Tensor  # (9, 3, H, W), normalised
    label: int
    classes: tuple[str, ...]
    draw: int | None
    probs: dict[str, torch.Tensor]  # by network: (9 cells, outputs)
    hits: dict[str, int]  # by network: in how many of the 9 cells it is right (its cell, or the object's class)

    def rows(self) -> list[Row]:
        """One row per network and cell: the predicted output and its probability."""
        return [{"net": key, "cell": cell, "predicted": int(p.argmax()), "probability": float(p.max())}
                for key, probs in self.probs.items() for cell, p in enumerate(probs)]


def permutation_demo(image_seed: int, draw: int | None = None, nets: Sequence[str] = DEMO_NETS) -> PermutationDemo:
    """What the shipped 3x3 ``nets`` say about test image ``image_seed`` in every cell, channels in order or permuted
    by a permutation seeded with ``draw`` (the same for every net: they share one width)."""
    source = GeneratedShapes()
    patch, labels = source.sample(1, image_seed, "test")
    canvases, label = place_on_grid(patch.expand(9, -1, -1, -1), torch.arange(9), 3), int(labels[0])
    models = {key: load_net(key, 3) for key in nets}
    channels = models[nets[0]].backbone.out_channels
    permutation = None if draw is None else torch.randperm(channels, generator=torch.Generator().manual_seed(draw))
    mode = "none" if permutation is None else "fixed"
    probs = {key: predict_proba(Shuffled(model, mode, permutation), canvases) for key, model in models.items()}
    targets = {key: torch.arange(9) if model.config.task == "location" else torch.full((9,), label)
               for key, model in models.items()}
    hits = {key: int((p.argmax(1) == targets[key]).sum()) for key, p in probs.items()}
    return PermutationDemo(canvases, label, source.classes, draw, probs, hits)
