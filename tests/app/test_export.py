"""Export helpers: one unit per downloaded column, and a link note that stays short."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from ui.export import export_frame


def test_percent_columns_are_scaled_and_named():
    frame = export_frame([{"n": 10, "all": 0.7312, "left": 0.5}], {"all": "all_miou_pct", "left": "left_miou_pct"})
    assert list(frame.columns) == ["n", "all_miou_pct", "left_miou_pct"]
    assert frame.loc[0, "all_miou_pct"] == pytest.approx(73.12) and frame.loc[0, "left_miou_pct"] == 50.0
    assert frame.loc[0, "n"] == 10
    assert list(export_frame([{"a": 1}]).columns) == ["a"]


def _page() -> None:
    import streamlit as st

    from ui.export import note_refused_params, url_snapshot

    link = url_snapshot("x_")
    st.selectbox("Grid", [3, 5], key="x_grid", bind="query-params")
    note_refused_params(link)


def test_a_long_link_value_is_cut_in_the_note():
    at = AppTest.from_function(_page)
    at.query_params["x_grid"] = "9" * 5000
    at.run()
    assert not at.exception
    (note,) = [c.value for c in at.caption if "Some link settings were not used" in c.value]
    assert "… (5,000 characters)" in note and len(note) < 300
