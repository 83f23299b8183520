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
