"""Do a model's flip-sensitive channels come in mirror pairs (channel c on the mirrored image behaving like c' on the
original), as handedness-tuned channels would? The card's question about the flip-trained control's Fig. 4.

    python -m research.seg_mirror_pairs [CHECKPOINT ...]   (default: the shipped default and control)

On the default val scenes and their mirror images: for each channel c, the channel c' whose GAP over the original
images correlates best (across images) with c's GAP over the mirrored ones; reported for all channels and for the
top 25% of the Eq. 2 ranking (held-out), with the mean |E GAP_c(mirror) - E GAP_c(original)|.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.data.scenes import SceneSet
from engine.models.segmentation import CONTROL_WEIGHTS, DEFAULT_WEIGHTS, SegModel
from engine.seg.features import LatentCache
from engine.seg.lab import load_data, method_ranking, moved
from research import checkpoints_parser, print_reports


def standardized(gap: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit norm, so a product of two is their correlation across images."""
    centred = gap - gap.mean(0)
    return centred / (np.linalg.norm(centred, axis=0) + 1e-12)


def mirror_pairs(seg: SegModel, data: SceneSet) -> list[str]:
    """The report's lines for one model on ``data`` and its mirror images."""
    original, mirrored = (LatentCache().get(seg, d).z.float().mean((2, 3)).numpy() for d in (data, moved(data, "mirror")))
    corr = standardized(mirrored).T @ standardized(original)  # [c, c']: GAP_c(mirror x) vs GAP_c'(x)
    best = corr.argmax(1)
    top = method_ranking(seg, data, "overall").order[: seg.channels // 4]
    return [f"the best partner is the channel itself for {np.mean(best == np.arange(seg.channels)):.2f} of all "
            f"channels (median self correlation {np.median(np.diag(corr)):.2f})",
            f"  top {len(top)} by Eq. 2: itself for {np.mean(best[top] == top):.2f} (median self correlation "
            f"{np.median(np.diag(corr)[top]):.2f}, median best-partner correlation {np.median(corr[top, best[top]]):.2f}); "
            f"mean |E GAP_c(mirror) - E GAP_c(original)| {np.abs(mirrored.mean(0) - original.mean(0))[top].mean():.4f}"]


def main(argv: Sequence[str] | None = None) -> int:
    args = checkpoints_parser("research.seg_mirror_pairs", __doc__, [DEFAULT_WEIGHTS, CONTROL_WEIGHTS]).parse_args(argv)
    data = load_data()
    return print_reports(args.checkpoints, lambda seg: mirror_pairs(seg, data))


if __name__ == "__main__":
    raise SystemExit(main())
