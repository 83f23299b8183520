"""Channel code engine: the map, the decode probe, the shuffle views and the ``decode`` command."""
from __future__ import annotations

import argparse
import json

import pytest
import torch

from engine.channel.code_map import ChannelMap, channel_map
from engine.channel.decode import decode_cells, permute_channels
from engine.channel.nets import UNTRAINED, load_net
from engine.channel.shuffle import Shuffled, relabeled, shuffle_2x2
from engine.cli import channel
from engine.models.probe import build_probe


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path / "cache"))


def test_map_shape_and_order_is_a_permutation():
    model = load_net(UNTRAINED, 3)
    cmap = channel_map(model, images=8)
    channels = model.backbone.out_channels
    assert cmap.response.shape == (9, channels)
    assert torch.equal(cmap.order.sort().values, torch.arange(channels))
    assert cmap.maps().shape == (channels, 3, 3)
    assert ((cmap.selectivity >= 0) & (cmap.selectivity <= 1)).all()
    assert ((cmap.position_share >= 0) & (cmap.position_share <= 1)).all()
    preferred = cmap.preferred[cmap.order]
    assert (preferred[1:] >= preferred[:-1]).all()  # grouped by preferred cell
    assert channel_map(model, images=8, layer="layer2").response.shape == (9, model.backbone.widths[1])


def test_selectivity_and_preferred_on_a_known_response():
    response = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    cmap = ChannelMap(response, torch.zeros(3), grid=2, layer="layer4", images=1)
    assert cmap.preferred.tolist() == [0, 1, 0]
    assert torch.allclose(cmap.selectivity, torch.tensor([1.0, 1.0, 0.0]))
    assert cmap.order.tolist() == [0, 2, 1]
    assert cmap.top_per_cell() == [0, 1, -1, -1]


def test_permute_channels_permutes_each_row_on_its_own():
    x = torch.arange(12.0).view(2, 6).repeat(50, 1)
    y = permute_channels(x, torch.Generator().manual_seed(0))
    assert torch.equal(y.sort(1).values, x.sort(1).values)
    assert len({tuple(r.tolist()) for r in y}) > 10


def test_shipped_object_classifier_gap_decodes_the_cell_unless_permuted():
    """The check: >= 90% on 3x3 from the final GAP of a net trained only for the object, sharply less permuted."""
    model = load_net("object-classifier", 3)  # trained for the object only, never for the cell
    results = {r.readout: r for r in decode_cells(model, train=1500, test=300, seed=123)}  # fresh placements
    chance = results["ordered"].chance
    assert results["ordered"].accuracy >= 90
    assert results["permuted"].accuracy < 2 * chance


def test_shuffled_views_and_exact_relabeling():
    model = load_net(UNTRAINED, 3)
    gapnet = build_probe(model.config.with_(head="gapnet", task="location")).eval()
    x = torch.randn(4, 3, 96, 96)
    perm = torch.randperm(model.backbone.out_channels, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.allclose(Shuffled(model, "none")(x), model(x))
        expected = model.head(model.gap_vector(x)[:, perm])
        assert torch.allclose(Shuffled(model, "fixed", perm)(x), expected, atol=1e-5)
        for net in (model, gapnet):  # a fixed shuffle is only a relabeling of the head's inputs
            assert torch.allclose(Shuffled(relabeled(net, perm), "fixed", perm)(x), net(x), atol=1e-5)
        assert not torch.allclose(Shuffled(gapnet, "fixed", perm)(x), gapnet(x), atol=1e-3)
    with pytest.raises(ValueError):
        Shuffled(model, "sideways")


def test_shuffle_2x2_rows_and_fixed_symmetry():
    in_order = load_net(UNTRAINED, 3)
    rows = shuffle_2x2(in_order, in_order, "fixed", samples=100)
    table = {(r["trained"], r["tested"]): r["accuracy"] for r in rows}
    assert set(table) == {(a, b) for a in ("no shuffle", "shuffle") for b in ("no shuffle", "shuffle")}
    assert table["shuffle", "shuffle"] == pytest.approx(table["no shuffle", "no shuffle"])


def test_decode_command_rows(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    channel.register(parser.add_subparsers(dest="command"))
    out = tmp_path / "decode.json"
    args = parser.parse_args(["decode", "--grids", "3", "--nets", UNTRAINED, "--train", "200", "--test", "100",
                              "--json", str(out)])
    assert args.func(args) == 0
    rows = json.loads(out.read_text())
    assert {(r["net"], r["grid"], r["permuted"]) for r in rows} == {(UNTRAINED, 3, False), (UNTRAINED, 3, True)}
    assert all(0 <= r["accuracy"] <= 100 for r in rows)
    assert "accuracy" in capsys.readouterr().out
