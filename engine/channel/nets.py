"""The networks the channel-code experiments read, and where they come from.

- ``object-classifier`` (shipped in ``assets/channel_code``): GAP -> Linear trained only for the
  10-class object task on 3x3 canvases (paper ResNet-18 at width 1/2): the network "not trained for
  location" whose GAP vector the decode probe reads. It is fully convolutional, so it is also probed
  on 5x5 and 7x7 canvases, as the paper's supplementary probes ImageNet networks on grid inputs.
- ``probe/{task}-{gapnet,permutenet}``: the grid-probe checkpoints shipped in ``assets/probe``
  (location at 3x3, 5x5, 7x7; object at 3x3); GAPNet is the 2 x 2's "trained without shuffle",
  PermuteNet its "trained with shuffle".
- ``untrained``: the object classifier's architecture at its seeded initialisation, a control for how
  much position zero padding alone writes into GAP.
- a user's own: a probe checkpoint or a torchvision image classifier (:func:`open_user_net`).
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch

from engine.channel.features import Probed
from engine.core.cache import CACHE
from engine.core.progress import ProgressFn, StopToken
from engine.core.storage import ASSETS, CheckpointError, fingerprint
from engine.core.training import TrainConfig
from engine.models.probe import ProbeConfig, ProbeNet, build_probe, load_probe, save_probe
from engine.models.user_models import load_user_checkpoint
from engine.probe.evaluate import evaluate_probe
from engine.probe.shipped import shipped_probe_path
from engine.probe.train import train_probe

CHANNEL_ASSETS = ASSETS / "channel_code"
WIDTH = 0.5
TRAIN_STEPS = 800
TRAIN_SEED = 0
OBJECT_CLASSIFIER = "object-classifier"
UNTRAINED = "untrained"
PROBE_NETS = {f"probe/{task}-{head}": (head, task) for task in ("location", "object") for head in ("gapnet", "permutenet")}
NETS = (OBJECT_CLASSIFIER, *PROBE_NETS, UNTRAINED)


def classifier_config(grid: int) -> ProbeConfig:
    """The object-only classifier's settings (also the untrained control's)."""
    return ProbeConfig(head="classifier", task="object", grid=grid, width=WIDTH)


def net_path(key: str, grid: int) -> Path:
    """Where network ``key`` trained at ``grid`` lives (it may not exist)."""
    if key == OBJECT_CLASSIFIER:
        return CHANNEL_ASSETS / f"{key}-g{grid}.pt"
    if key in PROBE_NETS:
        return shipped_probe_path(*PROBE_NETS[key], grid)
    raise ValueError(f"{key!r} has no checkpoint; networks: {', '.join(NETS)}")


def load_net(key: str, grid: int) -> ProbeNet:
    """Network ``key`` trained at ``grid``; ``FileNotFoundError`` names the command that makes it.

    A checkpoint is loaded once per file version (path, size, modification time) into the shared cache: the network
    is shared, read-only (only evaluated)."""
    if key == UNTRAINED:
        return CACHE.get_or_compute(f"channel/untrained-{grid}", lambda: _untrained(grid))
    path = net_path(key, grid)
    if not path.is_file():
        make = (f"python -m engine channel-nets --grids {grid}" if key == OBJECT_CLASSIFIER else
                "python -m engine train-probe --head {} --task {} --grid {} --out {}".format(*PROBE_NETS[key], grid, path))
        raise FileNotFoundError(f"No checkpoint {path.name}; make it with `{make}`.")
    return CACHE.get_or_compute(f"channel/net-{_file_version(path)}", lambda: load_probe(path)[0])


def _file_version(path: Path) -> str:
    """A checkpoint file's version: its path, size and modification time."""
    stat = path.stat()
    return fingerprint(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def net_version(key: str, grid: int) -> str:
    """What names the weights :func:`net_for_grid` gives for ``key`` at ``grid`` without loading them: the version of
    the checkpoint it reads (the untrained control: its key and grid, its weights come from a fixed seed)."""
    if key == UNTRAINED:
        return fingerprint(key, grid)
    return _file_version(net_path(key, grid if net_path(key, grid).is_file() else 3))


def _untrained(grid: int) -> ProbeNet:
    """The object classifier at its seeded initialisation, built without touching the process's random state (a
    server's sessions share it)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TRAIN_SEED)
        return build_probe(classifier_config(grid)).eval()


def net_for_grid(key: str, grid: int) -> tuple[ProbeNet, int | None]:
    """Network ``key`` to probe on ``grid`` canvases: the one trained at ``grid``, else its 3x3 one.

    Returns the network and the grid it was trained on (``None`` for the untrained control).
    """
    if key == UNTRAINED:
        return load_net(key, grid), None
    trained = grid if net_path(key, grid).is_file() else 3
    return at_grid(load_net(key, trained), grid), trained


def at_grid(model: Probed, grid: int) -> Probed:
    """``model`` set to probe ``grid`` canvases (a fully convolutional backbone takes any canvas size).

    A shallow copy sharing the weights: the original (maybe a session's upload) keeps its own grid.
    """
    out = copy.copy(model)
    out.config = model.config.with_(grid=grid)
    return out


def open_user_net(source: Path | str | bytes, name: str | None = None, arch: str = "auto") -> Probed:
    """A user's probe checkpoint or torchvision image classifier (a path or upload bytes); segmentation is refused."""
    name = name or (Path(source).name if not isinstance(source, bytes) else "upload")
    loaded = load_user_checkpoint(source, name, arch)
    if loaded.kind == "segmentation":
        raise CheckpointError(f"{name} is a segmentation model ({loaded.label}); the channel code reads a probe "
                              "checkpoint or an image classifier.")
    return loaded.model


def available_nets(grid: int) -> list[str]:
    """Networks that can be probed on ``grid`` canvases (trained there, or at 3x3)."""
    return [key for key in NETS if key == UNTRAINED or net_path(key, grid).is_file() or
            (key == OBJECT_CLASSIFIER and net_path(key, 3).is_file())]


def train_object_classifier(grid: int = 3, steps: int = TRAIN_STEPS, seed: int = TRAIN_SEED, out: Path | None = None,
                            eval_samples: int = 2000, on_progress: ProgressFn | None = None,
                            stop: StopToken | None = None) -> dict:
    """Train the object-only classifier, save it (fp16) and return its record (command, seed, accuracy)."""
    train = TrainConfig(steps=steps, seed=seed, report_every=50)
    model, history = train_probe(classifier_config(grid), train, on_progress=on_progress, stop=stop)
    path = out or net_path(OBJECT_CLASSIFIER, grid)
    command = f"python -m engine channel-nets --grids {grid} --steps {steps} --seed {seed}"
    save_probe(model, path, {"command": command, "train": train.as_dict(), "history": history})
    accuracy = evaluate_probe(load_probe(path)[0], samples=eval_samples).accuracy
    return {"net": OBJECT_CLASSIFIER, "grid": grid, "path": str(path), "command": command, "seed": seed,
            "steps": steps, "object_accuracy": accuracy, "eval_samples": eval_samples, "bytes": path.stat().st_size}
