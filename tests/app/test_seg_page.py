"""Segmentation lab page, driven headless: the shipped default/control panel, the control selectable, the
rank-on choice, N moving the metrics, and a top-N sweep run as a background job."""
from __future__ import annotations

import json
import time

from streamlit.testing.v1 import AppTest

from engine.core.storage import REPO_ROOT as ROOT
from ui.seg import SHIPPED


def _titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec).get("layout", {}).get("title", {}).get("text", "") for c in at.get("plotly_chart")]


def _chart(at: AppTest, title: str) -> dict:
    return next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if title in c.proto.spec)


def _all_miou(at: AppTest) -> str:
    return next(m.value for m in at.metric if m.label.startswith("all"))


def test_shipped_panel_control_and_rank_on():
    at = AppTest.from_file(str(ROOT / "pages" / "segmentation_lab.py"), default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    titles = _titles(at)
    for role in SHIPPED:  # default and control side by side: Fig. 4 top and bottom, Fig. 6
        for figure in ("Fig. 4 top", "Fig. 4 bottom", "Fig. 6"):
            assert any(figure in t and f"({role})" in t for t in titles), (figure, role, titles)
    fig4 = _chart(at, "Fig. 4 top: top N vs random (default)")
    assert {"random: mean", "largest N (magnitude)", "top N by flip (Eq. 2)"} <= {d["name"] for d in fig4["data"]}
    assert "0 = " in fig4["layout"]["yaxis"]["title"]["text"]  # the axis states its baseline
    assert any("**does not hold**" in m.value or "**holds**" in m.value for m in at.markdown)  # each claim: holds here?

    ranking = _chart(at, "Channel rankings")
    assert [d["name"] for d in ranking["data"]] == ["overall", "left", "right"] and ranking["data"][0]["y"]

    options = at.selectbox(key="seg_model").options
    assert options[:2] == [f"shipped {SHIPPED['default']}", f"shipped {SHIPPED['control']}"]
    default_miou = _all_miou(at)
    at.selectbox(key="seg_model").set_value(options[1]).run()
    assert not at.exception, at.exception
    assert _all_miou(at) != default_miou  # another model, another mIoU

    at.slider(key="seg_n").set_value(384).run()
    assert not at.exception, at.exception
    assert all(m.delta.startswith("-") for m in at.metric if "mIoU" in m.label)  # zeroing 3/4 of the latent hurts
    held_out = _all_miou(at)
    at.radio(key="seg_rank_on").set_value("val").run()
    assert not at.exception, at.exception
    assert _all_miou(at) != held_out  # the in-sample ranking zeroes other channels


def test_top_n_sweep_runs_as_a_job_and_plots_against_random():
    at = AppTest.from_file(str(ROOT / "pages" / "segmentation_lab.py"), default_timeout=300)
    at.run()
    at.selectbox(key="seg_subset").set_value("val-left")  # a lighter sweep for the 2-core CI machine
    at.multiselect(key="seg_sweep_n").set_value([10])
    at.number_input(key="seg_sweep_draws").set_value(2)
    next(b for b in at.button if b.label == "Run top-N sweep").click().run()
    assert not at.exception, at.exception
    deadline = time.monotonic() + 240
    while not any("Top-N sweep" in t for t in _titles(at)) and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    assert not at.exception, at.exception
    sweep = _chart(at, "Top-N sweep on")
    names = {d.get("name") for d in sweep["data"]}
    assert {"overall", "left", "right", "random: mean", "random: min-max of 2 draws"} <= names
    assert any("Region-specific attack" in t for t in _titles(at))
    assert any(c.value.startswith("Paper's pattern") for c in at.caption)


def test_the_home_tour_says_what_the_shipped_default_shows():
    from ui.seg import shipped_fidelity, tour_text

    fid = shipped_fidelity()["default"]
    top, text = fid.top_n[-1], tour_text()["fig4"]
    shown = f"the top {top.n} flip-ranked channels cost {100 * (fid.baseline['all'] - top.ranked):.1f} points"
    assert (shown in text) == top.below_every_draw and (" does not reproduce here" in text) != top.below_every_draw
    assert f"largest channels cost {100 * (fid.baseline['all'] - top.magnitude):.1f}" in text or not top.below_every_draw
    control = shipped_fidelity()["control"].top_n[-1]
    assert f"its top {control.n} flip-ranked channels, {'more' if control.below_every_draw else 'not more'} than every" in text
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()  # opens on Home
    assert not at.exception and any(text in m.value for m in at.markdown)
