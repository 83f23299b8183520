"""Factor-table rows `e_local_head` and `e_shallow`: do a head that reads locally, and a trunk whose receptive field is
well under the image width, make channels belong to one image half (Fig. 6)?

    python -m research.seg_local_head_probe [--flip] [--shallow]   (writes /tmp/localhead[_shallow][_flip].pt;
                                                                   ~5 min of training in bf16)

The quick recipe of `e_l1_025` (128x256, 3,000 scenes x 8 epochs, `--latent-l1 0.25`, seed 0) with the head cut down
to what sees a few latent columns: ASPP rate 1 only and no image-pooling branch (`--no-aspp-pooling`: a GAP of the
latent broadcast to every pixel), so a pixel's logits read 5 of the latent's 16 columns. ``--shallow`` also ends the
trunk after its third stage (`--stages 3`; latent: layer3's 256 channels at output stride 16), so a latent column sees
99 of the image's 256 pixel columns, not 195 (both printed first), and can only learn where it is from zero padding
within that reach. Then `engine.seg.fidelity.measure` and `python -m research.seg_fig6_contrast` as for every other
row. The same run from the CLI: `python -m engine train-seg --aspp-rates 1 --no-aspp-pooling [--stages 3]
--train-images 3000 --epochs 8 --latent-l1 0.25 [--flip]`.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from engine.models.segmentation import build_model
from engine.seg.fidelity import measure
from engine.seg.lab import load_data
from engine.seg.train import TrainConfig, train_segmentation
from research import seg_fig6_contrast


def local_head_config(flip: bool = False, shallow: bool = False, **overrides: object) -> TrainConfig:
    """The rows' training run: the quick `e_l1_025` recipe with ASPP rate 1 and no pooling branch (and 3 stages)."""
    return TrainConfig(**{"aspp_rates": "1", "aspp_pooling": False, "stages": 3 if shallow else 4, "train_images": 3000,
                          "epochs": 8, "seed": 0, "latent_l1": 0.25, "flip": flip, **overrides})


def receptive_columns(model: nn.Module, height: int = 128, width: int = 512) -> int:
    """How many pixel columns reach one central latent position (nonzero input gradient; a wide image so none is cut)."""
    x = torch.randn(1, 3, height, width, requires_grad=True)
    z = model.eval().backbone(x)["out"]
    z[0, :, z.shape[2] // 2, z.shape[3] // 2].sum().backward()
    cols = (x.grad.abs().sum((0, 1, 2)) > 0).nonzero()
    return int(cols.max() - cols.min() + 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m research.seg_local_head_probe", description=__doc__.split("\n")[0])
    parser.add_argument("--flip", action="store_true", help="the flip-trained control of the row")
    parser.add_argument("--shallow", action="store_true", help="the trunk cut after layer3 (row e_shallow)")
    parser.add_argument("--out", help="checkpoint path (default: /tmp/localhead[_shallow][_flip].pt)")
    args = parser.parse_args(argv)
    out = Path(args.out or f"/tmp/localhead{'_shallow' if args.shallow else ''}{'_flip' if args.flip else ''}.pt")
    cfg = local_head_config(args.flip, args.shallow)
    probed = build_model(cfg.arch, rates=(1,), pooling=False, stages=cfg.stages)
    print(f"trunk receptive field: {receptive_columns(probed)} pixel columns (the engine's default trunk: "
          f"{receptive_columns(build_model(cfg.arch, rates=(1,)))})", flush=True)
    start = time.time()
    seg = train_segmentation(cfg, torch.device("cpu"), checkpoint=out)
    print(f"trained in {time.time() - start:.0f} s; val mIoU {100 * seg.meta['val_miou']['all']:.1f}", flush=True)
    fid = measure(seg, load_data())
    print(f"mirror cost {100 * fid.mirror_cost:.2f} points")
    for row in fid.rows():
        if row["claim"] != "fig4-range":
            print(row, flush=True)
    return seg_fig6_contrast.main([str(out)])


if __name__ == "__main__":
    raise SystemExit(main())
