"""Segmentation lab page, driven headless: moving N changes the metrics; ranking and sweep plots render."""
from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from engine.storage import REPO_ROOT as ROOT


def _plot_titles(at: AppTest) -> list[str]:
    return [json.dumps(json.loads(c.proto.spec).get("layout", {})) for c in at.get("plotly_chart")]


def test_segmentation_lab_page():
    at = AppTest.from_file(str(ROOT / "pages" / "segmentation_lab.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    before = [m.value for m in at.metric]
    assert len(before) == 4
    assert any("Channel rankings" in t for t in _plot_titles(at))  # ranking plot
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [d["name"] for d in spec["data"]] == ["overall", "left", "right"] and spec["data"][0]["y"]

    at.slider(key="seg_n").set_value(288).run()
    assert not at.exception, at.exception
    after = [m.value for m in at.metric]
    assert after != before
    assert all(m.delta.startswith("-") for m in at.metric)  # zeroing half the latent hurts every region

    at.selectbox(key="seg_subset").set_value("val-left")  # a lighter sweep for the 2-core CI machine
    at.multiselect(key="seg_sweep_n").set_value([10])
    at.number_input(key="seg_sweep_draws").set_value(2)
    next(b for b in at.button if b.label == "Run top-N sweep").click().run()
    assert not at.exception, at.exception
    titles = _plot_titles(at)
    assert any("all mIoU" in t for t in titles) and any("Region-specific attack" in t for t in titles)
    sweep = json.loads(next(c for c in at.get("plotly_chart") if "all mIoU" in c.proto.spec).proto.spec)
    names = {d.get("name") for d in sweep["data"]}
    assert {"overall", "left", "right", "random (mean)", "random min-max"} <= names
