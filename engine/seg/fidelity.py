"""The paper's Fig. 4 and Fig. 6 claims measured on one model: what the model card, the factor table,
the strict tests and the page report.

- **Fig. 4 top**: zeroing the top N channels of the overall ranking (Eq. 2) against N random channels
  (several draws: mean, min, max) and against the N largest channels (``magnitude``).
- **Fig. 4 bottom**: zeroing the first quarter of the ranking against the last quarter, and each eighth in turn.
- **Fig. 6**: left-half mIoU under the left-specific ranking (Eq. 3 on val-left) against the right-specific
  one, and the mirror image on the right half.
- **Position reliance**: mIoU on the scenes mirrored (labels alike); a model that ignores absolute
  horizontal position loses nothing.

Rankings come from ``rank_on`` (default: the held-out rank split, disjoint from the evaluated images).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from engine.core.progress import Progress, ProgressFn, StopToken, report
from engine.core.stats import mean_interval
from engine.data.scenes import SceneSet
from engine.models.segmentation import SegModel
from engine.seg.ablation import channel_mask, evaluate_latents, random_order, scores, select
from engine.seg.features import LatentCache
from engine.seg.lab import channel_order, moved

FRACTIONS = (0.05, 0.10, 0.25)


@dataclass(frozen=True)
class TopN:
    """mIoU (0-1, all pixels) after zeroing N channels: the ranking's top N, random draws, the largest N."""

    fraction: float
    n: int
    ranked: float
    random: tuple[float, ...]
    magnitude: float

    @property
    def random_mean(self) -> float:
        """Mean over the random draws."""
        return float(np.mean(self.random))

    @property
    def below_every_draw(self) -> bool:
        """The paper's claim at its strictest: the ranked top N hurts more than every random draw."""
        return self.ranked < min(self.random)


@dataclass(frozen=True)
class Regional:
    """Fig. 6 at one N: left- and right-half mIoU (0-1) under the left- and right-specific rankings."""

    fraction: float
    n: int
    left_half: dict[str, float]   # ranking ("left", "right") -> left-half mIoU
    right_half: dict[str, float]  # ranking ("left", "right") -> right-half mIoU

    @property
    def left_gap(self) -> float:
        """How much more the left-ranked channels cost the left half than the right-ranked ones (0-1)."""
        return self.left_half["right"] - self.left_half["left"]

    @property
    def right_gap(self) -> float:
        """How much more the right-ranked channels cost the right half than the left-ranked ones (0-1)."""
        return self.right_half["left"] - self.right_half["right"]


@dataclass
class Fidelity:
    """Every number of the paper's Fig. 4/6 claims for one model on one data set."""

    images: int
    channels: int
    rank_on: str
    baseline: dict[str, float]
    mirrored: dict[str, float]
    top_n: list[TopN] = field(default_factory=list)
    first_quarter: float = float("nan")
    last_quarter: float = float("nan")
    eighths: list[tuple[int, int, float]] = field(default_factory=list)  # (a, b, mIoU with ranks [a, b) zeroed)
    regional: list[Regional] = field(default_factory=list)

    @property
    def mirror_cost(self) -> float:
        """mIoU points (0-1) lost when every scene is mirrored."""
        return self.baseline["all"] - self.mirrored["all"]

    def rows(self) -> list[dict]:
        """Flat rows (mIoU in percent) for JSON/CSV and the model card."""
        pct = lambda v: round(100 * v, 2)  # noqa: E731
        rows = [{"claim": "baseline", **{k: pct(v) for k, v in self.baseline.items()}},
                {"claim": "mirrored", **{k: pct(v) for k, v in self.mirrored.items()}}]
        for t in self.top_n:
            rows.append({"claim": "fig4-top", "n": t.n, "fraction": t.fraction, "ranked": pct(t.ranked),
                         "random_mean": pct(t.random_mean), "random_min": pct(min(t.random)),
                         "random_max": pct(max(t.random)), "magnitude": pct(t.magnitude), "draws": len(t.random)})
        rows.append({"claim": "fig4-bottom", "first_quarter": pct(self.first_quarter), "last_quarter": pct(self.last_quarter)})
        rows += [{"claim": "fig4-range", "a": a, "b": b, "ranked": pct(v)} for a, b, v in self.eighths]
        for r in self.regional:
            rows.append({"claim": "fig6", "n": r.n, "fraction": r.fraction,
                         **{f"left_half_{k}_ranked": pct(v) for k, v in r.left_half.items()},
                         **{f"right_half_{k}_ranked": pct(v) for k, v in r.right_half.items()}})
        return rows

    def claims(self) -> list[dict]:
        """Each of the paper's patterns in one line: what it says, what was measured here, and whether it holds."""
        out = []
        for t in self.top_n:
            _, lo, hi = mean_interval(t.random)
            out.append({"claim": f"Fig. 4: zeroing the top {t.n} ({t.fraction:.0%}) flip-ranked channels hurts more than "
                                 f"every one of {len(t.random)} random draws",
                        "here": f"{100 * t.ranked:.1f} vs random {100 * min(t.random):.1f}-{100 * max(t.random):.1f} "
                                f"(mean {100 * t.random_mean:.1f}, 95% CI {100 * lo:.1f}-{100 * hi:.1f} over {len(t.random)} "
                                f"draws); largest {t.n}: {100 * t.magnitude:.1f}",
                        "holds": t.below_every_draw})
        out.append({"claim": "Fig. 4 bottom: the first quarter of the ranking hurts more than the last quarter",
                    "here": f"{100 * self.first_quarter:.1f} vs {100 * self.last_quarter:.1f}",
                    "holds": self.first_quarter < self.last_quarter})
        for r in self.regional:
            out.append({"claim": f"Fig. 6 at N={r.n}: left-ranked channels hurt the left half more than right-ranked ones, "
                                 "and the mirror image on the right half",
                        "here": f"left half {100 * r.left_half['left']:.1f} vs {100 * r.left_half['right']:.1f}; right half "
                                f"{100 * r.right_half['right']:.1f} vs {100 * r.right_half['left']:.1f}",
                        "holds": r.left_gap > 0 and r.right_gap > 0})
        return out

    @staticmethod
    def from_json(obj: dict) -> "Fidelity":
        """Inverse of :meth:`to_json` (the shipped measurements)."""
        return Fidelity(obj["images"], obj["channels"], obj["rank_on"], obj["baseline"], obj["mirrored"],
                        [TopN(t["fraction"], t["n"], t["ranked"], tuple(t["random"]), t["magnitude"]) for t in obj["top_n"]],
                        obj["first_quarter"], obj["last_quarter"], [tuple(e) for e in obj["eighths"]],
                        [Regional(**r) for r in obj["regional"]])

    def to_json(self) -> dict:
        """Everything, JSON-ready (mIoU 0-1 as computed; ``rows`` holds the percent view)."""
        return {**asdict(self), "mirror_cost": self.mirror_cost, "rows": self.rows()}


def measure(seg: SegModel, data: SceneSet, rank_on: str = "held-out", draws: int = 5,
            fractions: Sequence[float] = FRACTIONS, cache: LatentCache | None = None,
            on_progress: ProgressFn | None = None, stop: StopToken | None = None) -> Fidelity:
    """All of the module docstring's numbers for ``seg`` on ``data`` (random draws seeded 0..draws-1)."""
    cache = cache or LatentCache(use_disk=False)
    lat = cache.get(seg, data, stop=stop)
    c = seg.channels
    orders = {m: channel_order(seg, data, m, rank_on=rank_on, stop=stop) for m in ("overall", "left", "right", "magnitude")}
    randoms = [random_order(c, d) for d in range(draws)]
    total = 2 + len(fractions) * (draws + 4) + 2 + 8
    done = 0

    def run(zeroed: np.ndarray) -> dict[str, float]:
        nonlocal done
        if stop:
            stop.check()
        done += 1
        report(on_progress, Progress(done, total, "measuring"))
        return scores(evaluate_latents(seg, lat, channel_mask(c, zeroed)))

    baseline = run(np.empty(0, np.int64))
    mirrored = scores(evaluate_latents(seg, cache.get(seg, moved(data, "mirror"), stop=stop)))
    done += 1
    result = Fidelity(len(lat.labels), c, rank_on, baseline, mirrored)
    for f in fractions:
        n = round(f * c)
        result.top_n.append(TopN(f, n, run(select(orders["overall"], n))["all"],
                                 tuple(run(select(o, n))["all"] for o in randoms), run(select(orders["magnitude"], n))["all"]))
        left, right = run(select(orders["left"], n)), run(select(orders["right"], n))
        result.regional.append(Regional(f, n, {"left": left["left"], "right": right["left"]},
                                        {"left": left["right"], "right": right["right"]}))
    quarter = c // 4
    result.first_quarter = run(select(orders["overall"], rank_range=(0, quarter)))["all"]
    result.last_quarter = run(select(orders["overall"], rank_range=(c - quarter, c)))["all"]
    bounds = [round(k * c / 8) for k in range(9)]
    result.eighths = [(a, b, run(select(orders["overall"], rank_range=(a, b)))["all"]) for a, b in zip(bounds, bounds[1:])]
    return result
