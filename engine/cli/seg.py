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

import numpy as np

from engine.cli.output import add_command, print_table, write_json
from engine.core import distributed
from engine.core.device import pick_device
from engine.core.distributed import Shard
from engine.core.errors import RankFailed
from engine.core.progress import print_progress
from engine.data.cityscapes import SPLITS
from engine.models.segmentation import ARCHS, CONFIGS, DEFAULT_WEIGHTS, open_model, save_model
from engine.seg.ablation import channel_mask, evaluate_masks, range_sweep, scores, select, sweep
from engine.seg.features import LatentCache
from engine.seg.fidelity import measure
from engine.seg.lab import (
    DEFAULT_VAL,
    RANK_ON,
    RANKINGS,
    SUBSETS,
    channel_order,
    check_metric_model,
    load_data,
    moved,
    ranking_data,
    scaled_latents,
    subset_index,
)
from engine.seg.metrics import REGIONS
from engine.seg.ranking import METHODS, add_to_shipped, rank
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
    p.add_argument("--rank-on", choices=RANK_ON, default="held-out",
                   help="images the rankings are computed on: held-out (generated rank split, or a Cityscapes folder's "
                        "train split; disjoint from the evaluated images) or val (in-sample, as the paper's authors did)")
    p.add_argument("--json", metavar="PATH", help="also write the printed rows as JSON")


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
    data = load_data(args.data, args.split if args.data else "val", args.val_images, args.height, args.seed)
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


@sharded
def cmd_rank(args: argparse.Namespace, shard: Shard) -> int:
    seg, data = _load(args, metrics=False, shard=shard)
    ranked_on = ranking_data(data, args.rank_on)
    results = []
    for method in args.method:
        r = rank(seg, ranked_on, method, on_progress=_progress(shard), shard=shard)
        if args.add_to and shard.main:
            add_to_shipped(seg, ranked_on, r, Path(args.add_to))
        rows = [{"rank": i, "channel": int(c), "score": float(r.scores[c])} for i, c in enumerate(r.order)]
        _say(shard, f"{method} on {args.rank_on}: {r.count} images, {seg.channels} channels; top {args.top}:")
        if shard.main:
            print_table([{**row, "score": f"{row['score']:.4g}"} for row in rows[: args.top]], ["rank", "channel", "score"])
        results.append({"method": method, "images": r.count, "channels": rows})
    if shard.main:
        write_json(results[0] if len(results) == 1 else results, args.json)
    return 0


@sharded
def cmd_ablate(args: argparse.Namespace, shard: Shard) -> int:
    seg, data = _load(args, shard=shard)
    lat = scaled_latents(seg, data, args.subset, shard, _limit(args), on_progress=_progress(shard))
    draws = range(args.draws) if args.ranking == "random" else [0]
    zeroed = [select(channel_order(seg, data, args.ranking, d, args.rank_on, shard=shard), args.n,
                     tuple(args.range) if args.range else None) for d in draws]
    base, *results = evaluate_masks(seg, lat, [None, *(channel_mask(seg.channels, z) for z in zeroed)], shard)
    rows = [{"ranking": "none", "draw": None, "n": 0, **scores(base)}]
    for d, z, conf in zip(draws, zeroed, results):
        rows.append({"ranking": args.ranking, "draw": d if args.ranking == "random" else None, "n": len(z), **scores(conf)})
    if args.ranking == "random":
        rows.append({"ranking": "random mean", "draw": None, "n": rows[-1]["n"],
                     **{k: float(np.mean([r[k] for r in rows[1:]])) for k in REGIONS}})
    if shard.main:
        print(f"{args.subset}: {len(subset_index(data, args.subset))} images, mIoU (%)")
        print_table(_pct(rows), ["ranking", "draw", "n", *REGIONS])
        write_json(rows, args.json)
    return 0


@sharded
def cmd_sweep(args: argparse.Namespace, shard: Shard) -> int:
    seg, data = _load(args, shard=shard)
    orders = {m: channel_order(seg, data, m, rank_on=args.rank_on, shard=shard)
              for m in args.rankings.split(",") if m != "random"}
    lat = scaled_latents(seg, data, args.subset, shard, _limit(args), on_progress=_progress(shard))
    if args.range_step:
        rows = range_sweep(seg, lat, orders, args.range_step, args.range_stop, on_progress=_progress(shard), shard=shard)
        columns = ["ranking", "a", "b", *REGIONS]
    else:
        ns = [int(n) for n in args.ns.split(",")] if args.ns else [round(f * seg.channels) for f in (0, 0.05, 0.1, 0.25)]
        rows = sweep(seg, lat, orders, ns, args.draws, on_progress=_progress(shard), shard=shard)
        columns = ["ranking", "draw", "n", *REGIONS]
    if shard.main:
        streamed = f"; latents streamed from disk in chunks of {lat.rows} images" if hasattr(lat, "path") else ""
        print(f"{args.subset}: {len(subset_index(data, args.subset))} images, mIoU (%){streamed}")
        print_table(_pct(rows), columns)
        write_json(rows, args.json)
    return 0


@sharded
def cmd_position(args: argparse.Namespace, shard: Shard) -> int:
    seg, data = _load(args, shard=shard)
    rows = []
    for how in ["as given", *args.moves]:
        scenes = data if how == "as given" else moved(data, how)
        lat = scaled_latents(seg, scenes, "val", shard, _limit(args), cache=LatentCache(use_disk=False))
        rows.append({"scenes": how, **scores(evaluate_masks(seg, lat, [None], shard)[0])})
    if shard.main:
        print("mIoU (%) on the same scenes moved (a model that ignores absolute position scores the same on all):")
        print_table(_pct(rows), ["scenes", *REGIONS])
        write_json(_pct(rows), args.json)
    return 0


def cmd_fidelity(args: argparse.Namespace) -> int:
    seg, data = _load(args)
    result = measure(seg, data, args.rank_on, args.draws, on_progress=print_progress)
    print(f"\n{result.images} images, {result.channels} channels, rankings on {result.rank_on}; mIoU (%):")
    for row in result.rows():
        print("  " + "  ".join(f"{k}={v}" for k, v in row.items()))
    print(f"mirror cost: {100 * result.mirror_cost:.2f} points")
    write_json(result.to_json(), args.json)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    seg = train_segmentation(cfg, pick_device(args.device), on_progress=print_progress, checkpoint=Path(args.out))
    seg.model.cpu()
    path = save_model(seg, Path(args.out))
    print("val mIoU (%): " + "  ".join(f"{k} {100 * v:.1f}" for k, v in seg.meta["val_miou"].items()))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) in {seg.meta['seconds']} s on {seg.meta['device_name']}")
    write_json(seg.meta, args.json)
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
                                                               "stopped run can be continued with --init)")
    p.add_argument("--json", metavar="PATH", help="write the run's meta (config, device, val mIoU)")
