"""Segmentation lab page, driven headless: the shipped default/control panel, the control selectable, the
rank-on choice, N moving the metrics, and a top-N sweep run as a background job."""
from __future__ import annotations

import json
import time

from page_text import before_first_chart, explainer, words
from streamlit.testing.v1 import AppTest

from engine.core.storage import REPO_ROOT as ROOT
from engine.seg.fidelity import Fidelity
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
    assert words(explainer(at)) <= 150 and words(before_first_chart(at)) <= 150, before_first_chart(at)
    assert "docs/findings.md, sections Fig 4 top" in explainer(at)
    _assert_verdicts(_verdicts(at))  # the page opens with what the shipped files say

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


def _verdicts(at: AppTest) -> list[str]:
    """The lab's opening lines: the markdown list before the first chart."""
    opening = next(m.value for m in at.markdown if m.value.startswith("- **Fig. 4"))
    return [line.removeprefix("- ") for line in opening.split("\n")]


def _expected_verdicts() -> list[tuple[str, ...]]:
    """What each verdict must say, read straight from the shipped fidelity files: its claim and the numbers behind it."""
    fids = {role: Fidelity.from_json(json.loads((ROOT / "assets" / "seg" / f"fidelity_{role}.json").read_text()))
            for role in SHIPPED}
    top, ctrl, reg = fids["default"].top_n[-1], fids["control"].top_n[-1], fids["default"].regional[-1]
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    return [(f"**Fig. 4 {'holds' if min(top.random) > top.ranked else 'does not hold'}**", f"top {top.n}", pct(top.ranked),
             pct(sum(top.random) / len(top.random))),
            ("**On the control too**" if min(ctrl.random) > ctrl.ranked else "**Not on the control**", pct(ctrl.ranked),
             pct(sum(ctrl.random) / len(ctrl.random)), "measures size" if top.magnitude <= top.ranked and
             ctrl.magnitude <= ctrl.ranked else "more than size"),
            (f"**Fig. 6 {'holds' if reg.left_gap > 0 and reg.right_gap > 0 else 'does not hold'}**", f"N={reg.n}",
             pct(reg.left_half["left"]), pct(reg.left_half["right"]))]


def _assert_verdicts(lines: list[str]) -> None:
    for line, expected in zip(lines, _expected_verdicts(), strict=True):
        assert line.startswith(expected[0]) and all(part in line for part in expected[1:]), (line, expected)


def test_the_verdicts_follow_the_shipped_numbers():
    from ui.seg import shipped_fidelity, verdicts

    _assert_verdicts(verdicts())
    fids = shipped_fidelity()  # the words follow the numbers: a default whose top N is above a random draw does not hold
    worse = Fidelity(**{**vars(fids["default"]), "top_n": [type(t)(t.fraction, t.n, max(t.random) + 0.01, t.random, t.magnitude)
                                                          for t in fids["default"].top_n]})
    assert verdicts({"default": worse, "control": fids["control"]})[0].startswith("**Fig. 4 does not hold**")


def test_the_home_tour_says_what_the_lab_says():
    from ui.seg import tour_text, verdicts

    lines, text = verdicts(), tour_text()
    assert text == {"fig4": " ".join(lines[:2]), "fig6": lines[2]}
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()  # opens on Home
    assert not at.exception and any(text["fig4"] in m.value for m in at.markdown)
