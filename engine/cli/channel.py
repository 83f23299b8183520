"""``decode``, ``shuffle``, ``channel-map`` and ``channel-nets``: the channel code, headless."""
from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path

from engine.channel.code_map import channel_map
from engine.channel.decode import decode_cells
from engine.channel.features import LAYERS, Probed
from engine.channel.nets import (
    NETS,
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
from engine.channel.shuffle import shuffle_2x2
from engine.cli.output import add_command, print_table, write_json
from engine.core.progress import print_progress
from engine.data.patches import PatchSource, open_patch_source
from engine.models.probe import ProbeNet
from engine.models.user_classifier import ARCHS as CLASSIFIER_ARCHS

DECODE_COLUMNS = ["net", "trained_grid", "grid", "layer", "permuted", "readout", "accuracy", "chance"]
SHUFFLE_COLUMNS = ["task", "kind", "trained", "tested", "net", "accuracy", "chance", "head_mean_share"]


def _user_net(args: argparse.Namespace) -> tuple[str, Probed, int | None] | None:
    """``--checkpoint``: its name, the network and the grid it was trained on (``None`` for a classifier)."""
    if not args.checkpoint:
        return None
    model = open_user_net(args.checkpoint, arch=args.arch)
    return Path(args.checkpoint).name, model, model.config.grid if isinstance(model, ProbeNet) else None


def _grid_nets(keys: list[str] | None, grid: int, user: tuple[str, Probed, int | None] | None
               ) -> list[tuple[str, Probed, int | None]]:
    """(name, network, trained grid) to probe at ``grid``: the user's, else ``keys`` or every shipped one there."""
    if user:
        name, model, trained = user
        return [(name, at_grid(model, grid), trained)]
    nets = []
    for key in keys or available_nets(grid):
        try:
            nets.append((key, *net_for_grid(key, grid)))
        except FileNotFoundError as err:
            print(f"skipped: {err}", file=sys.stderr)
    return nets


def _source_opener(path: str | None) -> Callable[[int], PatchSource]:
    """``--data`` opened once per patch size (the generated shapes without it)."""
    return functools.cache(lambda patch: open_patch_source(path, patch))


def run_decode(args: argparse.Namespace) -> int:
    rows, user, source = [], _user_net(args), _source_opener(args.data)
    for grid in args.grids:
        for key, model, trained_grid in _grid_nets(args.nets, grid, user):
            for layer in args.layers:
                for result in decode_cells(model, source(model.config.patch), train=args.train, test=args.test,
                                           layer=layer, seed=args.seed):
                    rows.append({"net": key, "trained_grid": trained_grid, "grid": grid, "width": model.config.width,
                                 "permuted": result.readout != "ordered", **result.as_dict()})
    if not rows:
        print("error: no network to decode (see the skipped lines above)", file=sys.stderr)
        return 2
    print_table(rows, DECODE_COLUMNS)
    write_json(rows, args.json)
    return 0


def run_shuffle(args: argparse.Namespace) -> int:
    rows = []
    for task in args.tasks:
        in_order, per_call = load_net(f"probe/{task}-gapnet", args.grid), load_net(f"probe/{task}-permutenet", args.grid)
        for kind in args.kinds:
            rows += shuffle_2x2(in_order, per_call, kind, samples=args.samples, seed=args.seed)
    print_table(rows, SHUFFLE_COLUMNS)
    write_json(rows, args.json)
    return 0


def run_channel_map(args: argparse.Namespace) -> int:
    user = _user_net(args)
    name, model = (user[0], at_grid(user[1], args.grid)) if user else (args.net, net_for_grid(args.net, args.grid)[0])
    cmap = channel_map(model, open_patch_source(args.data, model.config.patch), images=args.images, layer=args.layer)
    rows = [{"cell": cell, "channels": int((cmap.preferred == cell).sum()), "top channel": top,
             "selectivity": f"{cmap.selectivity[top]:.3f}" if top >= 0 else None,
             "position share": f"{cmap.position_share[top]:.3f}" if top >= 0 else None}
            for cell, top in enumerate(cmap.top_per_cell())]
    print_table(rows, ["cell", "channels", "top channel", "selectivity", "position share"])
    print(f"mean selectivity {cmap.selectivity.mean():.3f}, mean position share {cmap.position_share.mean():.3f}")
    write_json({"net": name, **cmap.as_dict()}, args.json)
    return 0


def run_channel_nets(args: argparse.Namespace) -> int:
    records = [train_object_classifier(grid, args.steps, args.seed, on_progress=print_progress) for grid in args.grids]
    print_table(records, ["net", "grid", "steps", "seed", "object_accuracy", "bytes"])
    write_json(records, args.json)
    return 0


def _net_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", metavar="PATH", help="probe this network instead of the shipped ones: a probe "
                   "checkpoint written by this app, or a torchvision image classifier's state dict (plain or under "
                   "state_dict / model_state / model, module. prefixes ok)")
    p.add_argument("--arch", choices=("auto", *CLASSIFIER_ARCHS), default="auto",
                   help="architecture of a --checkpoint classifier (auto: told from its keys)")
    p.add_argument("--data", metavar="PATH", help="patches from CIFAR-10/100 (torchvision layout) or an image folder "
                   "(default: generated shapes)")


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "decode", "linear probe: decode the cell from frozen GAP vectors, in order and permuted",
                    ["--grids 3 5 --nets object-classifier untrained --json decode.json",
                     "--checkpoint resnet18.pth --arch resnet18 --grids 3 --layers layer3 layer4"], run_decode)
    p.add_argument("--grids", type=int, nargs="+", default=[3, 5, 7], help="grids to place the patches on (default: 3 5 7)")
    p.add_argument("--nets", nargs="+", choices=NETS, help="default: every network available for the grid")
    p.add_argument("--layers", nargs="+", choices=LAYERS, default=["layer4"],
                   help="stages pooled (a classifier's: ResNet stem/layer1-4, MobileNet features by resolution; "
                        "default: layer4)")
    _net_args(p)
    p.add_argument("--train", type=int, default=2000, help="probe training vectors (default: %(default)s)")
    p.add_argument("--test", type=int, default=1000,
                   help="probe test vectors (fresh placements, test patches; default: %(default)s)")
    p.add_argument("--seed", type=int, default=1,
                   help="seeds the training placements and the permuted read-out (default: %(default)s)")
    p.add_argument("--json", metavar="PATH", help="write one row per network, grid, layer and read-out here")

    p = add_command(sub, "shuffle", "the 2 x 2: trained with / without channel shuffle x tested with / without",
                    ["--grid 3 --json shuffle.json", "--tasks location --kinds fixed --samples 500"], run_shuffle)
    p.add_argument("--tasks", nargs="+", choices=["location", "object"], default=["location", "object"],
                   help="which shipped GAPNet / PermuteNet pair (default: location object)")
    p.add_argument("--kinds", nargs="+", choices=["per_call", "fixed"], default=["per_call", "fixed"],
                   help="per_call: a fresh permutation per call (PermuteNet); fixed: one permutation, GAPNet relabeled "
                        "(default: per_call fixed)")
    p.add_argument("--grid", type=int, default=3, help="grid of the shipped networks (default: %(default)s)")
    p.add_argument("--samples", type=int, default=1000, help="test canvases per cell of the 2 x 2 (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="seeds the per-call permutations (default: %(default)s)")
    p.add_argument("--json", metavar="PATH", help="write the 2 x 2 rows here")

    p = add_command(sub, "channel-map", "each GAP channel's preferred cell and selectivity",
                    ["--net object-classifier --grid 3 --json map.json", "--checkpoint probe.pt --layer layer3 --images 32"],
                    run_channel_map)
    p.add_argument("--net", choices=NETS, default=OBJECT_CLASSIFIER, help="shipped network to map (default: %(default)s)")
    p.add_argument("--grid", type=int, default=3, help="grid to place the patches on (default: %(default)s)")
    p.add_argument("--layer", choices=LAYERS, default="layer4", help="stage pooled (default: %(default)s)")
    p.add_argument("--images", type=int, default=64,
                   help="test patches placed in every cell and averaged (default: %(default)s)")
    _net_args(p)
    p.add_argument("--json", metavar="PATH", help="write the map (preferred cell, selectivity per channel) here")

    p = add_command(sub, "channel-nets", "train the object-only classifier shipped in assets/channel_code",
                    ["--grids 3", "--grids 3 5 --steps 400 --json nets.json"], run_channel_nets)
    p.add_argument("--grids", type=int, nargs="+", default=[3], help="grids to train one classifier for each (default: 3)")
    p.add_argument("--steps", type=int, default=TRAIN_STEPS, help="training steps of batch 48 (default: %(default)s)")
    p.add_argument("--seed", type=int, default=TRAIN_SEED, help="seeds the weights and the training canvases (default: %(default)s)")
    p.add_argument("--json", metavar="PATH", help="write each network's record (path, accuracy, command) here")
