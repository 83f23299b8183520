"""Segmentation lab on a data set larger than the live slider holds: the slider works on a stated subset, and a
full-data-set sweep runs as a background job that writes its JSON atomically."""
from __future__ import annotations

import json
import time

from streamlit.testing.v1 import AppTest

from engine.core.storage import REPO_ROOT as ROOT


def test_live_slider_on_a_stated_subset_and_full_sweep_writes_json(monkeypatch, tmp_path):
    monkeypatch.setenv("POSLAB_LIVE_IMAGES", "24")  # the shipped 200 val scenes play a large data set
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "pages" / "segmentation_lab.py"), default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    assert any("Live slider on the first 24 of the 200 val images" in i.value for i in at.info)
    assert any("over the 24 val images" in c.value for c in at.caption)
    at.selectbox(key="seg_subset").set_value("val-left")
    at.multiselect(key="seg_sweep_rankings").set_value(["overall"])
    at.multiselect(key="seg_sweep_n").set_value([10])
    at.number_input(key="seg_sweep_draws").set_value(1)
    at.run()
    left = next(i.value for i in at.info if "Live slider" in i.value)
    total = int(left.split(" of the ")[1].split()[0])
    assert total > 24 and "val-left images" in left
    next(b for b in at.button if b.label == "Run top-N sweep").click().run()
    deadline = time.monotonic() + 240
    while not any("Top-N sweep" in json.loads(c.proto.spec).get("layout", {}).get("title", {}).get("text", "")
                  for c in at.get("plotly_chart")) and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    assert not at.exception, at.exception
    written = list((tmp_path / "seg" / "sweeps").glob("*.json"))
    assert len(written) == 1 and not list((tmp_path / "seg" / "sweeps").glob(".*.tmp"))
    rows = json.loads(written[0].read_text())
    assert {r["ranking"] for r in rows} == {"overall", "random"} and {r["n"] for r in rows} == {0, 51}
    assert any("full-data-set sweep wrote these rows" in c.value for c in at.caption)
    assert any(f"Top-N sweep on {total} images" in c.proto.spec for c in at.get("plotly_chart"))
