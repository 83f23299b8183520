"""Why Fig. 6 fails on the generated scenes: are the Eq. 3 rankings masked by the scenes' shared asymmetry?

    python -m research.seg_fig6_contrast [CHECKPOINT ...] [--seed S] [--height H] [--layout L]   (default: assets/seg/default.pt, val seed 0)

Eq. 3 ranks channels by the signed change GAP(z(x)) - GAP(z(flip x)) over val-left (pedestrians only on the left)
or val-right. Every generated scene is left/right asymmetric (median left, sidewalk right, ego car in the right lane),
so both rankings also pick up what the two sets share. This splits the scores into a shared part (L + R) / 2 and a
side-specific part (L - R) / 2, and attacks, besides Eq. 3, the *contrast* orders L - R ("left, not shared") and
R - L: if the contrast orders localise to their half where Eq. 3 does not, the shared asymmetry masks the effect.
As a ceiling, it also attacks with where each channel fires (*located*: the mean activation in the left half of
the latent minus the right half, over the same held-out scenes), which GAP cannot see: if even those channels do not
hurt their own half more, the model has no left- or right-specific channels for any GAP ranking to find.
Last, the located channels are zeroed on one path of the head only: into ASPP's image-pooling branch (a GAP of the
latent, broadcast to every pixel) or into its local convolutions, to see which path carries their effect on each half.
Rankings on the held-out split, measured on val (as the lab does); mIoU in points, half of the image each.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from engine.data.cityscapes_classes import NUM_CLASSES
from engine.data.scenes import LAYOUTS, SceneSet
from engine.models.segmentation import DEFAULT_WEIGHTS, SegModel, upsample_logits
from engine.seg.ablation import channel_mask, select, sweep
from engine.seg.features import LatentCache, Latents
from engine.seg.fidelity import FRACTIONS
from engine.seg.lab import load_data, method_ranking, ranking_data
from engine.seg.metrics import miou, quarter_counts, regions_of
from research import checkpoints_parser, print_reports

PATHS = ("pooling", "local")


def one_path(seg: SegModel, lat: Latents, mask: torch.Tensor, path: str) -> dict[str, float]:
    """Region mIoU with ``mask`` applied only to the latent entering ASPP's pooling branch, or only its local convs."""
    aspp, rest = seg.model.classifier[0], seg.model.classifier[1:]
    total = torch.zeros(4, NUM_CLASSES, NUM_CLASSES, dtype=torch.int64)
    with torch.inference_mode():
        for start in range(0, len(lat.z), 32):
            z = lat.z[start:start + 32].float()
            masked = z * mask.view(1, -1, 1, 1)
            inputs = [masked if path == "local" else z] * (len(aspp.convs) - 1) + [masked if path == "pooling" else z]
            low = rest(aspp.project(torch.cat([conv(x) for conv, x in zip(aspp.convs, inputs)], 1)))
            pred = upsample_logits(low, lat.size).argmax(1)
            total += quarter_counts(pred, lat.labels[start:start + 32])
    return {r: miou(c) for r, c in regions_of(total).items()}


def contrast(seg: SegModel, data: SceneSet) -> list[str]:
    """The report's lines for one model on ``data`` (rankings on its held-out split)."""
    lat = LatentCache().get(seg, data)
    left, right = (method_ranking(seg, data, m).scores for m in ("left", "right"))
    shared, specific = (left + right) / 2, (left - right) / 2
    lines = [f"|specific| / |shared| = {np.linalg.norm(specific) / np.linalg.norm(shared):.2f}; "
             f"Pearson L vs R {np.corrcoef(left, right)[0, 1]:.2f}"]
    held = LatentCache().get(seg, ranking_data(data)).z.float()
    half = held.shape[-1] // 2
    located = (held[..., :half].mean((0, 2, 3)) - held[..., half:].mean((0, 2, 3))).double().numpy()
    orders = {"Eq3 left": np.argsort(-left, kind="stable"), "Eq3 right": np.argsort(-right, kind="stable"),
              "contrast L-R": np.argsort(-(left - right), kind="stable"),
              "contrast R-L": np.argsort(-(right - left), kind="stable"),
              "located L": np.argsort(-located, kind="stable"), "located R": np.argsort(located, kind="stable")}
    rows = sweep(seg, lat, orders, [round(f * seg.channels) for f in FRACTIONS])
    for n in sorted({r["n"] for r in rows}):
        at = {r["ranking"]: r for r in rows if r["n"] == n and r["ranking"] != "random"}
        draws = [r for r in rows if r["n"] == n and r["ranking"] == "random"]
        lines.append(f"  N={n} ({n / seg.channels:.0%}): random mean left/right half "
                     f"{100 * np.mean([r['left'] for r in draws]):.2f} / {100 * np.mean([r['right'] for r in draws]):.2f}")
        for a, b in (("Eq3 left", "Eq3 right"), ("contrast L-R", "contrast R-L"), ("located L", "located R")):
            left_a, left_b, right_a, right_b = (100 * at[k][h] for h in ("left", "right") for k in (a, b))
            lines.append(f"    {a:>12} vs {b:<12}: left half {left_a:.2f} vs {left_b:.2f} (gap {left_b - left_a:+.2f}); "
                         f"right half {right_b:.2f} vs {right_a:.2f} (gap {right_a - right_b:+.2f})")
    pooled = type(seg.model.classifier[0].convs[-1]).__name__ == "ASPPPooling"
    for f in FRACTIONS[1:] if pooled else ():  # a head without the pooling branch has one path
        n = round(f * seg.channels)
        for path in PATHS:
            got = {name: one_path(seg, lat, channel_mask(seg.channels, select(orders[name], n)), path)
                   for name in ("located L", "located R")}
            lines.append(f"  N={n}, located channels zeroed on the {path} path only: left half "
                         f"{100 * got['located L']['left']:.2f} (L) vs {100 * got['located R']['left']:.2f} (R); right half "
                         f"{100 * got['located R']['right']:.2f} (R) vs {100 * got['located L']['right']:.2f} (L)")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = checkpoints_parser("research.seg_fig6_contrast", __doc__, [DEFAULT_WEIGHTS])
    parser.add_argument("--seed", type=int, default=0, help="val scene seed (7: the strict tests' fresh sample)")
    parser.add_argument("--height", type=int, default=128, help="scene height the checkpoints were trained at")
    parser.add_argument("--layout", choices=LAYOUTS, default="divided", help="scene layout the checkpoints were trained on")
    args = parser.parse_args(argv)
    data = load_data(seed=args.seed, height=args.height, layout=args.layout)
    return print_reports(args.checkpoints, lambda seg: contrast(seg, data), f" on val seed {args.seed}")


if __name__ == "__main__":
    raise SystemExit(main())
