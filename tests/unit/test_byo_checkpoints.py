"""Bring your own checkpoints: wrappers and prefixes, pickled code refused, torchvision layouts, clear mismatches."""
from __future__ import annotations

import io

import pytest
import torch

from engine.core.checkpoints import read_state_dict
from engine.core.storage import CheckpointError, load_torch
from engine.models.segmentation import (
    build_model,
    cached_pretrained,
    detect_arch,
    load_model,
    load_pretrained,
    preset,
    pretrained_file,
)
from engine.models.user_models import load_user_checkpoint
from engine.probe.shipped import shipped_probe_path


def to_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def tiny_state() -> dict[str, torch.Tensor]:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).state_dict()


@pytest.mark.parametrize("wrap", [
    lambda s: s,
    lambda s: {"model_state": s, "epoch": 3},
    lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}, "optimizer": {}},
    lambda s: {"model": {f"_orig_mod.{k}": v for k, v in s.items()}},
    lambda s: {"checkpoint": 1, "net": {f"module.{k}": v for k, v in s.items()}},
])
def test_wrappers_and_prefixes_unwrap_to_the_same_state(wrap):
    state = tiny_state()
    loaded = read_state_dict(to_bytes(wrap(state)))
    assert list(loaded) == list(state) and all(torch.equal(loaded[k], state[k]) for k in state)


def greet() -> str:
    return "this function would run while unpickling"


def test_a_state_dict_with_a_pickled_callable_is_refused(tmp_path):
    blob = to_bytes({"weight": torch.ones(2), "hook": greet})
    with pytest.raises(CheckpointError, match="pickled code"):
        load_torch(blob, "evil.pt")
    (tmp_path / "evil.pt").write_bytes(blob)
    with pytest.raises(CheckpointError, match="refused"):
        load_model(tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="broken.pt is not a PyTorch checkpoint"):
        load_user_checkpoint(b"PK\x03\x04 not really a zip", "broken.pt")


def test_random_deeplabv3_resnet50_saved_and_reloaded_gives_identical_outputs():
    torch.manual_seed(0)
    model = build_model("deeplabv3_resnet50", num_classes=19, output_stride=16).eval()  # the paper's configuration
    blob = to_bytes({"model_state": {f"module.{k}": v for k, v in model.state_dict().items()}})
    seg = load_model(blob, config="paper", name="paper.pt")
    assert (seg.arch, seg.output_stride, seg.rates, seg.num_classes, seg.channels) == ("deeplabv3_resnet50", 16, (6, 12, 18), 19, 2048)
    assert seg.model.backbone.layer3[0].conv2.stride == (2, 2) and seg.model.backbone.layer4[0].conv2.stride == (1, 1)
    assert seg.model.backbone.layer4[1].conv2.dilation == (2, 2)  # output stride 16
    x = torch.randn(1, 3, 32, 64)
    with torch.inference_mode():
        assert torch.equal(model(x)["out"], seg.model(x)["out"])
    again = load_model(blob, config="paper")
    assert again.fingerprint == seg.fingerprint != load_model(blob, config="torchvision").fingerprint  # stride 8 differs


def test_architecture_and_classes_are_read_from_the_weights():
    for arch in ("deeplabv3_mobilenet_v3_large", "fcn_resnet50"):
        output_stride, rates = preset(arch)
        state = build_model(arch, 7, output_stride, rates, aux=True).state_dict()
        seg = load_model(to_bytes({"state_dict": state}))
        assert (seg.arch, seg.num_classes, seg.output_stride) == (arch, 7, output_stride)
        assert seg.model.aux_classifier is not None and len(seg.class_names) == 7
    with pytest.raises(CheckpointError, match="cannot tell the architecture"):
        detect_arch(tiny_state())


def test_a_checkpoint_for_another_architecture_names_missing_unexpected_and_misshaped_keys():
    state = build_model("deeplabv3_mobilenet_v3_small").state_dict()
    with pytest.raises(CheckpointError) as err:
        load_model(to_bytes(state), arch="deeplabv3_mobilenet_v3_large", name="small.pt")
    message = str(err.value)
    assert message.startswith("small.pt does not fit DeepLabV3")
    assert "missing" in message and "mis-shaped" in message and "more)" in message
    fcn = build_model("fcn_resnet50", output_stride=8).state_dict()
    with pytest.raises(CheckpointError) as err:
        load_model(to_bytes(fcn), arch="deeplabv3_resnet50")
    assert "missing: classifier.0.convs.0.0.weight" in str(err.value) and "unexpected: classifier.0.weight" in str(err.value)


def test_torchvision_pretrained_weights_only_from_the_local_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert cached_pretrained() == []
    with pytest.raises(CheckpointError, match="never downloads"):
        load_pretrained("deeplabv3_mobilenet_v3_large")
    path = pretrained_file("deeplabv3_mobilenet_v3_large")
    assert path.parent == tmp_path / "hub" / "checkpoints"
    path.parent.mkdir(parents=True)
    torch.save(build_model("deeplabv3_mobilenet_v3_large", 21, 16, (12, 24, 36), aux=True).state_dict(), path)
    assert cached_pretrained() == ["deeplabv3_mobilenet_v3_large"]
    seg = load_pretrained("deeplabv3_mobilenet_v3_large")
    assert seg.rates == (12, 24, 36) and seg.class_names[:2] == ["__background__", "aeroplane"]


def test_user_checkpoint_dispatch_probe_or_segmentation():
    probe = load_user_checkpoint(shipped_probe_path("gapnet", "location", 3, "zero").read_bytes(), "probe.pt")
    assert probe.kind == "probe" and probe.model.config.grid == 3
    seg = load_user_checkpoint(to_bytes({"state_dict": build_model("deeplabv3_mobilenet_v3_small").state_dict()}), "mine.pth")
    assert seg.kind == "segmentation" and seg.model.arch == "deeplabv3_mobilenet_v3_small"
    with pytest.raises(CheckpointError, match="cannot tell the architecture"):
        load_user_checkpoint(to_bytes(tiny_state()), "other.pt")


def test_user_checkpoint_reads_a_probe_file_once(monkeypatch):
    import engine.models.probe as probe_module
    import engine.models.user_models as user_models

    reads = []
    for module in (user_models, probe_module):
        monkeypatch.setattr(module, "load_torch", lambda source, name: reads.append(name) or load_torch(source, name))
    probe = load_user_checkpoint(shipped_probe_path("gapnet", "location", 3, "zero"))
    assert probe.kind == "probe" and reads == ["location-gapnet-g3-zero.pt"]


def test_cli_takes_a_user_checkpoint_and_refuses_mious_for_other_label_sets(tmp_path, capsys):
    from engine.cli.main import main

    path = tmp_path / "voc.pt"
    torch.save({"state_dict": build_model("deeplabv3_mobilenet_v3_small", num_classes=21).state_dict()}, path)
    assert main(["ablate", "--checkpoint", str(path), "--val-images", "2", "--height", "32"]) == 2
    assert "predicts 21 classes" in capsys.readouterr().err
    assert main(["rank", "--checkpoint", str(path), "--val-images", "2", "--height", "32", "--top", "2"]) == 0
    assert "576 channels" in capsys.readouterr().out
