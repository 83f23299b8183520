"""Do a model's flip-sensitive channels come in mirror pairs (channel c on the mirrored image behaving like c' on the
original), as handedness-tuned channels would? The card's question about the flip-trained control's Fig. 4.

    python scripts/seg_mirror_pairs.py [CHECKPOINT ...]   (default: the shipped default and control)

On the default val scenes and their mirror images: for each channel c, the channel c' whose GAP over the original
images correlates best (across images) with c's GAP over the mirrored ones; reported for all channels and for the
top 25% of the Eq. 2 ranking (held-out), with the mean |E GAP_c(mirror) - E GAP_c(original)|.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.models.segmentation import DEFAULT_WEIGHTS, load_model  # noqa: E402
from engine.seg.features import LatentCache  # noqa: E402
from engine.seg.lab import load_data, method_ranking, moved  # noqa: E402


def standardized(gap: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit norm, so a product of two is their correlation across images."""
    centred = gap - gap.mean(0)
    return centred / (np.linalg.norm(centred, axis=0) + 1e-12)


def main() -> int:
    data = load_data()
    paths = sys.argv[1:] or [str(DEFAULT_WEIGHTS), str(DEFAULT_WEIGHTS.with_name("control.pt"))]
    for path in paths:
        seg = load_model(path)
        original, mirrored = (LatentCache().get(seg, d).z.float().mean((2, 3)).numpy() for d in (data, moved(data, "mirror")))
        corr = standardized(mirrored).T @ standardized(original)  # [c, c']: GAP_c(mirror x) vs GAP_c'(x)
        best = corr.argmax(1)
        top = method_ranking(seg, data, "overall").order[: seg.channels // 4]
        print(f"{path}: the best partner is the channel itself for {np.mean(best == np.arange(seg.channels)):.2f} of all "
              f"channels (median self correlation {np.median(np.diag(corr)):.2f})")
        print(f"  top {len(top)} by Eq. 2: itself for {np.mean(best[top] == top):.2f} (median self correlation "
              f"{np.median(np.diag(corr)[top]):.2f}, median best-partner correlation {np.median(corr[top, best[top]]):.2f}); "
              f"mean |E GAP_c(mirror) - E GAP_c(original)| {np.abs(mirrored.mean(0) - original.mean(0))[top].mean():.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
