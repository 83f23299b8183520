"""GAP features of every backbone stage for canvases, cached in memory and on disk by weights and data."""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from engine.core.cache import CACHE
from engine.core.device import pick_device, prepare_input, prepare_model
from engine.core.storage import cache_dir, fingerprint, stored
from engine.data.patches import PatchSource
from engine.models.probe import ProbeNet
from engine.models.user_classifier import UserClassifier

LAYERS = ("stem", "layer1", "layer2", "layer3", "layer4")
FEATURE_BATCH = 200
Probed = ProbeNet | UserClassifier  # what the map and the decode probe take: ``config`` (the canvases) and ``stages``


def _kept_as(kind: str, key: str) -> tuple[str, Path]:
    """The shared cache's key and the disk file of features of ``kind`` under ``key``."""
    name = f"{kind}-{key}"
    return f"channel/{name}", cache_dir() / "channel_code" / f"{name}.pt"


def cached_features(kind: str, key: str, compute: Callable[[], dict[str, torch.Tensor]], persist: bool = True
                    ) -> dict[str, torch.Tensor]:
    """From the shared cache, else from disk (``cache_dir()/channel_code``, when ``persist``), else ``compute``d."""
    cache_key, path = _kept_as(kind, key)
    return CACHE.get_or_compute(cache_key, (lambda: stored(path, compute)) if persist else compute)


def features_ready(kind: str, key: str, persist: bool = True) -> bool:
    """Whether :func:`cached_features` of ``kind`` under ``key`` would read them (memory, or disk when ``persist``)."""
    cache_key, path = _kept_as(kind, key)
    return cache_key in CACHE or (persist and path.is_file())


def data_key(model: Probed, source: PatchSource, *parts: object) -> str:
    """Cache key: the weights, the config (and input spec, for a classifier), a content sample of the source, and the
    call's settings."""
    probe_patches = source.sample(4, 0, "test")[0]
    spec = [asdict(model.spec)] if isinstance(model, UserClassifier) else []  # a probe's key as before
    return fingerprint(model.state_dict(), asdict(model.config), *spec, source.name, probe_patches, list(parts))


def check_layer(layer: str) -> None:
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")


def gap_features(model: Probed, canvases: torch.Tensor, device: torch.device | None = None,
                 batch: int = FEATURE_BATCH) -> dict[str, torch.Tensor]:
    """Globally average-pooled activations (n, C) of every backbone stage, by layer name, fp32 on the CPU. A probe runs
    as a channels_last copy (fp32 all the same: 1.5x faster on a 2-core Xeon; the shared model is left as it is)."""
    device = device or pick_device()
    channels_last = isinstance(model, ProbeNet)
    model = prepare_model(copy.deepcopy(model) if channels_last else model, device, channels_last).eval()
    outs: dict[str, list[torch.Tensor]] = {layer: [] for layer in LAYERS}
    with torch.inference_mode():
        for chunk in canvases.split(batch):
            stages = model.stages(prepare_input(chunk, device, channels_last))
            for layer, stage in zip(LAYERS, stages):
                outs[layer].append(stage.mean((2, 3)).float().cpu())
    return {layer: torch.cat(parts) for layer, parts in outs.items()}  # outside inference mode: normal tensors
