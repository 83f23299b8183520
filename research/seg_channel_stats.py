"""How sparse a segmentation model's latent is, and how much its rankings overlap (the numbers behind the seg card's
"what the magnitude baseline says" and the factor table's sparsity notes).

    python -m research.seg_channel_stats [CHECKPOINT ...]   (default: assets/seg/default.pt)

Per checkpoint, on the default val scenes: quantiles over channels of the fraction of latent positions that are on
(> 0; 64 scenes), the Spearman correlation of the Eq. 2 (and Eq. 3) and magnitude scores, their top-N overlaps, and
the same for the left and right (Eq. 3) rankings, at 5 / 10 / 25% of the latent width (held-out rankings, as the lab
uses).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.data.scenes import SceneSet
from engine.models.segmentation import DEFAULT_WEIGHTS, SegModel
from engine.seg.features import compute_latents
from engine.seg.fidelity import FRACTIONS
from engine.seg.lab import load_data, method_ranking
from research import checkpoints_parser, print_reports


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation (no ties expected in float scores)."""
    return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])


def channel_stats(seg: SegModel, data: SceneSet, sample: SceneSet) -> list[str]:
    """The report's lines for one model: latent sparsity on ``sample``, ranking agreement on ``data``'s rankings."""
    on = (compute_latents(seg, sample.images).float() > 0).float().mean((0, 2, 3)).numpy()
    q = np.quantile(on, [0.1, 0.25, 0.5, 0.75, 0.9])
    lines = ["fraction of positions on, per channel (10/25/50/75/90%): " + " / ".join(f"{v:.3f}" for v in q)]
    r = {m: method_ranking(seg, data, m) for m in ("overall", "magnitude", "left", "right")}
    lines.append(f"  Spearman Eq. 2 vs magnitude: {spearman(r['overall'].scores, r['magnitude'].scores):.2f} (Eq. 3 left / "
                 f"right: {spearman(r['left'].scores, r['magnitude'].scores):.2f} / "
                 f"{spearman(r['right'].scores, r['magnitude'].scores):.2f}); "
                 f"Pearson left vs right scores: {np.corrcoef(r['left'].scores, r['right'].scores)[0, 1]:.2f}")
    for f in FRACTIONS:
        n = round(f * seg.channels)
        shared = {pair: len(set(r[pair[0]].order[:n]) & set(r[pair[1]].order[:n]))
                  for pair in (("overall", "magnitude"), ("left", "right"))}
        lines.append(f"  top {n}: Eq. 2 and magnitude share {shared['overall', 'magnitude']}, left and right share "
                     f"{shared['left', 'right']}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = checkpoints_parser("research.seg_channel_stats", __doc__, [DEFAULT_WEIGHTS]).parse_args(argv)
    data, sample = load_data(), load_data(count=64)
    return print_reports(args.checkpoints, lambda seg: channel_stats(seg, data, sample))


if __name__ == "__main__":
    raise SystemExit(main())
