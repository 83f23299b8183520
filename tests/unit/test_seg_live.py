"""engine.seg.live: the live slider's shared results and the shipped table give exactly what a fresh ablation gives."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.core.storage import ASSETS
from engine.models.segmentation import load_model
from engine.seg import lab, live
from engine.seg.metrics import REGIONS


@pytest.fixture(scope="module")
def seg():
    return load_model(str(ASSETS / "seg" / "default.pt"))


@pytest.fixture(scope="module")
def data():
    return lab.load_data()


def _fresh(seg, data, ranking: str, n: int | None, rank_range=None, draw: int = 0) -> lab.AblationResult:
    return lab.ablate(seg, data, ranking, n, rank_range, [draw], "val", "held-out", images=lab.live_limit())


def test_the_shipped_table_equals_a_fresh_ablation(seg, data):
    lat = lab.latents(seg, data, "val", lab.live_limit())
    table = live.shipped_table()
    assert table and all(len(e["scores"]) == seg.channels + 1 for e in table.values())
    for ranking, n in (("overall", 0), ("overall", 51), ("overall", 333), ("overall", 512)):
        made_here = any(e["model"] == "default" and e["ranking"] == ranking and e["arithmetic"] == live.arithmetic(seg)
                        for e in table.values())
        found = live.lookup(seg, lat, lab.channel_order(seg, data, ranking, 0, "held-out"), n)
        assert (found is not None) == made_here  # a table made on this kind of machine must be found, and only then
        if found is not None:
            fresh = _fresh(seg, data, ranking, n)
            assert found == (fresh.baseline, fresh.draws[0].scores)  # to the last bit


def test_every_shipped_column_made_here_equals_a_fresh_ablation(seg, data):
    """Each (model, ranking) column made on this kind of machine, at one position of its own, against a fresh run."""
    lat = lab.latents(seg, data, "val", lab.live_limit())
    entries = [e for e in live.shipped_table().values() if e["model"] == "default" and e["arithmetic"] == live.arithmetic(seg)]
    for i, entry in enumerate(entries):
        n = 1 + 97 * i % seg.channels
        found = live.lookup(seg, lat, lab.channel_order(seg, data, entry["ranking"], entry["draw"] or 0, "held-out"), n)
        fresh = _fresh(seg, data, entry["ranking"], n, draw=entry["draw"] or 0)
        assert found == (fresh.baseline, fresh.draws[0].scores), entry["ranking"]


def test_packed_scores_are_bit_exact():
    rows = [[0.1 + 1e-17 * i, 1 / 3, 2 / 7, float(i)] for i in range(5)]
    assert live.unpack_scores(live.pack_scores(rows)) == rows


def test_a_position_is_computed_once_and_shared(seg, data):
    args = (seg, data, "val", "magnitude", 0, None, (40, 90), "held-out", lab.live_limit())
    first = live.ablate(*args)
    assert live.ablate(*args) is first  # the second session reads the first one's result
    fresh = _fresh(seg, data, "magnitude", None, (40, 90))
    assert first.baseline == fresh.baseline and first.draws[0].scores == fresh.draws[0].scores
    assert list(first.draws[0].zeroed) == list(fresh.draws[0].zeroed) and set(first.draws[0].scores) == set(REGIONS)
    other = live.ablate(seg, data, "val", "random", 3, 20, None, "held-out", lab.live_limit())
    assert other.draws[0].draw == 3 and other.draws[0].scores == _fresh(seg, data, "random", 20, draw=3).draws[0].scores


def test_one_images_picture_is_computed_once_and_shared(seg, data):
    lat = lab.latents(seg, data, "val", lab.live_limit())
    zeroed = lab.channel_order(seg, data, "overall", 0, "held-out")[:51]
    first = lab.live_view(seg, lat, 3, zeroed)
    assert lab.live_view(seg, lat, 3, zeroed.copy()) is first and lab.live_view(seg, lat, 4, zeroed) is not first
    fresh = lab.view(seg, lat, 3, zeroed)
    assert set(first) == set(fresh) and all((first[k] == fresh[k]).all() for k in fresh)


def test_one_images_pictures_are_encoded_once_and_shared(seg, data):
    lat = lab.latents(seg, data, "val-left", lab.live_limit())
    zeroed = lab.channel_order(seg, data, "overall", 0, "held-out")[:51]
    first = live.pictures(seg, data, "val-left", lat, 2, zeroed)
    assert live.pictures(seg, data, "val-left", lat, 2, zeroed.copy()) is first  # another session reads the same bytes
    image, fresh = data.images[lab.subset_index(data, "val-left")[2]], lab.view(seg, lat, 2, zeroed)
    assert first == {"input": live.jpeg(image), "truth": live.jpeg(live.overlay(image, fresh["truth"])),
                     "before": live.jpeg(live.overlay(image, fresh["before"])),
                     "after": live.jpeg(live.overlay(image, fresh["after"])),
                     "changed": live.jpeg(live.changed_map(image, fresh["changed"]))}
    other = live.pictures(seg, data, "val-left", lat, 2, zeroed[:5])
    assert other["after"] != first["after"] and other["input"] == first["input"]


def test_a_move_pays_no_full_garbage_collection():
    """Streamlit's default full gc.collect(2) after every run costs a server holding the models more than a move."""
    config = (Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml").read_text()
    assert re.search(r"^\[runner\][^\[]*^postScriptGC\s*=\s*false\s*$", config, re.MULTILINE)
