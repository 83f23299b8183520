"""``train-shift`` and ``consistency``: the shift lab (paper Table 2) from the command line."""
from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from pathlib import Path

import torch

from engine.cli.output import add_command, add_output_args, print_table, write_rows
from engine.cli.recipes import add_recipe_argument
from engine.core.device import pick_device
from engine.core.progress import print_progress
from engine.core.runs import RunStore, run_recorded
from engine.core.storage import cache_dir
from engine.core.training import TrainConfig
from engine.data.named import is_named
from engine.models.shift import DEFAULT_LAMBDA, METHODS, ShiftConfig, load_shift_model, save_shift_model
from engine.shift import lab
from engine.shift.consistency import EVAL_SEED
from engine.shift.shipped import SHIPPED_SETS


def register(sub: argparse._SubParsersAction) -> None:
    train = add_command(sub, "train-shift", "train one shift-lab model (baseline|augshift|blurpool|augshift+blurpool)",
                        ["--method augshift --steps 2000 --json augshift.json",
                         "--method blurpool --blur-filter 5 --clutter 0.5 --out blurpool.pt",
                         "--method augshift --data shapes100 --train-images 30000 --schedule cosine --out a100.pt",
                         "--method baseline --data digits --steps 1000 --eval-samples 500"], run_train)
    train.add_argument("--method", choices=METHODS, help="what the model is trained with (required unless --recipe)")
    train.add_argument("--steps", type=int, default=3000, help="training steps (default: %(default)s)")
    train.add_argument("--batch", type=int, default=128, help="images per step (AugShift: two crops of each; default: %(default)s)")
    train.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: %(default)s)")
    train.add_argument("--seed", type=int, default=0, help="seeds the weights and the training batches (default: %(default)s)")
    train.add_argument("--width", type=float, default=0.25, help="channel multiplier (1.0 = paper's 64..512; default: %(default)s)")
    train.add_argument("--lam", type=float, default=DEFAULT_LAMBDA, help="AugShift MSE weight lambda (default: %(default)s)")
    train.add_argument("--blur-filter", type=int, default=3, help="BlurPool binomial filter size (1-7; default: %(default)s)")
    train.add_argument("--pad", type=int, default=4, help="random-crop padding (standard augmentation; default: %(default)s)")
    train.add_argument("--crop", type=int, default=32, help="image size in pixels (default: %(default)s)")
    train.add_argument("--train-images", type=int, default=ShiftConfig.train_images,
                       help="fixed pool of generated training images (0: fresh images every step; default: %(default)s)")
    train.add_argument("--clutter", type=float, default=0.0,
                       help="0-1: harder embedded shapes (low contrast, a distractor, noise); evaluation uses the same")
    train.add_argument("--data", metavar="NAME|PATH",
                       help="shapes (default), shapes100 (100 generated classes), digits (scikit-learn's handwritten "
                            "digits), or a CIFAR-10/100 root or image folder")
    train.add_argument("--schedule", choices=("constant", "cosine"), default="constant",
                       help="learning rate: constant, or cosine decay to 0 over the run (default: %(default)s)")
    train.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    train.add_argument("--eval-samples", type=int, default=2000,
                       help="held-out images Top-1 and Cons.8 are measured on (default: %(default)s)")
    train.add_argument("--out", metavar="PATH", help="checkpoint path (default: <cache>/shift/<method>.pt)")
    train.add_argument("--init", metavar="PATH", help="continue training this shift checkpoint for --steps more (same "
                                                      "settings; a run's downloaded checkpoint too)")
    train.add_argument("--run", action="store_true",
                       help="record this training in the run store (checkpoint every few steps; listed by `runs` and on "
                            "the Shift lab of a localhost server; a stopped run continues with `runs --continue ID`)")
    add_recipe_argument(train, "train-shift")
    add_output_args(train)

    cons = add_command(sub, "consistency", "Top-1 and Cons.k of the shipped (or given) models beside paper Table 2",
                       ["--samples 2000 --passes 5 --more-shifts 4 16 --json table2.json",
                        "--sets shapes100",
                        "--models augshift.pt blurpool.pt --max-shift 4 --split val"], run_consistency)
    cons.add_argument("--max-shift", type=int, default=8,
                      help="k: each of the two crops sits at a random offset of 0..k-1 px in x and y (default: %(default)s)")
    cons.add_argument("--samples", type=int, default=2000, help="held-out images (default: %(default)s)")
    cons.add_argument("--passes", type=int, default=5, help="pairs of random shifts per image (default: %(default)s)")
    cons.add_argument("--seed", type=int, default=EVAL_SEED, help="seed of the test images and offsets (default: %(default)s)")
    cons.add_argument("--split", choices=("test", "val"), default="test",
                      help="val: for choosing settings such as lambda (default: %(default)s)")
    cons.add_argument("--more-shifts", type=int, nargs="+", default=[], metavar="K",
                      help="also measure Cons.K for these K on the same images (row keys cons4, cons16, ...)")
    cons.add_argument("--models", "--checkpoint", nargs="+", metavar="PATH",
                      help="checkpoints to evaluate (default: the shipped ones of --sets)")
    cons.add_argument("--sets", nargs="+", choices=tuple(SHIPPED_SETS),
                      help="shipped sets to evaluate without --models; a set with no shipped checkpoint is skipped "
                           "with a note unless named explicitly (default: all)")
    cons.add_argument("--data", metavar="NAME|PATH",
                      help="shapes, shapes100, digits, or a CIFAR-10/100 root or image folder (default: each model's own data)")
    cons.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    add_output_args(cons)


def _train_command(args: argparse.Namespace) -> str:
    """The full command line that reproduces this training run (every option spelled out)."""
    options = ["method", "steps", "batch", "lr", "seed", "width", "lam", "blur_filter", "pad", "crop", "train_images", "clutter", "data",
               "schedule", "device"]
    parts = ["python", "-m", "engine", "train-shift"]
    for name in options:
        value = getattr(args, name)
        if value is not None:
            parts += [f"--{name.replace('_', '-')}", str(value)]
    return shlex.join(parts + (["--init", args.init] if args.init else []) + (["--out", args.out] if args.out else []))


def run_train(args: argparse.Namespace) -> int:
    if args.method is None:
        raise ValueError("train-shift needs --method (or --recipe NAME)")
    config = ShiftConfig(method=args.method, width=args.width, crop=args.crop, pad=args.pad,
                         blur_filter=args.blur_filter, lam=args.lam, train_images=args.train_images, clutter=args.clutter)
    train = TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, schedule=args.schedule)
    if args.run:
        return _train_as_run(args, config, train)
    device = pick_device(args.device)
    init = load_shift_model(args.init)[0] if args.init else None
    result = lab.train(config, train, args.data, args.eval_samples, device, on_progress=print_progress, init=init)
    ev = result.evaluation
    meta = {"command": _train_command(args), "train": train.as_dict(), "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "train_seconds": round(result.seconds, 1), "data": result.data, "history": result.history[-1:],
            "eval": ev.as_dict()}
    out = Path(args.out) if args.out else cache_dir() / "shift" / f"{args.method.replace('+', '-')}.pt"
    save_shift_model(result.model, out, meta)
    print_table(result.rows(), ["method", "top1", "cons", "seconds"])
    print(f"saved {out}", file=sys.stderr)
    write_rows(result, args, document={"method": args.method, "top1": ev.top1, "cons": ev.cons, "path": str(out), **meta})
    return 0


def _train_as_run(args: argparse.Namespace, config: ShiftConfig, train: TrainConfig) -> int:
    """``train-shift --run``: the training as a run of the run store, as the Shift lab starts one."""
    if args.init:
        raise ValueError("--run starts a new run; continue a stopped one with: python -m engine runs --continue ID")
    if args.data and not is_named(args.data):
        raise ValueError(f"--run trains on a built-in set (shapes, shapes100, digits), not the folder {args.data!r}")
    store = RunStore()
    run = lab.start_run(store, config.with_(dataset=args.data or "shapes"), train, args.eval_samples)
    print(f"run {run.id} in {run.folder} (python -m engine runs lists it)", file=sys.stderr)
    result = run_recorded(store.recorder(run), lambda rec: lab.train_run(rec, args.device))
    if result is None:
        print(f"stopped: {store.get(run.id).status()}", file=sys.stderr)
        return 1
    if args.out:
        shutil.copyfile(run.checkpoint, args.out)
    print_table(result.rows(), ["method", "top1", "cons", "seconds"])
    write_rows(result, args, document={"run": run.id, **store.get(run.id).result})
    return 0


def run_consistency(args: argparse.Namespace) -> int:
    if args.models:
        models = [(load_shift_model(path)[0], path) for path in args.models]
    else:
        models, notes = lab.shipped(args.sets or list(SHIPPED_SETS), explicit=args.sets is not None)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
    result = lab.consistency(models, args.data, args.samples, args.max_shift, args.passes, args.seed, args.split,
                             args.more_shifts, pick_device(args.device))
    print(f"{args.split} split: Top-1 and Cons.{args.max_shift} "
          f"({args.samples} images, {args.passes} passes) beside the paper's Table 2 (CIFAR-10 / CIFAR-100, Cons.8)")
    rows = result.rows()
    print_table(rows,
                ["method", "dataset", "top1", "cons", *(f"cons{k}" for k in args.more_shifts), "cons_right", "cons_wrong",
                 "paper_c10_top1", "paper_c10_cons8", "paper_c100_top1", "paper_c100_cons8", "seconds"])
    write_rows(result, args)
    return 0
