"""The shipped segmentation model against the issue's targets, on a small FRESH sample (seed never used in assets)."""
from __future__ import annotations

import numpy as np
import pytest

from engine.seg.ablation import channel_mask, evaluate_latents, random_order, scores, select
from engine.seg.features import LatentCache
from engine.seg.models import load_model
from engine.seg.ranking import partial_ranking
from engine.seg.scenes import SceneConfig, generate, person_subsets


@pytest.fixture(scope="module")
def setup():
    seg = load_model()
    data = generate(SceneConfig("val", 48, 128, 256, seed=7))
    return seg, data, LatentCache(use_disk=False).get(seg, data)


UNMET = "target not met by the shipped model (measured in assets/seg/MODEL_CARD.md); issue 3 stays open"


@pytest.mark.xfail(strict=True, reason=UNMET)
def test_shipped_baseline(setup):
    seg, data, lat = setup
    assert scores(evaluate_latents(seg, lat))["all"] >= 0.75


@pytest.mark.xfail(strict=True, reason=UNMET)
def test_shipped_top_overall_beats_random(setup):
    seg, data, lat = setup
    order = partial_ranking(seg, data.images, "overall").order
    for frac in (0.05, 0.10, 0.25):
        n = round(frac * seg.channels)
        ranked = scores(evaluate_latents(seg, lat, channel_mask(seg.channels, select(order, n))))["all"]
        rand = [scores(evaluate_latents(seg, lat, channel_mask(seg.channels, random_order(seg.channels, d)[:n])))["all"]
                for d in range(5)]
        assert ranked < np.mean(rand), (n, ranked, rand)


def test_shipped_left_channels_hurt_left_half_more(setup):
    seg, data, lat = setup
    sub = person_subsets(data.labels)
    left = partial_ranking(seg, data.images[sub["left"]], "left").order
    right = partial_ranking(seg, data.images[sub["right"]], "right").order
    n = round(0.25 * seg.channels)
    hit = {k: scores(evaluate_latents(seg, lat, channel_mask(seg.channels, select(o, n))))["left"]
           for k, o in (("left", left), ("right", right))}
    assert hit["left"] < hit["right"], hit
