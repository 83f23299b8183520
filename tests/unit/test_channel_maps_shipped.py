"""assets/channel_code/maps.pt: every shipped network's code map, read by the page instead of computed, equals a fresh
computation, and is used only for the very weights, data and settings it was made from."""
from __future__ import annotations

import pytest
import torch

from engine.channel import code_map
from engine.channel.code_map import SHIPPED_IMAGES, channel_map, map_features, map_statistics, shipped_maps
from engine.channel.features import LAYERS, data_key
from engine.channel.lab import subjects
from engine.data.patches import GeneratedShapes
from engine.probe.evaluate import EVAL_SEED


def test_every_shipped_network_at_every_grid_has_a_map_of_every_layer():
    maps = shipped_maps()
    for grid in (3, 5, 7):
        for s in subjects(grid):
            entry = maps[data_key(s.model, GeneratedShapes(s.model.config.patch), SHIPPED_IMAGES, EVAL_SEED)]
            assert set(entry) == set(LAYERS)
            assert entry["layer4"]["response"].shape[0] == grid * grid


@pytest.mark.parametrize("net", ["object-classifier", "probe/location-gapnet", "untrained"])
def test_a_shipped_map_equals_a_fresh_computation(net):
    s = next(s for s in subjects(3) if s.name == net)
    source = GeneratedShapes(s.model.config.patch)
    fresh = map_features(s.model, source, SHIPPED_IMAGES)
    for layer in ("layer3", "layer4"):
        shipped = channel_map(s.model, source, SHIPPED_IMAGES, layer, persist=False)
        response, share = map_statistics(fresh[layer])
        torch.testing.assert_close(shipped.response, response, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(shipped.position_share, share, rtol=1e-4, atol=1e-6)
        assert torch.equal(shipped.preferred, response.argmax(0))


def test_other_settings_are_computed_not_read(monkeypatch):
    s = next(s for s in subjects(3) if s.name == "object-classifier")
    calls = []
    monkeypatch.setattr(code_map, "map_features", lambda *a, **k: calls.append(a) or map_features(*a, **k))
    channel_map(s.model, None, SHIPPED_IMAGES, "layer4", persist=False)
    assert calls == []  # read from maps.pt
    channel_map(s.model, None, 5, "layer4", persist=False)
    assert len(calls) == 1  # 5 images: not shipped
