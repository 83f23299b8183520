"""Bring your own classifier: a torchvision state dict loads, is probed like a ProbeNet, and bad files get clear messages."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import torch
from torchvision import models as tvm

from engine.channel.decode import decode_cells
from engine.channel.features import gap_features
from engine.channel.nets import open_user_net
from engine.cli.main import main
from engine.core.storage import CheckpointError
from engine.data.grid import normalize, place_on_grid
from engine.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from engine.models.segmentation import build_model
from engine.models.user_classifier import UserClassifier, detect_arch
from engine.models.user_models import load_user_checkpoint


def _bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    """A randomly initialised torchvision resnet18 (7 classes), DataParallel-prefixed and wrapped as training scripts save it."""
    torch.manual_seed(0)
    net = tvm.resnet18(weights=None, num_classes=7)
    path = tmp_path_factory.mktemp("byo") / "resnet18.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}, "epoch": 3}, path)
    return path, net.eval()


def test_wrapped_prefixed_resnet18_loads_and_reads_the_same_pixels(resnet18_file):
    path, net = resnet18_file
    loaded = load_user_checkpoint(path)
    assert loaded.kind == "classifier" and loaded.label == "resnet18 (7 classes)"
    model = loaded.model
    assert isinstance(model, UserClassifier) and model.config.grid == 3
    images = torch.rand(2, 3, 96, 96)
    with torch.inference_mode():  # canvases in the app's normalisation reach the net ImageNet-normalised
        assert torch.allclose(model(normalize(images)), net((images - IMAGENET_MEAN) / IMAGENET_STD), atol=1e-4)


def test_gap_vectors_have_each_stage_width_and_decode_runs(resnet18_file):
    model = load_user_checkpoint(resnet18_file[0]).model
    canvases = place_on_grid(torch.rand(3, 3, 32, 32), torch.tensor([0, 4, 8]), 3)
    widths = {layer: f.shape for layer, f in gap_features(model, canvases).items()}
    assert widths == {"stem": (3, 64), "layer1": (3, 64), "layer2": (3, 128), "layer3": (3, 256), "layer4": (3, 512)}
    (result,) = decode_cells(model, train=45, test=18, layer="layer3", readouts=("ordered",), persist=False)
    assert result.layer == "layer3" and 0 <= result.accuracy <= 100 and result.per_cell.shape == (3, 3)
    assert not (Path(os.environ["POSLAB_CACHE"]) / "channel_code").exists()  # persist=False: nothing on disk


def test_mobilenet_is_told_from_its_keys():
    state = tvm.mobilenet_v3_small(weights=None, num_classes=4).state_dict()
    assert detect_arch(state) == "mobilenet_v3_small"
    model = load_user_checkpoint(_bytes({"model": state}), "mine.pt").model
    assert model.label == "mobilenet_v3_small (4 classes)"
    assert gap_features(model, torch.zeros(1, 3, 96, 96))["layer4"].shape == (1, 576)


def test_wrong_architecture_and_unknown_keys_get_clear_messages(resnet18_file):
    path = resnet18_file[0]
    with pytest.raises(CheckpointError, match=r"resnet18.pth does not fit ResNet: 165 missing: .*; 24 mis-shaped: layer1.0.conv1.weight"):
        load_user_checkpoint(path, arch="resnet50")
    with pytest.raises(CheckpointError, match="cannot tell the architecture.*image classifier"):
        load_user_checkpoint(_bytes({"conv.weight": torch.ones(2, 3, 1, 1)}), "odd.pt")
    with pytest.raises(CheckpointError, match="pickled code"):
        load_user_checkpoint(_bytes({"fc.weight": torch.ones(2, 2), "hook": print}), "evil.pt")
    with pytest.raises(CheckpointError, match="is a segmentation model"):
        open_user_net(_bytes(build_model().state_dict()), "seg.pt")


def test_decode_and_channel_map_commands_take_the_checkpoint(resnet18_file, tmp_path, capsys):
    path = str(resnet18_file[0])
    out = tmp_path / "decode.json"
    assert main(["decode", "--checkpoint", path, "--grids", "3", "--train", "45", "--test", "18", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert {(r["net"], r["trained_grid"], r["readout"]) for r in rows} == {
        ("resnet18.pth", None, readout) for readout in ("ordered", "permuted", "sorted")}
    assert main(["channel-map", "--checkpoint", path, "--arch", "resnet18", "--images", "2", "--layer", "layer3",
                 "--json", str(out)]) == 0
    assert len(json.loads(out.read_text())["response"][0]) == 256
    assert main(["decode", "--checkpoint", path, "--arch", "mobilenet_v3_small", "--grids", "3"]) == 2
    assert "does not fit MobileNetV3" in capsys.readouterr().err
