"""The research modules (python -m research.<name>) run end to end on tiny inputs: a small untrained model, four
32x64 scenes (rankings on the held-out split at the same size)."""
from __future__ import annotations

import pytest
import torch

from engine.models.segmentation import build_model, load_model, wrap
from engine.seg.fidelity import FRACTIONS
from engine.seg.lab import load_data
from engine.seg.train import train_segmentation
from research import seg_channel_stats, seg_fig6_contrast, seg_local_head_probe, seg_mirror_pairs


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return wrap(build_model("deeplabv3_resnet_slim", rates=(1, 2, 3)), "deeplabv3_resnet_slim"), load_data(count=4, height=32)


def test_channel_stats_reports_sparsity_and_overlaps(tiny):
    seg, data = tiny
    lines = seg_channel_stats.channel_stats(seg, data, data)
    assert lines[0].startswith("fraction of positions on") and len(lines) == 2 + len(FRACTIONS)
    assert lines[-1].startswith(f"  top {round(FRACTIONS[-1] * seg.channels)}:")


def test_fig6_contrast_attacks_every_order_and_both_head_paths(tiny):
    seg, data = tiny
    lines = seg_fig6_contrast.contrast(seg, data)
    assert sum("located L" in line and "vs located R" in line for line in lines) == len(FRACTIONS)
    assert sum("path only" in line for line in lines) == 2 * (len(FRACTIONS) - 1)


def test_mirror_pairs_reports_all_and_top_channels(tiny):
    seg, data = tiny
    lines = seg_mirror_pairs.mirror_pairs(seg, data)
    assert len(lines) == 2 and f"top {seg.channels // 4} by Eq. 2" in lines[1]


def test_local_head_probe_trains_the_shallow_local_head_through_the_engine(tmp_path):
    cfg = seg_local_head_probe.local_head_config(shallow=True, train_images=4, val_images=1, height=32, epochs=1,
                                                 batch_size=4)
    seg = train_segmentation(cfg, torch.device("cpu"), checkpoint=tmp_path / "lh.pt")
    again = load_model(tmp_path / "lh.pt")
    assert seg.channels == again.channels == 256 and again.rates == (1,)
    assert [type(c).__name__ for c in again.model.classifier[0].convs] == ["Sequential", "ASPPConv"]  # no pooling branch
    assert seg_local_head_probe.receptive_columns(again.model) < seg_local_head_probe.receptive_columns(build_model())
    with pytest.raises(ValueError, match="only deeplabv3_resnet_slim"):
        build_model("deeplabv3_resnet50", pooling=False)
    lines = seg_fig6_contrast.contrast(again, load_data(count=4, height=32))
    assert not any("path only" in line for line in lines)  # one path without the pooling branch
