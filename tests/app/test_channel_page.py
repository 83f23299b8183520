"""The Channel code page renders the map, the tables and the permutation demo."""
from __future__ import annotations

import json
import threading
import time

import pytest
import torch
from page_text import before_first_chart, explainer, finish_code_map, finish_fresh_decode, rerun_while_noted, words
from streamlit.testing.v1 import AppTest

from engine.channel import code_map as code_map_module
from engine.channel import lab
from engine.channel.code_map import ChannelMap, map_features
from engine.channel.nets import OBJECT_CLASSIFIER
from engine.core.kept_jobs import KeptJobs
from engine.core.storage import REPO_ROOT
from ui import channel_code as cc

PAGE = str(REPO_ROOT / "pages" / "channel_code.py")


def _tab(at: AppTest, label: str) -> AppTest:
    """``at`` with its tab ``label`` opened, as a click on it does (the tab is bound to the URL); returns ``at``."""
    at.query_params["cc_tab"] = label
    return at


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

    text = " ".join(m.value for m in at.markdown)
    recorded = json.loads((REPO_ROOT / "assets" / "channel_code" / "decode.json").read_text())
    best_sorted = max(r["accuracy"] for r in recorded if r["net"] == "probe/location-gapnet" and r["readout"] == "sorted")
    assert "**Mean selectivity** averages" in text
    found = next(r for r in recorded if (r["net"], r["grid"], r["layer"], r["readout"]) == ("object-classifier", 3, "layer4", "permuted"))
    ordered = next(r for r in recorded if (r["net"], r["grid"], r["layer"], r["readout"]) == ("object-classifier", 3, "layer4", "ordered"))
    assert at.markdown[0].value.startswith("**Found:**")  # the finding in one line, first, from the recorded file
    assert f"{ordered['accuracy']:.1f}% in channel order, {found['accuracy']:.1f}% with" in at.markdown[0].value
    assert words(explainer(at)) <= 150 and words(before_first_chart(at)) <= 150
    assert "docs/findings.md, sections Position decodable from GAP" in explainer(at)
    assert any(m.label == "Cells some channel prefers" and m.value.endswith("of 9") for m in at.metric)
    assert not at.dataframe and len(at.get("plotly_chart")) == 4  # the closed tabs' tables and charts are not drawn
    assert at.number_input(key="cc_image") and at.selectbox(key="cc_cell")  # their controls are, so a link keeps them

    _tab(at, "Decode").run()
    decode = next(d.value for d in at.dataframe if "sorted" in d.value.columns)
    assert (decode["test vectors"] == 500).all() and decode["sorted"].str.contains("–").all()
    assert not at.get("plotly_chart") and at.selectbox(key="cc_channel")  # the code's charts wait, its channel box stays
    text = " ".join(m.value for m in at.markdown)
    assert "Order-blind is not position-blind" in text and f"{best_sorted:.1f}% from layer4" in text  # read, not typed

    _tab(at, "Permute it yourself").run()
    in_order_location = _metric(at, "Location")
    at.button(key="cc_permute").click().run()
    assert not at.exception
    assert "permuted (draw 1)" in " ".join(m.value for m in at.markdown)
    assert _metric(at, "Location") < in_order_location  # position lives in the channel order
    at.button(key="cc_restore").click().run()
    assert _metric(at, "Location") == in_order_location


def test_a_count_of_images_not_shipped_answers_at_once_then_shows_its_map(tmp_path, monkeypatch):
    """The shipped map stands, with a note, while the asked count computes on the worker thread, once for every
    session; then the page shows the asked count's map, equal to the engine's."""
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cc, "MAPS", KeptJobs("channel_code/maps"))
    release, calls = threading.Event(), []

    def held(*args, **kwargs):
        calls.append(args[2])
        release.wait(60)
        return map_features(*args, **kwargs)

    monkeypatch.setattr(code_map_module, "map_features", held)
    pages = [AppTest.from_file(PAGE, default_timeout=120) for _ in range(2)]
    for at in pages:  # two sessions ask for 40 images while the first computes
        at.query_params["cc_images"] = "40"
        at.run()
        assert not at.exception, at.exception
        assert any(i.value.startswith("Averaging 40 images in each of the 9 cells") for i in at.info)
        assert any("(Means over 32 test images in every cell.)" in m.value for m in at.markdown)
        assert at.get("plotly_chart")  # the shipped map is drawn meanwhile
    release.set()
    at = finish_code_map(pages[0])
    assert not at.exception and not any(i.value.startswith("Averaging") for i in at.info)
    assert any("(Means over 40 test images in every cell.)" in m.value for m in at.markdown)
    expected = lab.code_map(3, "layer4", 40, OBJECT_CLASSIFIER).map
    assert at.metric[1].value == f"{expected.selectivity.mean():.2f}" and calls == [40]


def test_channel_code_link_settings_and_the_paper_beside_ours(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path / "cache"))
    at = AppTest.from_file(str(REPO_ROOT / "pages" / "channel_code.py"), default_timeout=120)
    at.query_params["cc_layer"] = "layer3"
    at.query_params["cc_grid"] = "4"  # no such grid: refused with a note, the default applies
    _tab(at, "Shuffle: the 2 x 2").run()
    assert not at.exception
    assert at.selectbox(key="cc_layer").value == "layer3" and at.selectbox(key="cc_grid").value == 3
    assert any("cc_grid=4" in c.value for c in at.caption)
    (beside,) = [d.value for d in at.dataframe if "paper (CIFAR-10, 3x3)" in d.value.columns]
    assert set(beside["paper (CIFAR-10, 3x3)"]) == {100.0, 78.8, 82.6, 73.6} and beside["here (shapes, 3x3)"].notna().all()
    assert set(beside["n here"]) == {1000} and beside["n Table 1"].notna().all()
    note = " ".join(c.value for c in at.caption)
    shuffle = json.loads((REPO_ROOT / "assets" / "channel_code" / "shuffle.json").read_text())
    assert "different samples" in note and any(f"{r['accuracy']:.1f}% here" in note for r in shuffle)  # 2 x 2 beside Table 1


def test_grid_of_grids_says_why_a_panel_is_empty():
    response = torch.zeros(9, 4)
    response[4] = torch.tensor([1.0, 2.0, 3.0, 4.0])  # every channel peaks in the centre cell
    cmap = ChannelMap(response, torch.ones(4), grid=3, layer="layer4", images=1)
    fig = cc.cell_small_multiples(cmap)
    texts = [a.text for a in fig.layout.annotations]
    assert texts.count("no channel<br>peaks here") == 8 and "none" not in texts
    assert len(fig.data) == 1 and cc.cells_preferred(cmap) == 1
    assert "8 of 9 cells are no channel's preferred cell" in cc.multiples_note(cmap)
    assert "one signal repeated across channels" in cc.selectivity_note(cmap)
    assert cc.preferred_figure(cmap).data[0].z[1][1] == 4


def test_exports_name_their_units():
    rows = json.loads((REPO_ROOT / "assets" / "channel_code" / "shuffle.json").read_text())
    exported = cc.shuffle_export(rows)[0]
    assert {"accuracy_pct", "ci95_low_pct", "ci95_high_pct", "chance_pct", "samples"} <= exported.keys()
    assert "accuracy" not in exported and 0 <= exported["ci95_low_pct"] <= exported["accuracy_pct"] <= 100


@pytest.fixture
def fresh_kept(tmp_path, monkeypatch):
    """An empty registry of fresh results and an empty cache folder: what a newly started server finds."""
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path / "cache"))
    _restart(monkeypatch)


def _restart(monkeypatch) -> None:
    """Empty registries of fresh results, as a new server process has."""
    monkeypatch.setattr(cc, "DECODES", KeptJobs("channel_code/fresh/decode"))
    monkeypatch.setattr(cc, "SHUFFLES", KeptJobs("channel_code/fresh/shuffle"))


def _counted(monkeypatch, release: threading.Event | None = None) -> list[str]:
    """The page's fresh decode and 2 x 2 replaced by recorded rows (the decode waiting for ``release``); the calls."""
    calls = []

    def decode(*args):
        calls.append("decode")
        if release is not None:
            release.wait(60)
        return cc.recorded("decode")[:3]

    monkeypatch.setattr(cc, "fresh_decode", decode)
    monkeypatch.setattr(cc, "fresh_shuffle", lambda samples, seed: calls.append("shuffle") or
                        [{**r, "samples": samples} for r in cc.recorded("shuffle")])
    return calls


def _reloaded(at: AppTest, tab: str | None = None) -> AppTest:
    """The page opened anew (a reload, or its link in another browser) with ``at``'s URL, on its tab ``tab``."""
    again = AppTest.from_file(PAGE, default_timeout=120)
    again.query_params.update(at.query_params)
    return (_tab(again, tab) if tab else again).run()


def _finish_fresh_2x2(at: AppTest) -> AppTest:
    return rerun_while_noted(at, "Evaluating the 2 x 2", 60)


def test_a_fresh_decode_and_a_fresh_2x2_stay_through_the_next_click(fresh_kept, monkeypatch):
    """A click elsewhere on the page (the permutation demo) leaves the fresh results shown."""
    calls = _counted(monkeypatch)
    at = _tab(AppTest.from_file(PAGE, default_timeout=120), "Decode").run()
    tables = len(at.dataframe)
    finish_fresh_decode(at.button(key="cc_decode_run").click().run())
    assert len(at.dataframe) == tables + 1  # the fresh decode's table
    _finish_fresh_2x2(_tab(at, "Shuffle: the 2 x 2").run().button(key="cc_shuffle_run").click().run())
    _tab(at, "Permute it yourself").run().button(key="cc_permute").click().run()
    assert not at.exception and calls == ["decode", "shuffle"]
    _tab(at, "Shuffle: the 2 x 2").run()
    assert not any("Recorded with `python -m engine shuffle" in c.value for c in at.caption)  # the fresh 2 x 2, not the recorded
    assert any(c.value.startswith("A fresh sample: seed") for c in at.caption)
    _tab(at, "Decode").run()
    assert len(at.dataframe) == tables + 1 and calls == ["decode", "shuffle"]  # still there after three more clicks


def test_fresh_results_come_back_on_a_reload_a_link_and_a_restarted_server(fresh_kept, monkeypatch):
    """The fresh decode's and 2 x 2's settings, seeds included, are in the URL; the page finds their rows again (on this
    server, then from the cache folder) and computes nothing anew."""
    calls = _counted(monkeypatch)
    at = _tab(AppTest.from_file(PAGE, default_timeout=120), "Decode").run()
    finish_fresh_decode(at.button(key="cc_decode_run").click().run())
    decode_seed = cc.FreshDecode.parse(at.query_params[cc.DECODE_PARAM]).seed
    (decode_caption,) = [c.value for c in at.caption if c.value.startswith("A fresh sample")]
    assert f"seed {decode_seed}," in decode_caption
    assert (f"`python -m engine decode --grids 3 --layers layer4 --nets object-classifier --train 600 --test 300 "
            f"--seed {decode_seed}`") in decode_caption  # the command that remakes it
    shown = {"Decode": [d.value for d in at.dataframe]}
    _finish_fresh_2x2(_tab(at, "Shuffle: the 2 x 2").run().button(key="cc_shuffle_run").click().run())
    assert not at.exception and calls == ["decode", "shuffle"]
    fresh_shuffle = cc.FreshShuffle.parse(at.query_params[cc.SHUFFLE_PARAM])
    assert fresh_shuffle.samples == 200  # the slider's default
    (shuffle_caption,) = [c.value for c in at.caption if c.value.startswith("A fresh sample")]
    assert f"`python -m engine shuffle --samples 200 --seed {fresh_shuffle.seed}`" in shuffle_caption
    assert any(c.value.startswith("Accuracy (%) on 200 test placements") for c in at.caption)  # the fresh 2 x 2's
    shown["Shuffle: the 2 x 2"] = [d.value for d in at.dataframe]
    fresh = ("A fresh sample", "Accuracy (%) on 200")
    captions = {"Decode": [decode_caption], "Shuffle: the 2 x 2": [c.value for c in at.caption if c.value.startswith(fresh)]}

    for restarted in (False, True):
        if restarted:  # a new server process: nothing in memory, the rows in the cache folder
            _restart(monkeypatch)
        for tab, frames in shown.items():
            again = _reloaded(at, tab)
            assert not again.exception and calls == ["decode", "shuffle"]  # not computed again
            assert len(again.dataframe) == len(frames) and all(a.equals(b) for a, b in zip(frames, (d.value for d in again.dataframe)))
            assert [c.value for c in again.caption if c.value.startswith(fresh)] == captions[tab]

    _tab(at, "Decode").run().selectbox(key="cc_layer").set_value("layer3").run()  # other settings: not this fresh decode's table
    assert len(at.dataframe) == len(shown["Decode"]) - 1 and cc.DECODE_PARAM in at.query_params


def test_a_reload_reattaches_to_a_pending_fresh_decode(fresh_kept, monkeypatch):
    """A reload while the fresh decode computes shows its progress, then its table; the decode ran once."""
    monkeypatch.setattr(cc, "FRESH_WAIT", 0.0)
    release = threading.Event()
    calls = _counted(monkeypatch, release)
    at = _tab(AppTest.from_file(PAGE, default_timeout=120), "Decode").run()
    tables = len(at.dataframe)
    at.button(key="cc_decode_run").click().run()
    again = _reloaded(at)
    assert not again.exception and len(again.dataframe) == tables
    assert any(i.value.startswith("Decoding on a fresh sample: 900 new canvases") for i in again.info)
    release.set()
    finish_fresh_decode(again)
    assert not again.exception and len(again.dataframe) == tables + 1 and calls == ["decode"]


def test_a_link_to_a_fresh_result_this_server_does_not_keep_says_so(fresh_kept):
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params[cc.DECODE_PARAM] = cc.FreshDecode("object-classifier", 3, "layer4", 600, 300, 17).param
    at.query_params[cc.SHUFFLE_PARAM] = "200/x"
    _tab(at, "Decode").run()
    assert not at.exception
    assert "The fresh decode this link names (seed 17) is not kept on this server" in " ".join(c.value for c in at.caption)
    notes = " ".join(c.value for c in _tab(at, "Shuffle: the 2 x 2").run().caption)
    assert "This link's fresh 2 x 2 (`fresh_shuffle=200/x`) was not understood" in notes
    for fresh in (cc.FreshDecode("probe/location-gapnet", 7, "layer3", 600, 300, 0), cc.FreshDecode("yours: a/b · c", 5, "stem", 1, 2, 3)):
        assert cc.FreshDecode.parse(fresh.param) == fresh  # a network's name may hold slashes
    assert cc.FreshDecode.parse("3/layer9/600/300/1/untrained") is None and cc.FreshDecode.parse("3/layer4/600/300/-1/x") is None


def test_a_slow_fresh_decode_answers_at_once_shows_its_progress_then_its_table(fresh_kept, monkeypatch):
    """The click returns while the decode computes on the worker thread; its table replaces the note when done."""
    monkeypatch.setattr(cc, "FRESH_WAIT", 0.0)
    monkeypatch.setattr(cc, "fresh_decode", lambda *args: time.sleep(2) or cc.recorded("decode")[:3])
    at = _tab(AppTest.from_file(PAGE, default_timeout=120), "Decode").run()
    tables = len(at.dataframe)
    at.button(key="cc_decode_run").click().run()
    assert not at.exception and len(at.dataframe) == tables
    assert any(i.value.startswith("Decoding on a fresh sample: 900 new canvases") for i in at.info)
    finish_fresh_decode(at)
    assert not at.exception and len(at.dataframe) == tables + 1
    assert not any(i.value.startswith("Decoding on a fresh sample") for i in at.info)
