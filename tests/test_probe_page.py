"""AppTest of the Grid probe page."""
import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from engine.probe_assets import PROBE_ASSETS

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "grid_probe.py")


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
    frames = [df.value for df in at.dataframe]
    table = next(f for f in frames if "paper" in f.columns)
    assert len(table) == len(rows) >= 8
    assert set(table["net"]) == {"GAPNet", "PermuteNet"}
