"""engine.seg.lab: the API the CLI and the page share; typed results whose rows() are what the CLI writes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.cli.main import main
from engine.core.results import Result
from engine.models.segmentation import load_model
from engine.seg import lab
from engine.seg.metrics import REGIONS

ARGS = ["--val-images", "8", "--height", "32", "--rank-on", "val"]


@pytest.fixture(scope="module")
def seg():
    return load_model()


@pytest.fixture(scope="module")
def data():
    return lab.load_data(None, "val", 8, 32)


def _cli(tmp_path, name, *args) -> list | dict:
    out = tmp_path / f"{name}.json"
    assert main([name, *args, *ARGS, "--json", str(out), "--csv", str(tmp_path / f"{name}.csv")]) == 0
    assert (tmp_path / f"{name}.csv").read_text().count("\n") >= 2  # a header and rows
    return json.loads(out.read_text())


def test_results_are_typed_and_their_rows_are_the_cli_json(seg, data, tmp_path):
    ablated = lab.ablate(seg, data, "random", 16, draws=2, rank_on="val")
    assert isinstance(ablated, Result) and [r["ranking"] for r in ablated.rows()] == ["none", "random", "random", "random mean"]
    assert all({"ranking", "draw", "n", *REGIONS} == set(r) for r in ablated.rows())
    assert all(0 <= r[k] <= 1 for r in ablated.rows() for k in REGIONS) and len(ablated.draws[0].zeroed) == 16
    assert _cli(tmp_path, "ablate", "--ranking", "random", "--n", "16", "--draws", "2") == ablated.rows()

    swept = lab.sweep(seg, data, ["overall"], [0, 16], draws=1, rank_on="val")
    assert swept.columns == ["ranking", "draw", "n", *REGIONS] and swept.images == 8
    assert _cli(tmp_path, "sweep", "--rankings", "overall", "--ns", "0,16", "--draws", "1") == swept.rows()
    ranged = lab.sweep(seg, data, ["overall"], step=256, rank_on="val")
    assert [(r["a"], r["b"]) for r in ranged.rows()] == [(0, 256), (256, 512)]
    assert _cli(tmp_path, "sweep", "--rankings", "overall", "--range-step", "256") == ranged.rows()

    moved = lab.position(seg, data, ["mirror"])
    assert [r["scenes"] for r in moved.rows()] == ["as given", "mirror"] and moved.mirror_cost is not None
    assert _cli(tmp_path, "position", "--moves", "mirror") == moved.rows()  # in percent, as it always was
    street = lab.position(seg, lab.load_data(None, "val", 8, 32, layout="street"), ["mirror"])
    assert street.rows() != moved.rows()  # --layout reaches the generated scenes
    assert _cli(tmp_path, "position", "--moves", "mirror", "--layout", "street") == street.rows()

    ranked = lab.rank(seg, data, ["overall", "magnitude"], "val")
    rows = _cli(tmp_path, "rank", "--method", "overall", "magnitude")
    assert rows == ranked.to_json() and len(rows[1]["channels"]) == seg.channels  # every channel
    assert len(ranked.rows()) == 2 * seg.channels and set(ranked.rows()[0]) == {"method", "rank", "channel", "score"}


def test_live_ablation_reads_the_first_images_and_equals_the_whole_subset_on_them(seg, data):
    few = lab.ablate(seg, data, "overall", 32, draws=[0], rank_on="val", images=4)
    assert few.images == 4 and few.draws[0].draw is None
    whole = lab.latents(seg, data, "val")
    part = lab.latents(seg, data, "val", images=4)
    assert np.array_equal(part.z.numpy(), whole.z[:4].numpy())
    assert lab.latents(seg, data, "val", images=4) is part  # held in the engine's cache
    view = lab.view(seg, part, 0, few.draws[0].zeroed)
    assert view["changed"].shape == view["truth"].shape
