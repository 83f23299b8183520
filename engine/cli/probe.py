"""``train-probe`` and ``table1``: the grid location probe from the command line."""
from __future__ import annotations

import argparse
import re
import shlex
import sys
import time
from itertools import product
from pathlib import Path

from engine.cli.output import add_command, print_table, write_json
from engine.core.device import pick_device
from engine.core.progress import print_progress
from engine.core.training import SCHEDULES, TrainConfig
from engine.data.patches import open_patch_source
from engine.models.probe import ProbeConfig, ProbeNet, load_probe, save_probe
from engine.probe.evaluate import CURVE_SEED, EVAL_SEED, evaluate_probe
from engine.probe.shipped import PROBE_ASSETS, UNSHIPPED_ROWS, measure_table1, shipped_probe_path
from engine.probe.train import train_probe

PADDINGS = ["zero", "reflect", "replicate", "circular"]


def _add_model_args(p: argparse.ArgumentParser) -> None:
    """Options shared by ``train-probe`` and ``table1``: the network, its data and training, the evaluation."""
    p.add_argument("--width", type=float, default=0.25, help="channel width multiplier (1.0 = paper's ResNet-18; default: %(default)s)")
    p.add_argument("--patch", type=int, default=32, help="pixels per grid cell (default: %(default)s)")
    p.add_argument("--data", default=None, metavar="PATH", help="CIFAR-10/100 or image folder (default: generated shapes)")
    p.add_argument("--steps", type=int, default=1500, help="training steps (default: %(default)s)")
    p.add_argument("--batch", type=int, default=48, help="canvases per training step (default: %(default)s)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: %(default)s)")
    p.add_argument("--schedule", default="constant", choices=SCHEDULES,
                   help="learning rate over the run: constant, or cosine decay from --lr to 0 (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seeds the weights and the training canvases (default: %(default)s)")
    p.add_argument("--freeze-bn", action="store_true",
                   help="train with BatchNorm on its running statistics, as it is evaluated (e.g. a leg after a net "
                        "that scores 100%% in training but near chance in evaluation)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--eval-samples", type=int, default=2000,
                   help="fresh canvases the accuracy is measured on (default: %(default)s)")


def train_and_save(config: ProbeConfig, args: argparse.Namespace, out: Path) -> dict:
    """Train one probe, evaluate it on fresh placements, write checkpoint + meta; return the meta."""
    device = pick_device(args.device)
    source = open_patch_source(args.data, config.patch)
    train = TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, report_every=25,
                        schedule=args.schedule, freeze_bn=args.freeze_bn)
    init, init_meta = load_probe(args.init) if getattr(args, "init", None) else (None, {})
    command = "python -m engine " + shlex.join(sys.argv[1:])
    steps_before = steps_done(init_meta) if init is not None else 0
    curve: list[dict] = list(init_meta.get("curve", []))  # a continued run's curve goes on from its start's

    def milestone(step: int, model: ProbeNet) -> dict[str, float]:
        """Accuracy on 500 fresh placements, and the weights so far saved (a killed long run keeps its progress)."""
        accuracy = evaluate_probe(model, source, 500, CURVE_SEED, device=device).accuracy
        curve.append({"step": steps_before + step, "grid": config.grid, "accuracy": accuracy})
        save_probe(model, out, {"command": command, "partial": {"step": step, "of": args.steps}, "curve": curve})
        print(f"step {step}: {accuracy:.1f}% on 500 fresh placements (saved {out})", file=sys.stderr)
        return {"eval_accuracy": accuracy}

    start = time.perf_counter()
    model, history = train_probe(config, train, source, device, on_progress=print_progress, init=init,
                                 milestone=milestone, milestone_every=getattr(args, "eval_every", 0))
    seconds = time.perf_counter() - start
    save_probe(model, out, {})
    model, _ = load_probe(out)  # evaluate exactly what ships (fp16-stored weights)
    result = evaluate_probe(model, source, args.eval_samples, EVAL_SEED, device=device)
    meta = {
        "command": command, "steps_total": steps_before + args.steps,
        "train": train.as_dict(), "data": source.name, "device": str(device), "train_seconds": round(seconds, 1),
        "eval": {"accuracy": result.accuracy, "samples": result.samples, "seed": EVAL_SEED},
        "history": [row for row in history if "loss" in row][-5:],
    }
    if curve:  # accuracy vs steps (counted over every leg) on 500 fresh placements (seed CURVE_SEED)
        meta["curve"] = curve
    if init is not None:  # provenance: what this run continued from
        meta["init"] = {"path": str(args.init), "command": init_meta.get("command"), "init": init_meta.get("init")}
    save_probe(model, out, meta)
    print(f"{config.label}: accuracy {result.accuracy:.2f}% on {result.samples} fresh placements "
          f"({seconds:.0f} s on {device}) -> {out}", file=sys.stderr)
    return meta


def steps_done(meta: dict) -> int:
    """Training steps behind a checkpoint, over all its legs (checkpoints written before ``steps_total`` was
    recorded: its own steps plus those in the command it was continued from)."""
    if "steps_total" in meta:
        return int(meta["steps_total"])
    before = re.search(r"--steps (\d+)", (meta.get("init") or {}).get("command") or "")
    return int(meta.get("train", {}).get("steps", 0)) + (int(before.group(1)) if before else 0)


def cmd_train_probe(args: argparse.Namespace) -> int:
    config = ProbeConfig(head=args.head, task=args.task, grid=args.grid, padding=args.padding, width=args.width,
                         patch=args.patch, permute=args.permute, background=args.background)
    out = Path(args.out) if args.out else shipped_probe_path(args.head, args.task, args.grid, args.padding)
    meta = train_and_save(config, args, out)
    write_json({"config": config.__dict__, **meta}, args.json)
    return 0


def cmd_table1(args: argparse.Namespace) -> int:
    folder = Path(args.checkpoints)
    if args.train:
        for task, padding, grid, head in product(args.tasks, args.paddings, args.grids, ("gapnet", "permutenet")):
            config = ProbeConfig(head=head, task=task, grid=grid, padding=padding, width=args.width, patch=args.patch)
            train_and_save(config, args, shipped_probe_path(head, task, grid, padding, folder))
    rows = measure_table1(args.tasks, args.paddings, args.grids, folder, args.data, args.eval_samples,
                          pick_device(args.device), None if args.no_unshipped else UNSHIPPED_ROWS,
                          on_missing=lambda why: print(f"skipped {why} (use --train)", file=sys.stderr))
    print_table([r.as_dict() for r in rows], ["task", "padding", "grid", "net", "accuracy", "sum_only", "paper", "source"])
    write_json([r.as_dict() for r in rows], args.json)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "train-probe", "train one GAPNet / PermuteNet / classifier on grid canvases",
                    ["--head permutenet --task location --grid 5 --steps 1500 --out probe.pt",
                     "--head gapnet --grid 3 --steps 500 --init probe.pt --out probe-more.pt --json meta.json",
                     "--head permutenet --task object --steps 20000 --schedule cosine --eval-every 2000 --out long.pt"],
                    cmd_train_probe)
    p.add_argument("--head", default="gapnet", choices=["gapnet", "permutenet", "classifier"],
                   help="GAPNet (conv head, then GAP), PermuteNet (GAP, shuffled channels, linear) or a plain GAP "
                        "classifier (default: %(default)s)")
    p.add_argument("--task", default="location", choices=["location", "object"],
                   help="predict the cell the image was placed in, or its class (default: %(default)s)")
    p.add_argument("--grid", type=int, default=3, help="grid size, 2-9: the canvas has grid x grid cells (default: %(default)s)")
    p.add_argument("--padding", default="zero", choices=PADDINGS, help="padding mode of every convolution (default: %(default)s)")
    p.add_argument("--permute", default="per_call", choices=["per_call", "fixed"],
                   help="PermuteNet: a fresh channel shuffle on every call (the paper's) or one fixed permutation "
                        "(default: %(default)s)")
    p.add_argument("--background", default="mean", choices=["mean", "black"],
                   help="fill of the empty cells: the data's mean colour or black (default: %(default)s)")
    p.add_argument("--out", default=None, metavar="PATH", help="checkpoint path (default: the shipped asset path)")
    p.add_argument("--json", default=None, metavar="PATH", help="write the configuration, evaluation and provenance here")
    p.add_argument("--init", default=None, metavar="PATH", help="continue training this probe checkpoint (same settings)")
    p.add_argument("--eval-every", type=int, default=0, metavar="STEPS",
                   help="every STEPS steps: accuracy on 500 fresh placements into the meta's curve, and the weights "
                        "so far saved to --out (default: 0, off)")
    _add_model_args(p)

    p = add_command(sub, "table1", "GAPNet vs PermuteNet accuracy beside the paper's Table 1",
                    ["--tasks location object --grids 3 5 7 --paddings zero reflect replicate --json out.json",
                     "--tasks location --paddings reflect --checkpoints runs/ --no-unshipped --json rows.json",
                     "--tasks location object --paddings zero reflect --train --steps 1500 --checkpoints runs/"],
                    cmd_table1)
    p.add_argument("--grids", type=int, nargs="+", default=[3, 5, 7], help="grid sizes, one row pair each (default: 3 5 7)")
    p.add_argument("--paddings", nargs="+", default=["zero"], choices=PADDINGS, help="padding modes (default: zero)")
    p.add_argument("--tasks", nargs="+", default=["location"], choices=["location", "object"], help="tasks (default: location)")
    p.add_argument("--train", action="store_true", help="train the checkpoints first (else evaluate the shipped ones)")
    p.add_argument("--checkpoints", default=str(PROBE_ASSETS), metavar="DIR",
                   help="folder of checkpoints named TASK-HEAD-gGRID-PADDING.pt (default: the shipped assets/probe)")
    p.add_argument("--no-unshipped", action="store_true",
                   help=f"leave out cells without a checkpoint instead of taking them from {UNSHIPPED_ROWS.name}")
    p.add_argument("--json", default=None, metavar="PATH", help="write the table's rows here")
    _add_model_args(p)
