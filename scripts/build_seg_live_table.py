"""Write assets/seg/live_table.json: the Segmentation lab's live slider (top N, every N from 0 to the latent width) on
the shipped models, the generated val scenes' live images and the held-out rankings, so a move is a lookup.

    python scripts/build_seg_live_table.py [--rankings overall magnitude random] [--models default control]

The shipped table: every ranking of the default model and overall, left, right and random of the control (the
commands are in assets/seg/MODEL_CARD.md), within the assets' 40 MB.

Each (model, ranking) column is computed by the same head runs as the lab's ``ablate`` and written as soon as it is
done; the page uses an entry only on a machine whose arithmetic matches (engine.seg.live.arithmetic).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.core.progress import print_progress  # noqa: E402
from engine.core.storage import ASSETS  # noqa: E402
from engine.models.segmentation import load_model  # noqa: E402
from engine.seg import lab, live  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rankings", nargs="+", default=["overall", "magnitude", "random"], choices=lab.RANKINGS)
    parser.add_argument("--models", nargs="+", default=["default", "control"])
    args = parser.parse_args()
    data = lab.load_data()
    for ranking in args.rankings:
        for role in args.models:
            seg = load_model(str(ASSETS / "seg" / f"{role}.pt"))
            lat = lab.latents(seg, data, "val", lab.live_limit())
            order = lab.channel_order(seg, data, ranking, 0, "held-out")
            start = time.perf_counter()
            label = {"model": role, "ranking": ranking, "draw": 0 if ranking == "random" else None, "subset": "val",
                     "rank_on": "held-out", "images": len(lat)}
            table = live.add_entry(seg, lat, order, label, on_progress=print_progress)
            print(f"\n{role} {ranking}: {seg.channels + 1} positions in {time.perf_counter() - start:.0f} s, "
                  f"{len(table)} entries in {live.TABLE}", flush=True)
