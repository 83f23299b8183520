"""The channel code's lab API: typed results, their rows, the CLI writing exactly what the lab returns, and
uploads kept off the disk."""
from __future__ import annotations

import csv
import json

import pytest

from engine.channel import lab
from engine.channel.nets import UNTRAINED, load_net
from engine.cli.main import main
from engine.core.cache import CACHE
from engine.core.results import Result


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path / "cache"))


def _roundtrip(value):
    return json.loads(json.dumps(value))


def test_a_code_map_is_ready_when_shipped_or_computed_once_for_every_layer():
    def ready(layer: str, images: int, **kwargs) -> bool:
        return lab.code_map(3, layer, images, UNTRAINED, compute=False, **kwargs) is not None

    assert ready("layer4", lab.SHIPPED_IMAGES)  # in assets/channel_code/maps.pt
    assert not ready("layer4", 4)
    lab.code_map(3, "layer4", 4, UNTRAINED)
    assert ready("layer2", 4)  # every layer's features come in one pass
    CACHE.clear()
    assert ready("layer4", 4)  # from the cache folder on disk (now read into memory)
    CACHE.clear()
    assert not ready("layer4", 4, user=lab.UserNet("mine", load_net(UNTRAINED, 3), persist=False))


def test_code_map_rows_per_channel_and_the_command_writes_the_map(tmp_path):
    result = lab.code_map(3, "layer4", 4, UNTRAINED)
    channels = load_net(UNTRAINED, 3).backbone.out_channels
    assert isinstance(result, Result) and result.net == UNTRAINED
    rows = result.rows()
    assert len(rows) == channels and set(rows[0]) == {"channel", "preferred_cell", "selectivity", "position_share"}
    assert len(result.cell_rows()) == 9
    out, table = tmp_path / "map.json", tmp_path / "map.csv"
    CACHE.clear()
    assert main(["channel-map", "--net", UNTRAINED, "--images", "4", "--json", str(out), "--csv", str(table)]) == 0
    assert json.loads(out.read_text()) == _roundtrip(result.document())
    with table.open() as f:
        assert [int(r["channel"]) for r in csv.DictReader(f)] == [r["channel"] for r in rows]


def test_decode_table_rows_and_the_command_writes_them(tmp_path):
    result = lab.decode([3], ["layer4"], [UNTRAINED], train=100, test=50)
    assert isinstance(result, Result) and len(result.decoded) == 1
    rows = result.rows()
    assert [r["readout"] for r in rows] == ["ordered", "permuted", "sorted"]
    assert {"net", "trained_grid", "grid", "width", "permuted", "layer", "accuracy", "chance", "train", "test"} <= set(rows[0])
    out = tmp_path / "decode.json"
    CACHE.clear()
    assert main(["decode", "--grids", "3", "--nets", UNTRAINED, "--train", "100", "--test", "50", "--json", str(out)]) == 0
    assert json.loads(out.read_text()) == _roundtrip(rows)


def test_shuffle_table_and_the_command_writes_it(tmp_path):
    result = lab.shuffle(["location"], ["fixed"], samples=50)
    assert isinstance(result, Result)
    rows = result.rows()
    assert {(r["trained"], r["tested"]) for r in rows} == {(a, b) for a in ("no shuffle", "shuffle") for b in ("no shuffle", "shuffle")}
    out, table = tmp_path / "shuffle.json", tmp_path / "shuffle.csv"
    CACHE.clear()
    assert main(["shuffle", "--tasks", "location", "--kinds", "fixed", "--samples", "50", "--json", str(out),
                 "--csv", str(table)]) == 0
    assert json.loads(out.read_text()) == _roundtrip(rows)
    assert len(table.read_text().splitlines()) == 5


def test_an_upload_is_probed_in_memory_only(tmp_path):
    user = lab.UserNet("yours: mine", load_net(UNTRAINED, 3), persist=False)
    result = lab.decode([3], ["layer4"], user=user, train=60, test=30)
    assert {r["net"] for r in result.rows()} == {"yours: mine"} and lab.code_map(3, images=2, user=user).net == "yours: mine"
    assert not list((tmp_path / "cache").rglob("*.pt"))  # nothing derived from an upload reaches the disk


def test_the_untrained_control_is_built_once_and_leaves_the_random_state_alone():
    import torch

    from engine.channel.nets import UNTRAINED, load_net

    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    first = load_net(UNTRAINED, 3)
    assert torch.equal(torch.rand(1), expected) and load_net(UNTRAINED, 3) is first
