"""AppTest of the Grid probe page."""
import json
import time
from pathlib import Path

from page_text import explainer, words
from streamlit.testing.v1 import AppTest

from engine.core.stats import format_rate
from engine.models.probe import ProbeConfig, build_probe
from engine.probe.shipped import PROBE_ASSETS
from ui.probe import table1_notes, table1_view

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "grid_probe.py")


def heatmap_spec(at: AppTest, net: str) -> dict:
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if spec.get("layout", {}).get("title", {}).get("text", "").startswith(net):
            return spec
    raise AssertionError(f"no heatmap for {net}")


def test_page_renders_and_placing_an_image_moves_the_prediction():
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    assert not at.exception
    before = heatmap_spec(at, "GAPNet")["data"][0]["z"]
    canvas = at.get("plotly_chart")[0].proto.spec
    image = json.loads(canvas)["data"][0]
    assert image["source"].startswith("data:image/png;base64,") and "z" not in image  # a PNG, not an array of pixels
    assert len(canvas) < 20_000  # was a third of a MB, parsed by the browser before the page's first chart
    assert {m.label for m in at.metric} >= {"GAPNet says", "PermuteNet says"}
    assert at.metric[0].value == "cell 0"
    at.number_input(key="gp_cell").set_value(4).run()
    assert not at.exception
    after = heatmap_spec(at, "GAPNet")["data"][0]["z"]
    assert after != before
    assert at.metric[0].value == "cell 4"


def test_table1_view_shows_every_shipped_row():
    rows = json.loads((PROBE_ASSETS / "table1.json").read_text())
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    assert not any("paper" in df.value.columns for df in at.dataframe)  # drawn only while its tab is open
    at.query_params["gp_tab"] = "Table 1"
    at.run()
    frames = [df.value for df in at.dataframe]
    table = next(f for f in frames if "paper" in f.columns)
    assert len(table) == len(rows) >= 8
    assert set(table["net"]) == {"GAPNet", "PermuteNet"}
    assert "None" not in table.astype(str).to_string() and not table.isna().any().any()  # "–" where a column does not apply
    assert list(table.columns[:7]) == ["task", "padding", "grid", "net", "accuracy", "paper", "chance"]  # key columns first
    shown = at.dataframe[[f is table for f in frames].index(True)].proto.column_order
    assert "why" not in shown  # the reasons are notes under the table
    assert any(all(n in c.value for n in table1_notes(table1_view(rows))) for c in at.caption)
    text = explainer(at)
    assert words(text) <= 150 and "docs/findings.md, sections Table 1 location" in text
    permuted = next(r for r in rows if (r["task"], r["grid"], r["net"], r["padding"]) == ("location", 3, "PermuteNet", "zero"))
    assert "far less often" in text and f"{permuted['accuracy']:.1f}% at 3×3 (chance 11.1%)" in text  # the table's number


def link_note(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption if "link settings were not used" in c.value)


def test_switching_task_keeps_the_grid():
    """Widget state here; that the URL follows is checked in chromium (AppTest has no browser URL)."""
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    at.select_slider(key="gp_grid").set_value(5).run()
    at.number_input(key="gp_cell").set_value(12).run()
    at.radio(key="gp_task").set_value("object").run()
    assert not at.exception and not at.warning
    assert at.select_slider(key="gp_grid").value == 5  # object networks ship for every grid of Table 1
    assert any("Class right when this image visits each of the 25 cells" in c.value for c in at.caption)
    at.radio(key="gp_task").set_value("location").run()
    assert at.select_slider(key="gp_grid").value == 5
    assert at.metric[0].value == "cell 12" and not link_note(at)


def test_a_grid_without_object_networks_offers_the_shipped_ones():
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["user_probes"] = {"mine 4x4": build_probe(ProbeConfig(grid=4, width=0.125, patch=8))}
    at.run()
    at.select_slider(key="gp_grid").set_value(4).run()
    at.number_input(key="gp_cell").set_value(5).run()
    at.radio(key="gp_task").set_value("object").run()
    assert any("No object model for a 4×4 grid" in w.value for w in at.warning)
    at.button(key="gp_to_shipped").click().run()  # one click to the grid the shipped object networks have
    assert at.select_slider(key="gp_grid").value == 3
    assert at.number_input(key="gp_cell").value == 4  # the cell keeps its spot: (1, 1) of 4x4 is the centre of 3x3
    assert {m.label for m in at.metric} == set() and not link_note(at)
    assert any("Class right when this image visits each of the 9 cells" in c.value for c in at.caption)


def test_only_a_links_own_refused_values_are_noted():
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.query_params = {"gp_grid": "4", "gp_cell": "2"}
    at.run()
    assert "gp_grid=4" in link_note(at) and "gp_cell" not in link_note(at)
    at.number_input(key="gp_cell").set_value(3).run()
    assert not link_note(at)


def test_accuracies_carry_their_sample_size():
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    sweep = next(c.value for c in at.caption if "Cells right" in c.value)
    assert f"GAPNet {format_rate(9, 9, 0)}" in sweep  # every cell right, the interval of 9 placements
    at.query_params["gp_tab"] = "Table 1"
    at.run()
    table = next(df.value for df in at.dataframe if "paper" in df.value.columns)
    assert {"chance"} <= set(table.columns)
    note = " ".join(i.value for i in at.info)
    assert "Object rows: 3×3: PermuteNet" in note and "points apart" in note


def test_home_says_what_poslab_is_in_a_few_lines_from_the_shipped_numbers():
    from ui.probe import home_claims, shipped_table1

    rows = shipped_table1()
    claims = home_claims(rows)
    obj = {r["net"]: r["accuracy"] for r in rows if r["task"] == "object" and r["grid"] == 3 and r["padding"] == "zero"}
    assert f"{obj['PermuteNet']:.1f}%" in claims["shuffle"] and f"{obj['GAPNet']:.1f}%" in claims["shuffle"]
    close = [dict(r, accuracy=r["accuracy"] - 5) if (r["task"], r["net"]) == ("object", "GAPNet") else r for r in rows]
    close = [dict(r, accuracy=obj["GAPNet"] - 10) if (r["task"], r["net"]) == ("object", "PermuteNet") else r for r in close]
    if obj["GAPNet"] - obj["PermuteNet"] > 15:
        assert "unlike in the paper" in claims["shuffle"]
    assert "largely survives it" in home_claims(close)["shuffle"]  # the words follow the numbers
    at = AppTest.from_file(str(Path(PAGE).parents[1] / "app.py"), default_timeout=60).run()  # opens on Home
    intro = at.markdown[0].value
    assert claims["shuffle"] in intro and "guided tour" in intro and "arXiv 2108.07884" in intro
    assert words(intro) <= 100 and sum(w[0].isdigit() for w in intro.split()) <= 10  # a few lines, a few numbers


def test_training_chart_has_round_accuracy_ticks_and_no_legend_over_it():
    from ui.probe import curve_figure

    fig = curve_figure([{"step": s, "loss": 2.3 / s, "accuracy": min(100.0, 11.9 * s)} for s in range(10, 110, 10)], 480)
    assert list(fig.layout.yaxis2.tickvals) == [0, 25, 50, 75, 100] and tuple(fig.layout.yaxis2.range) == (0, 100)
    assert not any(trace.showlegend for trace in fig.data)
    assert "480 training images" in fig.layout.xaxis2.title.text


def test_a_finished_training_becomes_a_selectable_network_once_and_a_reload_finds_it_again():
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    next(n for n in at.number_input if n.label == "Steps (batch 48)").set_value(10)
    next(b for b in at.button if b.label == "Train").click().run()
    deadline = time.monotonic() + 120
    while not any(" · run " in o for o in at.multiselect(key="gp_nets").options) and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    assert not at.exception, at.exception
    mine = [o for o in at.multiselect(key="gp_nets").options if " · run " in o]
    assert len(mine) == 1
    assert any(mine[0] in s.value and "selectable above" in s.value for s in at.success)  # stays, not a flash
    at.run()
    assert [o for o in at.multiselect(key="gp_nets").options if " · run " in o] == mine  # listed once, not twice
    run_id = at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"]

    reloaded = AppTest.from_file(PAGE, default_timeout=180)  # a new browser session with the run's link
    reloaded.query_params["run"] = run_id
    reloaded.run()
    assert mine[0] in reloaded.multiselect(key="gp_nets").options and not reloaded.exception
    assert any(b.label == "Checkpoint (.pt)" for b in reloaded.get("download_button"))

    gone = AppTest.from_file(PAGE, default_timeout=180)
    gone.query_params["run"] = "x" * 22
    gone.run()
    assert any("No run" in w.value for w in gone.warning)


def test_table1_view_marks_cells_far_from_the_paper_with_a_reason():
    rows = [{"task": "object", "padding": "zero", "grid": 3, "net": "PermuteNet", "accuracy": 50.0, "samples": 2000,
             "paper": 73.6, "sum_only": 49.0, "command": "x"},
            {"task": "location", "padding": "zero", "grid": 3, "net": "GAPNet", "accuracy": 100.0, "samples": 2000,
             "paper": 100.0, "command": "x"}]
    far, close = table1_view(rows)
    assert far["differs"] == "◆1" and "channel sum" in far["why"] and far["vs paper"] == "-23.6" and far["sum only"] == "49.0"
    assert not close["differs"] and not close["why"] and "command" not in close and close["sum only"] == "–"
    assert table1_notes([far, close]) == [f"◆1 object PermuteNet, below the paper: {far['why']}."]


def test_the_object_curves_draw_their_shared_leg_once_and_name_every_line():
    from ui.probe import long_run_figure

    leg = [{"step": s, "accuracy": 40.0 + s / 1000, "grid": 3} for s in (1000, 2000)]
    curves = {3: leg, 5: leg + [{"step": 2500, "accuracy": 45.0, "grid": 5}], 7: leg + [{"step": 2500, "accuracy": 44.0, "grid": 7}]}
    fig = long_run_figure(curves, {3: 99.75, 5: 99.9, 7: 99.9})
    names = [t.name for t in fig.data]
    assert names == ["PermuteNet on 3×3 (every run's first leg)", "PermuteNet, continued on 5×5", "PermuteNet, continued on 7×7",
                     "GAPNet 3×3: 99.8% (Table 1)", "GAPNet 5×5: 99.9% (Table 1)", "GAPNet 7×7: 99.9% (Table 1)"]
    assert len({t.line.dash for t in fig.data[:3]}) == 3 and not fig.layout.annotations[1:]  # no labels on the lines
