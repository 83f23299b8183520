"""The Channel code page renders the map, the tables and the permutation demo."""
from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from engine.storage import REPO_ROOT


def _metric(at: AppTest, label_start: str) -> int:
    value = next(m.value for m in at.metric if m.label.startswith(label_start))
    return int(value.split("/")[0])


def test_channel_code_page(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path / "cache"))
    at = AppTest.from_file(str(REPO_ROOT / "pages" / "channel_code.py"), default_timeout=120)
    at.run()
    assert not at.exception

    heatmap = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    channels = int(at.metric[0].value)
    assert len(heatmap["z"]) == 9 and len(heatmap["z"][0]) == channels
    assert sorted(heatmap["customdata"][0]) == list(range(channels))  # columns are a permutation of the channels

    in_order_location = _metric(at, "Location")
    at.button(key="cc_permute").click().run()
    assert not at.exception
    assert "permuted (draw 1)" in " ".join(m.value for m in at.markdown)
    assert _metric(at, "Location") < in_order_location  # position lives in the channel order
    at.button(key="cc_restore").click().run()
    assert _metric(at, "Location") == in_order_location


def test_channel_code_link_settings_and_the_paper_beside_ours(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path / "cache"))
    at = AppTest.from_file(str(REPO_ROOT / "pages" / "channel_code.py"), default_timeout=120)
    at.query_params["cc_layer"] = "layer3"
    at.query_params["cc_grid"] = "4"  # no such grid: refused with a note, the default applies
    at.run()
    assert not at.exception
    assert at.selectbox(key="cc_layer").value == "layer3" and at.selectbox(key="cc_grid").value == 3
    assert any("cc_grid=4" in c.value for c in at.caption)
    (beside,) = [d.value for d in at.dataframe if "paper (CIFAR-10, 3x3)" in d.value.columns]
    assert set(beside["paper (CIFAR-10, 3x3)"]) == {100.0, 78.8, 82.6, 73.6} and beside["here (shapes, 3x3)"].notna().all()
