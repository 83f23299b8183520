"""Segmentation-lab commands: ``rank``, ``ablate``, ``sweep``, ``position``, ``fidelity`` and ``train-seg`` (paper Sec. 4.2).

``rank``, ``sweep``, ``ablate`` and ``position`` also run under ``torchrun --nproc_per_node K -m engine ...``
(one node or several): each rank takes a disjoint share of the images, the partial sums are combined by
``all_reduce`` (engine.core.distributed), and rank 0 prints and writes the JSON. Their latents stay in memory within
``--cache-limit`` bytes per process and are streamed from disk beyond it.
"""
from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from engine.cli.output import add_command, add_output_args, print_table, write_rows
from engine.cli.recipes import add_recipe_argument
from engine.core import distributed
from engine.core.device import pick_device
from engine.core.distributed import Shard
from engine.core.errors import RankFailed
from engine.core.progress import print_progress
from engine.core.results import Result
from engine.data.cityscapes import SPLITS
from engine.data.scenes import LAYOUTS
from engine.models.segmentation import ARCHS, CONFIGS, DEFAULT_WEIGHTS, open_model, save_model
from engine.seg import lab
from engine.seg.lab import DEFAULT_VAL, RANK_ON, RANKINGS, SUBSETS, check_metric_model, load_data
from engine.seg.metrics import REGIONS
from engine.seg.ranking import METHODS
from engine.seg.train import TrainConfig, train_segmentation


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", "--weights", dest="checkpoint", default=str(DEFAULT_WEIGHTS), metavar="PATH",
                   help="segmentation checkpoint: this app's, a torchvision DeepLabV3/FCN state dict (plain, wrapped, "
                        "module.-prefixed), or torchvision:<arch> for pretrained weights in the local torch cache "
                        "(default: shipped model)")
    p.add_argument("--arch", choices=("auto", *ARCHS), default="auto", help="architecture of a plain state dict")
    p.add_argument("--config", choices=CONFIGS, default="torchvision",
                   help="settings of a plain state dict: torchvision's builder (ResNet: output stride 8, ASPP 12/24/36) "
                        "or the paper's (output stride 16, ASPP 6/12/18)")
    p.add_argument("--data", metavar="PATH", help="a Cityscapes folder in torchvision's layout (default: generated scenes)")
    p.add_argument("--split", choices=SPLITS, default="val", help="Cityscapes split (with --data)")
    p.add_argument("--val-images", type=int, default=DEFAULT_VAL.count, help="images: generated count, or the first N of --data")
    p.add_argument("--height", type=int, default=DEFAULT_VAL.height, help="working image height (width = 2x)")
    p.add_argument("--seed", type=int, default=DEFAULT_VAL.seed, help="scene seed of the generated val split")
    p.add_argument("--layout", choices=LAYOUTS, default=DEFAULT_VAL.layout,
                   help="generated scenes' layout (the one the model was trained on; see train-seg --layout)")
    p.add_argument("--rank-on", choices=RANK_ON, default="held-out",
                   help="images the rankings are computed on: held-out (generated rank split, or a Cityscapes folder's "
                        "train split; disjoint from the evaluated images) or val (in-sample, as the paper's authors did)")
    add_output_args(p)


def _scale_args(p: argparse.ArgumentParser, latents: bool = True) -> None:
    if latents:
        p.add_argument("--cache-limit", metavar="BYTES", type=distributed.parse_bytes,
                       help="memory for latents per process, e.g. 2G or 500M; beyond it latents are streamed from fp16 "
                            "files in the cache folder (default: half the available memory over the processes on this node)")
    p.add_argument("--device", help="cpu or cuda (default: the CPU; under torchrun with GPUs each rank's own GPU)")


def _load(args: argparse.Namespace, metrics: bool = True, shard: Shard = distributed.SINGLE):
    seg = open_model(args.checkpoint, args.arch, args.config)
    if metrics:
        check_metric_model(seg)
    device = getattr(args, "device", None)
    if device or shard.backend == "nccl":
        seg.model.to(pick_device(device) if device else shard.device)
    data = load_data(args.data, args.split if args.data else "val", args.val_images, args.height, args.seed,
                     layout=args.layout)
    _say(shard, f"model: {seg.label}; data: {len(data.labels)} images ({data.key['kind']})"
                + (f"; {shard.world} processes ({shard.backend})" if shard.distributed else ""))
    return seg, data


def _say(shard: Shard, text: str) -> None:
    if shard.main:
        print(text)


def _progress(shard: Shard):
    return print_progress if shard.main else None


def _limit(args: argparse.Namespace) -> int:
    return args.cache_limit if args.cache_limit is not None else distributed.memory_budget()


def sharded(func: Callable[[argparse.Namespace, Shard], int]) -> Callable[[argparse.Namespace], int]:
    """Run a command in this process's place of a torchrun run (or alone): a failure names its rank, and the
    process group is left however the command ends."""
    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        owned = not distributed.active()  # a caller that started the group (several commands in one run) ends it
        shard = distributed.init()
        try:
            return func(args, shard)
        except (ValueError, FileNotFoundError) as err:
            if not shard.distributed:
                raise
            raise RankFailed(f"{shard.label}: {err}") from err
        except Exception as err:
            if shard.distributed:
                print(f"error: {shard.label} failed: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
            raise
        finally:
            if owned:
                distributed.finish()
    return run


def _pct(rows: list[dict]) -> list[dict]:
    return [{**r, **{k: 100 * r[k] for k in REGIONS}} for r in rows]


def _write(result: Result | list[dict], args: argparse.Namespace, as_json: object = None) -> None:
    """``--csv``: the result's rows; ``--json``: ``as_json`` where the command's JSON is not its rows."""
    if as_json is None:
        write_rows(result, args)
        return
    write_rows(result, args, document=as_json)


@sharded
def cmd_rank(args: argparse.Namespace, shard: Shard) -> int:
    seg, data = _load(args, metrics=False, shard=shard)
    result = lab.rank(seg, data, args.method, args.rank_on, Path(args.add_to) if args.add_to else None, shard,
                      on_progress=_progress(shard))
    if shard.main:
        for method, r in result.rankings.items():
            print(f"{method} on {args.rank_on}: {r.count} images, {seg.channels} channels; top {args.top}:")
            print_table([{"rank": i, "channel": int(c), "score": f"{r.scores[c]:.4g}"} for i, c in enumerate(r.order[: args.top])],
                        ["rank", "channel", "score"])
        _write(result, args, result.to_json())
    return 0


@sharded
def cmd_ablate(args: argparse.Namespace, shard: Shard) -> int:
    seg, data = _load(args, shard=shard)
    result = lab.ablate(seg, data, args.ranking, args.n, tuple(args.range) if args.range else None, args.draws,
                        args.subset, args.rank_on, limit=_limit(args), shard=shard, on_progress=_progress(shard))
    if shard.main:
        print(f"{args.subset}: {result.images} images, mIoU (%)")
        print_table(_pct(result.rows()), ["ranking", "draw", "n", *REGIONS])
        _write(result, args)
    return 0


@sharded
def cmd_sweep(args: argparse.Namespace, shard: Shard) -> int:
    seg, data = _load(args, shard=shard)
    result = lab.sweep(seg, data, args.rankings.split(","), [int(n) for n in args.ns.split(",")] if args.ns else None,
                       args.draws, args.range_step, args.range_stop, args.subset, args.rank_on, limit=_limit(args),
                       shard=shard, on_progress=_progress(shard))
    if shard.main:
        streamed = f"; latents streamed from disk in chunks of {result.streamed} images" if result.streamed else ""
        print(f"{args.subset}: {result.images} images, mIoU (%){streamed}")
        print_table(_pct(result.rows()), result.columns)
        _write(result, args)
    return 0


@sharded
def cmd_position(args: argparse.Namespace, shard: Shard) -> int:
    seg, data = _load(args, shard=shard)
    result = lab.position(seg, data, args.moves, _limit(args), shard)
    if shard.main:
        print("mIoU (%) on the same scenes moved (a model that ignores absolute position scores the same on all):")
        print_table(result.rows(), ["scenes", *REGIONS])
        _write(result, args)
    return 0


def cmd_fidelity(args: argparse.Namespace) -> int:
    seg, data = _load(args)
    result = lab.fidelity(seg, data, args.rank_on, args.draws, on_progress=print_progress)
    print(f"\n{result.images} images, {result.channels} channels, rankings on {result.rank_on}; mIoU (%):")
    for row in result.rows():
        print("  " + "  ".join(f"{k}={v}" for k, v in row.items()))
    print(f"mirror cost: {100 * result.mirror_cost:.2f} points")
    _write(result, args, result.to_json())
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    seg = train_segmentation(cfg, pick_device(args.device), on_progress=print_progress, checkpoint=Path(args.out))
    seg.model.cpu()
    path = save_model(seg, Path(args.out))
    print("val mIoU (%): " + "  ".join(f"{k} {100 * v:.1f}" for k, v in seg.meta["val_miou"].items()))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) in {seg.meta['seconds']} s on {seg.meta['device_name']}")
    _write([seg.meta], args, seg.meta)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "rank", "rank latent channels by flip sensitivity (Eq. 2/3, Kernel-Flip) or magnitude",
                    ["--method overall --top 20", "--method left --rank-on val --json left.json",
                     "--checkpoint assets/seg/control.pt --method magnitude",
                     "--method overall left right kflip1 kflip2 magnitude --add-to assets/seg/rankings.json"], cmd_rank)
    p.add_argument("--method", choices=METHODS, nargs="+", default=["overall"],
                   help="ranking method(s) (default: overall = Eq. 2); several give a JSON list")
    p.add_argument("--top", type=int, default=10, help="rows to print (the JSON lists every channel)")
    p.add_argument("--add-to", metavar="PATH", help="also store the ranking under its cache key in this rankings file "
                                                    "(how assets/seg/rankings.json is made)")
    _data_args(p)
    _scale_args(p, latents=False)

    p = add_command(sub, "ablate", "zero ranked latent channels, print mIoU all/left/center/right",
                    ["--ranking overall --n 128", "--ranking random --n 128 --draws 5", "--ranking left --range 0 64 --subset val-left"],
                    cmd_ablate)
    p.add_argument("--ranking", choices=RANKINGS, default="overall", help="channel order to zero from (default: overall)")
    p.add_argument("--n", type=int, default=0, help="zero the top N channels")
    p.add_argument("--range", type=int, nargs=2, metavar=("A", "B"), help="zero ranks [A, B) instead")
    p.add_argument("--draws", type=int, default=5, help="random draws (ranking random)")
    p.add_argument("--subset", choices=SUBSETS, default="val", help="images scored: all val, or val-left / val-right")
    _data_args(p)
    _scale_args(p)

    p = add_command(sub, "sweep", "mIoU per region vs N (top-N or rank ranges) for several rankings",
                    ["--rankings overall,left,right,magnitude --draws 5 --json sweep.json",
                     "--rankings overall --range-step 64", "--checkpoint assets/seg/control.pt --rank-on val"], cmd_sweep)
    p.add_argument("--rankings", default="overall,kflip1,kflip2", help=f"comma list of {', '.join(METHODS)}")
    p.add_argument("--ns", help="comma list of N (default: 0 and 5/10/25%% of the latent width)")
    p.add_argument("--draws", type=int, default=5, help="random draws per N")
    p.add_argument("--range-step", type=int, help="zero rank ranges [a, a+step) instead of top N")
    p.add_argument("--range-stop", type=int, help="last rank covered by the range sweep")
    p.add_argument("--subset", choices=SUBSETS, default="val", help="images scored: all val, or val-left / val-right")
    _data_args(p)
    _scale_args(p)

    p = add_command(sub, "position", "mIoU on the scenes mirrored and shifted: how much the model relies on absolute position",
                    ["", "--checkpoint assets/seg/control.pt --moves mirror"], cmd_position)
    p.add_argument("--moves", nargs="+", default=["mirror", "roll:32", "roll:64"], help="mirror and/or roll:<pixels>")
    _data_args(p)
    _scale_args(p)

    p = add_command(sub, "fidelity", "the paper's Fig. 4/6 claims on one model: top N vs random and magnitude, first vs "
                                     "last quarter, left- vs right-ranked per half, mirrored-scene cost",
                    ["--json assets/seg/fidelity_default.json",
                     "--checkpoint assets/seg/control.pt --json assets/seg/fidelity_control.json", "--rank-on val"],
                    cmd_fidelity)
    p.add_argument("--draws", type=int, default=5, help="random draws per N")
    _data_args(p)

    p = add_command(sub, "train-seg", "train the segmentation model on generated street scenes or a Cityscapes folder",
                    ["--out assets/seg/default.pt --json meta.json", "--flip --out assets/seg/control.pt",
                     "--init assets/seg/default.pt --epochs 4 --lr 5e-4 --out leg2.pt", "--data ~/cityscapes --epochs 10"],
                    cmd_train)
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        default, flag = getattr(defaults, f.name), f"--{f.name.replace('_', '-')}"
        helptext = f.metadata.get("help", f"(default: {default})")
        if isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=helptext)
        else:
            p.add_argument(flag, type=type(default), default=default, help=helptext)
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--out", default=str(DEFAULT_WEIGHTS), help="where to write the weights (also after every epoch, so a "
                                                               "stopped run can be continued with --init and --start-epoch)")
    add_recipe_argument(p, "train-seg")
    add_output_args(p)
