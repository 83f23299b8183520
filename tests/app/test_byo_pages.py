"""Bring your own, through the app: sidebar checkpoint uploads reach every page; Cityscapes folder and a photo in the Segmentation lab."""
from __future__ import annotations

import io
from pathlib import Path

import torch
from page_text import finish_fresh_decode
from PIL import Image
from streamlit.testing.v1 import AppTest
from torchvision.models import mobilenet_v3_small

from engine.data.scenes import SceneConfig, generate
from engine.models.segmentation import build_model
from engine.probe.shipped import shipped_probe_path

from byo_fixtures import bad_uploads, make_cityscapes

ROOT = Path(__file__).resolve().parents[2]


def _pt(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _street_photo() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(generate(SceneConfig("val", 1, 128, 256, 7)).images[0]).resize((400, 300)).save(buf, "JPEG")
    return buf.getvalue()


def test_user_data_photo_and_checkpoints_through_the_app(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_DATA_ROOT", str(tmp_path))  # path boxes read inside the data root only
    make_cityscapes(tmp_path / "cs")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240).run()
    assert not at.exception, at.exception
    at.session_state["seg_source"] = "Cityscapes folder"  # start on the tiny fixture, not the 200 generated scenes
    at.session_state["seg_data_path"] = str(tmp_path / "cs")
    at.switch_page("pages/segmentation_lab.py").run()
    assert not at.exception, at.exception
    assert any("cityscapes, 128×256" in c.value for c in at.caption)
    assert [m.label for m in at.metric] == ["all mIoU", "left mIoU", "center mIoU", "right mIoU"]

    # a street photo: per-region share of changed pixels; none when nothing is zeroed
    at.file_uploader(key="seg_photo_upload").set_value(("street.jpg", _street_photo(), "image/jpeg")).run()
    assert not at.exception, at.exception
    changed = {m.label: m.value for m in at.metric if "pixels changed" in m.label}
    assert list(changed) == [f"{r}: pixels changed" for r in ("all", "left", "center", "right")]
    at.slider(key="seg_n").set_value(0).run()
    assert all(m.value == "0.0%" for m in at.metric if "pixels changed" in m.label)
    at.slider(key="seg_n").set_value(288).run()
    assert float(next(m.value for m in at.metric if m.label == "all: pixels changed").rstrip("%")) > 0
    cut, phrase = bad_uploads()["cut.jpg"]
    at.file_uploader(key="seg_photo_upload").set_value(("cut.jpg", cut, "image/jpeg")).run()
    assert not at.exception and any(phrase in e.value for e in at.error)
    assert len([m for m in at.metric if "mIoU" in m.label]) == 4  # the page keeps working

    # sidebar uploads: a probe, a segmentation state dict (wrapped, prefixed) and a pickle with code
    seg_state = {"model_state": {f"module.{k}": v for k, v in build_model("deeplabv3_mobilenet_v3_small").state_dict().items()}}
    evil = _pt({"weight": torch.ones(1), "hook": print})
    at.file_uploader(key="ckpt_uploads").set_value([
        ("probe.pt", shipped_probe_path("gapnet", "location", 3, "zero").read_bytes(), "application/octet-stream"),
        ("mine.pth", _pt(seg_state), "application/octet-stream"),
        ("evil.pt", evil, "application/octet-stream")]).run()
    assert not at.exception, at.exception
    assert any("evil.pt" in e.value and "pickled code" in e.value for e in at.sidebar.error)
    assert "yours: mine.pth · deeplabv3_mobilenet_v3_small" in at.selectbox(key="seg_model").options
    at.selectbox(key="seg_model").set_value("yours: mine.pth · deeplabv3_mobilenet_v3_small").run()
    assert not at.exception, at.exception
    assert len([m for m in at.metric if "mIoU" in m.label]) == 4

    torch.save(build_model("fcn_resnet50", output_stride=8).state_dict(), tmp_path / "big_fcn.pth")
    at.text_input(key="ckpt_path").set_value(str(tmp_path / "big_fcn.pth")).run()  # above the upload limit: by path
    assert "yours: big_fcn.pth · fcn_resnet50" in at.selectbox(key="seg_model").options

    at.switch_page("pages/grid_probe.py").run()
    assert not at.exception, at.exception
    assert any(o.startswith("probe.pt · GAPNet 3x3 location") for o in at.multiselect(key="gp_nets").options)


def test_an_uploaded_classifier_is_a_network_of_the_channel_code_page(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    state = {"model_state": {f"module.{k}": v for k, v in mobilenet_v3_small(weights=None, num_classes=5).state_dict().items()}}
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240).run()
    at.file_uploader(key="ckpt_uploads").set_value([("mine.pth", _pt(state), "application/octet-stream")]).run()
    assert not at.exception, at.exception
    assert any("mine.pth" in c.value and "classifier: mobilenet_v3_small (5 classes)" in c.value for c in at.sidebar.caption)

    at.switch_page("pages/channel_code.py").run()
    assert not at.exception, at.exception
    name = "yours: mine.pth · mobilenet_v3_small"
    assert name in at.selectbox(key="cc_net").options
    cached = set((tmp_path / "cache").rglob("*.pt"))
    at.slider(key="cc_images").set_value(8)
    at.selectbox(key="cc_net").set_value(name).run()
    assert not at.exception, at.exception
    assert at.metric[0].label == "Channels" and at.metric[0].value == "576"  # its last feature map, pooled
    at.query_params["cc_tab"] = "Decode"
    finish_fresh_decode(at.run().button(key="cc_decode_run").click().run())
    assert not at.exception, at.exception
    (table,) = [d.value for d in at.dataframe if name in set(d.value.get("net", []))]  # the fresh decode table
    assert len(table) == 1 and {"ordered", "permuted", "sorted", "chance"} <= set(table.columns)
    assert set((tmp_path / "cache").rglob("*.pt")) == cached  # nothing derived from the upload is written to disk
