"""Training the grid probe: a patch pasted into a random cell of an n x n canvas; fresh placements every step."""
from __future__ import annotations

from dataclasses import replace

import torch

from engine.core.device import seed_everything
from engine.core.progress import ProgressFn, StopToken
from engine.core.training import MilestoneFn, TrainConfig, TrainState, fit
from engine.data.grid import hflip_random, place_on_grid, random_cells
from engine.data.patches import GeneratedShapes, PatchSource
from engine.models.probe import ProbeConfig, ProbeNet, build_probe


def make_batch(config: ProbeConfig, source: PatchSource, n: int, seed: int, split: str = "train",
               flip: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Canvases (normalised), targets for ``config.task``, and the cells used; deterministic in seed."""
    patches, classes = source.sample(n, seed, split)
    g = torch.Generator().manual_seed(seed)
    if flip:
        patches = hflip_random(patches, g)
    cells = random_cells(n, config.grid, g)
    canvases = place_on_grid(patches, cells, config.grid, config.background)
    return canvases, (cells if config.task == "location" else classes), cells


def train_probe(config: ProbeConfig, train: TrainConfig, source: PatchSource | None = None,
                device: torch.device | None = None, on_progress: ProgressFn | None = None,
                stop: StopToken | None = None, init: ProbeNet | None = None, milestone: MilestoneFn | None = None,
                milestone_every: int = 0, resume: TrainState | None = None) -> tuple[ProbeNet, list[dict[str, float]]]:
    """Train a probe network (fresh, or ``init`` trained further in place); fresh random placements every step,
    seeded by (seed, step).

    The object task predicts the data's own classes (e.g. 100 for CIFAR-100), whatever ``config`` says.
    ``milestone`` (see :func:`engine.core.training.fit`) can evaluate and checkpoint a long run on the way;
    ``resume``: ``init`` continues its run from that state up to ``train.steps`` in all.
    """
    source = source or GeneratedShapes(config.patch)
    config = replace(config, num_classes=len(source.classes))
    seed_everything(train.seed)  # the initial weights too: the same --seed gives the same run
    model = build_probe(config) if init is None else _continue_from(init, config)

    def next_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        canvases, targets, _ = make_batch(model.config, source, train.batch, train.seed * 1_000_003 + step)
        return canvases, targets

    history = fit(model, next_batch, train, device=device, on_progress=on_progress, stop=stop,
                  milestone=milestone, milestone_every=milestone_every, resume=resume)
    return model.cpu().eval(), history


def _continue_from(init: ProbeNet, config: ProbeConfig) -> ProbeNet:
    """``init`` itself when the settings match; an object-task net also starts another grid size (same
    layers: the classes do not depend on the grid), so a long run can be continued on bigger canvases."""
    if init.config == config:
        return init
    if config.task == "object" and init.config.with_(grid=config.grid) == config:
        model = build_probe(config)
        model.load_state_dict(init.state_dict())
        return model
    raise ValueError(f"the starting checkpoint is a {init.config.label}; these settings ask for a {config.label}")
