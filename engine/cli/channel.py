"""``decode``, ``shuffle``, ``channel-map`` and ``channel-nets``: the channel code, headless."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.channel import lab
from engine.channel.features import LAYERS
from engine.channel.nets import NETS, OBJECT_CLASSIFIER, TRAIN_SEED, TRAIN_STEPS
from engine.cli.output import add_command, add_output_args, print_table, write_rows
from engine.cli.recipes import add_recipe_argument
from engine.core.progress import print_progress
from engine.models.importers import RAPIDOCR_CLS
from engine.models.user_classifier import ARCHS as CLASSIFIER_ARCHS

DECODE_COLUMNS = ["net", "trained_grid", "grid", "layer", "permuted", "readout", "accuracy", "chance"]
SHUFFLE_COLUMNS = ["task", "kind", "trained", "tested", "net", "accuracy", "chance", "head_mean_share"]
MAP_COLUMNS = ["cell", "channels", "top channel", "selectivity", "position share"]
NETS_COLUMNS = ["net", "grid", "steps", "seed", "object_accuracy", "bytes"]
OWN_TASK_COLUMNS = ["network", "task", "tested", "accuracy", "n", "chance"]
REAL_COLUMNS = ["network", "grid", "task", "readout", "tested", "accuracy", "interval", "n", "chance"]
MODEL_HELP = (f"a network made elsewhere: a .onnx file, timm:<arch> with --weights, {RAPIDOCR_CLS} (the PP-OCR text-"
              "direction classifier rapidocr-onnxruntime bundles), cache:torchvision/<arch> or cache:timm/<name> (weights "
              "already in the local torch / Hugging Face cache); append :untrained for the same architecture at a "
              "random init")


def _users(args: argparse.Namespace) -> list[lab.UserNet]:
    """``--checkpoint`` (with ``--arch``) and each ``--model`` (with ``--weights``) opened."""
    users = [lab.open_user(args.checkpoint, args.arch)] if args.checkpoint else []
    return users + [lab.open_model(spec, args.weights) for spec in args.model or []]


def _user(args: argparse.Namespace) -> lab.UserNet | None:
    """The one network given by ``--checkpoint`` or ``--model``, if any."""
    users = _users(args)
    if len(users) > 1:
        raise ValueError("channel-map maps one network: give one --checkpoint or one --model")
    return users[0] if users else None


def _note(line: str) -> None:
    """A line on stderr (stdout keeps the table)."""
    print(line, file=sys.stderr)


def run_decode(args: argparse.Namespace) -> int:
    result = lab.DecodeTable()
    for user in _users(args) or [None]:
        result.decoded += lab.decode(args.grids, args.layers, args.nets, user, args.data, train=args.train,
                                     test=args.test, seed=args.seed, note=_note).decoded
    if not result.decoded:
        print("error: no network to decode (see the skipped lines above)", file=sys.stderr)
        return 2
    print_table(result.rows(), DECODE_COLUMNS)
    write_rows(result, args)
    return 0


def run_shuffle(args: argparse.Namespace) -> int:
    if args.model:
        rows = [row for spec in args.model for row in lab.own_task_shuffle(lab.open_model(spec).model,
                                                                           spec.removesuffix(":untrained"),
                                                                           args.samples, args.seed)]
        print_table(rows, OWN_TASK_COLUMNS)
        write_rows(rows, args)
        return 0
    result = lab.shuffle(args.tasks, args.kinds, args.grid, samples=args.samples, seed=args.seed)
    print_table(result.rows(), SHUFFLE_COLUMNS)
    write_rows(result, args)
    return 0


def run_channel_map(args: argparse.Namespace) -> int:
    result = lab.code_map(args.grid, args.layer, args.images, args.net, _user(args), args.data)
    print_table(result.cell_rows(), MAP_COLUMNS)
    print(f"mean selectivity {result.map.selectivity.mean():.3f}, mean position share {result.map.position_share.mean():.3f}")
    write_rows(result, args, document=result.document())  # --json: the whole map; --csv: one row per channel
    return 0


def run_real_network(args: argparse.Namespace) -> int:
    result = lab.real_network(args.model, args.grids, args.layer, args.train, args.test, args.samples, args.seed)
    print_table(result.rows(), REAL_COLUMNS)
    write_rows(result, args)
    return 0


def run_channel_nets(args: argparse.Namespace) -> int:
    result = lab.nets(args.grids, args.steps, args.seed, Path(args.out) if args.out else None, on_progress=print_progress)
    print_table(result.rows(), NETS_COLUMNS)
    write_rows(result, args)
    return 0


def _net_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", metavar="PATH", help="probe this network instead of the shipped ones: a probe "
                   "checkpoint written by this app, or a torchvision image classifier's state dict (plain or under "
                   "state_dict / model_state / model, module. prefixes ok)")
    p.add_argument("--arch", choices=("auto", *CLASSIFIER_ARCHS), default="auto",
                   help="architecture of a --checkpoint classifier (auto: told from its keys)")
    p.add_argument("--model", nargs="+", metavar="SPEC", help=MODEL_HELP)
    p.add_argument("--weights", metavar="PATH", help="state dict (.pth / .safetensors) for a timm:<arch> --model")
    p.add_argument("--data", metavar="PATH", help="patches from CIFAR-10/100 (torchvision layout) or an image folder "
                   "(default: generated shapes)")


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "decode", "linear probe: decode the cell from frozen GAP vectors, in order and permuted",
                    ["--grids 3 5 --nets object-classifier untrained --json decode.json",
                     "--checkpoint resnet18.pth --arch resnet18 --grids 3 --layers layer3 layer4",
                     f"--model {RAPIDOCR_CLS} {RAPIDOCR_CLS}:untrained --grids 3 5",
                     "--model timm:resnet18 --weights resnet18.safetensors --grids 3"], run_decode)
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
    add_output_args(p)  # one row per network, grid, layer and read-out

    p = add_command(sub, "shuffle", "the 2 x 2: trained with / without channel shuffle x tested with / without",
                    ["--grid 3 --json shuffle.json", "--tasks location --kinds fixed --samples 500 --csv shuffle.csv",
                     f"--model {RAPIDOCR_CLS} --samples 1000"], run_shuffle)
    p.add_argument("--tasks", nargs="+", choices=["location", "object"], default=["location", "object"],
                   help="which shipped GAPNet / PermuteNet pair (default: location object)")
    p.add_argument("--kinds", nargs="+", choices=["per_call", "fixed"], default=["per_call", "fixed"],
                   help="per_call: a fresh permutation per call (PermuteNet); fixed: one permutation, GAPNet relabeled "
                        "(default: per_call fixed)")
    p.add_argument("--grid", type=int, default=3, help="grid of the shipped networks (default: %(default)s)")
    p.add_argument("--samples", type=int, default=1000, help="test canvases per cell of the 2 x 2 (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="seeds the per-call permutations (default: %(default)s)")
    p.add_argument("--model", nargs="+", metavar="SPEC", help=f"instead: that network on its own task (known for "
                   f"{RAPIDOCR_CLS}: text direction on rendered lines), its GAP vector in order, under one fixed "
                   "permutation and under each image's own (--samples images, --seed)")
    add_output_args(p)

    p = add_command(sub, "channel-map", "each GAP channel's preferred cell and selectivity",
                    ["--net object-classifier --grid 3 --json map.json",
                     "--checkpoint probe.pt --layer layer3 --images 32 --csv channels.csv"],
                    run_channel_map)
    p.add_argument("--net", choices=NETS, default=OBJECT_CLASSIFIER, help="shipped network to map (default: %(default)s)")
    p.add_argument("--grid", type=int, default=3, help="grid to place the patches on (default: %(default)s)")
    p.add_argument("--layer", choices=LAYERS, default="layer4", help="stage pooled (default: %(default)s)")
    p.add_argument("--images", type=int, default=64,
                   help="test patches placed in every cell and averaged (default: %(default)s)")
    _net_args(p)
    add_output_args(p, json_help="write the whole map here (response per cell, preferred cell, selectivity per channel)",
                    csv_help="write one row per channel here (preferred cell, selectivity, position share)")

    p = add_command(sub, "real-network", "a network trained elsewhere: cell decode in order vs permuted (beside it "
                    "untrained) and shuffle at inference on its own task",
                    ["--json assets/channel_code/real_network.json", "--grids 3 --train 600 --test 300 --samples 300"],
                    run_real_network)
    p.add_argument("--model", default=RAPIDOCR_CLS, metavar="SPEC", help="a network with a known own task "
                   "(default: %(default)s)")
    p.add_argument("--grids", type=int, nargs="+", default=[3, 5], help="grids to decode the cell on (default: 3 5)")
    p.add_argument("--layer", choices=LAYERS, default="layer4", help="stage pooled (default: %(default)s: the GAP vector)")
    p.add_argument("--train", type=int, default=2000, help="probe training vectors (default: %(default)s)")
    p.add_argument("--test", type=int, default=1000, help="probe test vectors (default: %(default)s)")
    p.add_argument("--samples", type=int, default=1000, help="own-task test images (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="seeds the probe's training placements, the permutations "
                   "and the own-task images (default: %(default)s)")
    add_output_args(p)

    p = add_command(sub, "channel-nets", "train the object-only classifier shipped in assets/channel_code",
                    ["--recipe object-classifier-g3 --out object-classifier-g3.pt", "--grids 3",
                     "--grids 3 5 --steps 400 --json nets.json"], run_channel_nets)
    p.add_argument("--grids", type=int, nargs="+", default=[3], help="grids to train one classifier for each (default: 3)")
    p.add_argument("--steps", type=int, default=TRAIN_STEPS, help="training steps of batch 48 (default: %(default)s)")
    p.add_argument("--seed", type=int, default=TRAIN_SEED, help="seeds the weights and the training canvases (default: %(default)s)")
    p.add_argument("--out", metavar="PATH", help="checkpoint path, with one grid (default: "
                   "assets/channel_code/object-classifier-g<grid>.pt)")
    add_output_args(p)  # each network's record (path, accuracy, command)
    add_recipe_argument(p, "channel-nets")
