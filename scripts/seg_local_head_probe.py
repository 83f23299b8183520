"""Factor-table rows `e_local_head` and `e_shallow`: do a head that reads locally, and a trunk whose receptive field is
well under the image width, make channels belong to one image half (Fig. 6)?

    python scripts/seg_local_head_probe.py [--flip] [--shallow]   (writes /tmp/localhead[_shallow][_flip].pt;
                                                                   ~5 min of training in bf16)

The quick recipe of `e_l1_025` (128x256, 3,000 scenes x 8 epochs, `--latent-l1 0.25`, seed 0) with the head cut down
to what sees a few latent columns: ASPP rate 1 only and no image-pooling branch (a GAP of the latent broadcast to
every pixel), so a pixel's logits read 5 of the latent's 16 columns. ``--shallow`` also ends the trunk after its
third stage (latent: layer3's 256 channels at output stride 16), so a latent column sees 99 of the image's 256 pixel
columns, not 195 (both printed first), and can only learn where it is from zero padding within that reach. The
engine's builder is wrapped for this run only (its checkpoints load only through this script); then
`engine.seg.fidelity.measure` and
`scripts/seg_fig6_contrast.py` as for every other row.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import seg_fig6_contrast  # noqa: E402

from engine.models import segmentation  # noqa: E402
from engine.models.segmentation import SLIM_WIDTHS, slim_head  # noqa: E402
from engine.seg import train  # noqa: E402
from engine.seg.fidelity import measure  # noqa: E402
from engine.seg.lab import load_data  # noqa: E402

engine_builder = segmentation.build_model


def without_pooling(model: nn.Module) -> nn.Module:
    """``model`` with ASPP's image-pooling branch removed (and its projection narrowed to match)."""
    aspp = model.classifier[0]
    aspp.convs = nn.ModuleList(list(aspp.convs)[:-1])
    project = aspp.project[0]
    aspp.project[0] = nn.Conv2d(project.in_channels - project.out_channels, project.out_channels, 1, bias=False)
    return model


def local_head_model(*args, **kwargs) -> nn.Module:
    """The engine's model without ASPP's image-pooling branch."""
    return without_pooling(engine_builder(*args, **kwargs))


def shallow_model(*args, **kwargs) -> nn.Module:
    """The local-head model on a trunk cut after layer3 (the head rebuilt for layer3's width)."""
    model = engine_builder(*args, **kwargs)
    del model.backbone["layer4"]
    model.backbone.return_layers = {"layer3": "out"}
    aspp = model.classifier[0]
    rates = [conv[0].dilation[0] for conv in list(aspp.convs)[1:-1]]
    model.classifier = slim_head(4 * SLIM_WIDTHS[2], model.classifier[-1].out_channels, tuple(rates))
    return without_pooling(model)


def receptive_columns(model: nn.Module, height: int = 128, width: int = 512) -> int:
    """How many pixel columns reach one central latent position (nonzero input gradient; a wide image so none is cut)."""
    x = torch.randn(1, 3, height, width, requires_grad=True)
    z = model.eval().backbone(x)["out"]
    z[0, :, z.shape[2] // 2, z.shape[3] // 2].sum().backward()
    cols = (x.grad.abs().sum((0, 1, 2)) > 0).nonzero()
    return int(cols.max() - cols.min() + 1)


def main() -> int:
    flip, shallow = "--flip" in sys.argv[1:], "--shallow" in sys.argv[1:]
    train.build_model = segmentation.build_model = shallow_model if shallow else local_head_model  # this process only
    out = Path(f"/tmp/localhead{'_shallow' if shallow else ''}{'_flip' if flip else ''}.pt")
    cfg = train.TrainConfig(aspp_rates="1", train_images=3000, epochs=8, seed=0, latent_l1=0.25, flip=flip)
    print(f"trunk receptive field: {receptive_columns(segmentation.build_model(cfg.arch, rates=(1,)))} pixel columns "
          f"(the engine's trunk: {receptive_columns(engine_builder(cfg.arch, rates=(1,)))})", flush=True)
    start = time.time()
    seg = train.train_segmentation(cfg, torch.device("cpu"), checkpoint=out)
    print(f"trained in {time.time() - start:.0f} s; val mIoU {100 * seg.meta['val_miou']['all']:.1f}", flush=True)
    fid = measure(seg, load_data())
    print(f"mirror cost {100 * fid.mirror_cost:.2f} points")
    for row in fid.rows():
        if row["claim"] != "fig4-range":
            print(row, flush=True)
    sys.argv = [sys.argv[0], str(out)]
    return seg_fig6_contrast.main()


if __name__ == "__main__":
    raise SystemExit(main())
