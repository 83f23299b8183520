"""``train-probe`` and ``table1``: the grid location probe from the command line."""
from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from pathlib import Path

from engine.cli.output import add_command, add_output_args, print_table, write_rows
from engine.cli.recipes import add_recipe_argument
from engine.core.progress import print_progress
from engine.core.runs import RunStore, run_recorded
from engine.core.training import SCHEDULES, TrainConfig
from engine.models.probe import ProbeConfig, load_probe
from engine.probe import lab
from engine.probe.shipped import PROBE_ASSETS, UNSHIPPED_ROWS, shipped_probe_path

PADDINGS = ["zero", "reflect", "replicate", "circular"]
TABLE1_COLUMNS = ["task", "padding", "grid", "net", "accuracy", "sum_only", "paper", "source"]


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


def _note(line: str) -> None:
    """A progress line on stderr (stdout keeps the table)."""
    print(line, file=sys.stderr)


def _command() -> str:
    """This run's command line, recorded in the checkpoints it writes."""
    return "python -m engine " + shlex.join(sys.argv[1:])


def _train_config(args: argparse.Namespace) -> TrainConfig:
    """The training options as a :class:`TrainConfig` (progress every 25 steps)."""
    return TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, report_every=25,
                       schedule=args.schedule, freeze_bn=args.freeze_bn)


def cmd_train_probe(args: argparse.Namespace) -> int:
    config = ProbeConfig(head=args.head, task=args.task, grid=args.grid, padding=args.padding, width=args.width,
                         patch=args.patch, permute=args.permute, background=args.background)
    if args.run:
        if args.init:
            raise ValueError("--run starts a new run; continue a stopped one with: python -m engine runs --continue ID")
        store = RunStore()
        run = lab.start_run(store, config, _train_config(args), args.data, args.eval_samples)
        print(f"run {run.id} in {run.folder} (python -m engine runs lists it)", file=sys.stderr)
        result = run_recorded(store.recorder(run), lambda rec: lab.train_run(rec, args.device, note=_note))
        if result is None:
            print(f"stopped: {store.get(run.id).status()}", file=sys.stderr)
            return 1
        if args.out:
            shutil.copyfile(run.checkpoint, args.out)
        write_rows(result, args, document=result.document())
        return 0
    out = Path(args.out) if args.out else shipped_probe_path(args.head, args.task, args.grid, args.padding)
    result = lab.train(config, _train_config(args), out, data=args.data, device=args.device, init=args.init,
                       eval_samples=args.eval_samples, eval_every=args.eval_every, command=_command(),
                       on_progress=print_progress, note=_note)
    write_rows(result, args, document=result.document())  # --json: one object (curve, history, provenance)
    return 0


def cmd_eval_probe(args: argparse.Namespace) -> int:
    model, _ = load_probe(args.checkpoint)
    result = lab.evaluate(model, Path(args.checkpoint).name, samples=args.samples, data=args.data, device=args.device)
    print(f"{model.config.label}: accuracy {result.evaluation.accuracy:.2f}% on {args.samples} fresh placements")
    write_rows(result, args, document={"config": model.config.__dict__, "accuracy": result.evaluation.accuracy,
                                       "samples": args.samples, "per_cell": result.rows()})
    return 0


def cmd_table1(args: argparse.Namespace) -> int:
    result = lab.table1(args.tasks, args.paddings, args.grids, Path(args.checkpoints), data=args.data,
                        samples=args.eval_samples, device=args.device, unshipped=not args.no_unshipped,
                        train_with=_train_config(args) if args.train else None, width=args.width, patch=args.patch,
                        command=_command(), on_progress=print_progress, note=_note)
    print_table(result.rows(), TABLE1_COLUMNS)
    write_rows(result, args)
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
    add_recipe_argument(p, "train-probe")
    add_output_args(p, json_help="write the configuration, evaluation and provenance here (one object)",
                    csv_help="write one row of them here as CSV (settings, accuracy, checkpoint path)")
    p.add_argument("--init", default=None, metavar="PATH", help="continue training this probe checkpoint (same settings; "
                   "a run's downloaded checkpoint too)")
    p.add_argument("--run", action="store_true",
                   help="record this training in the run store (checkpoint every few steps; listed by `runs` and on "
                        "the Grid probe page of a localhost server; a stopped run continues with `runs --continue ID`)")
    p.add_argument("--eval-every", type=int, default=0, metavar="STEPS",
                   help="every STEPS steps: accuracy on 500 fresh placements into the meta's curve, and the weights "
                        "so far saved to --out (default: 0, off)")
    _add_model_args(p)

    p = add_command(sub, "eval-probe", "accuracy of a probe checkpoint on fresh placements (a page run's download too)",
                    ["--checkpoint probe.pt --samples 500", "--checkpoint run-checkpoint.pt --json eval.json"],
                    cmd_eval_probe)
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="a probe checkpoint written by this app")
    p.add_argument("--samples", type=int, default=500, help="fresh placements (default: %(default)s, as a page run)")
    p.add_argument("--data", default=None, metavar="PATH", help="CIFAR-10/100 or image folder (default: generated shapes)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    add_output_args(p)

    p = add_command(sub, "table1", "GAPNet vs PermuteNet accuracy beside the paper's Table 1",
                    ["--tasks location object --grids 3 5 7 --paddings zero reflect replicate --json out.json",
                     "--tasks location --paddings reflect --checkpoints runs/ --no-unshipped --json rows.json",
                     "--tasks location --grids 3 --csv table1.csv",
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
    add_output_args(p)
    _add_model_args(p)
