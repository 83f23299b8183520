"""Classifiers made elsewhere on the Channel code page: ONNX and timm uploads, cached weights and the real network are
networks of the picker, and the page's decode equals the engine's on the same weights as a plain torch module."""
from __future__ import annotations

import json
import random
from pathlib import Path

from page_text import finish_code_map, finish_fresh_decode
from streamlit.testing.v1 import AppTest

from engine.channel import lab
from engine.core.cache import CACHE
from engine.core.stats import format_pct
from engine.models.importers import timm_input
from engine.models.user_classifier import InputSpec, UserClassifier
from ui import model_sources

from byo_models import HF_NAME, TIMM_ARCH, fake_hf_cache, save_timm, tiny_onnx, tiny_timm

ROOT = Path(__file__).resolve().parents[2]
SEED = 4321  # the page draws its fresh-decode seed with random.randrange; the test fixes it


def _fresh_decode(at: AppTest, name: str) -> dict[str, str]:
    """Pick ``name``, run the page's fresh decode (its tab opened), and return its read-outs as shown."""
    at.query_params["cc_tab"] = "Decode"
    at.selectbox(key="cc_net").set_value(name).run()
    assert not at.exception, at.exception
    finish_fresh_decode(at.button(key="cc_decode_run").click().run())
    assert not at.exception, at.exception
    (table,) = [d.value for d in at.dataframe if name in set(d.value.get("net", []))]
    return {r: table[r].iloc[0] for r in ("ordered", "permuted")}


def _engine(model, name: str) -> dict[str, str]:
    """The same decode (the page's 600 / 300 vectors, its seed) by the engine on ``model``."""
    rows = lab.decode([3], ["layer4"], user=lab.UserNet(name, model, persist=False), train=600, test=300, seed=SEED).rows()
    return {r["readout"]: format_pct(r["accuracy"], r["test"]) for r in rows if r["readout"] in ("ordered", "permuted")}


def test_onnx_and_timm_uploads_decode_on_the_page_as_plain_modules(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(random, "randrange", lambda *a: SEED)
    onnx_bytes, onnx_net = tiny_onnx()
    timm_net = tiny_timm()
    _, st_file = save_timm(tmp_path, timm_net)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240).run()
    at.file_uploader(key="ckpt_uploads").set_value([("tiny.onnx", onnx_bytes, "application/octet-stream")]).run()
    at.text_input(key="ckpt_timm").set_value(TIMM_ARCH).run()
    at.file_uploader(key="ckpt_uploads").set_value([("tiny.safetensors", st_file.read_bytes(), "application/octet-stream")]).run()
    assert not at.exception, at.exception
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "classifier: tiny (4 classes)" in captions and f"classifier: {TIMM_ARCH} (6 classes)" in captions

    at.switch_page("pages/channel_code.py").run()
    assert not at.exception, at.exception
    at.slider(key="cc_images").set_value(8)
    onnx_name, timm_name = "yours: tiny.onnx · tiny", f"yours: tiny.safetensors · {TIMM_ARCH}"
    assert {onnx_name, timm_name} <= set(at.selectbox(key="cc_net").options)
    assert _fresh_decode(at, onnx_name) == _engine(UserClassifier(onnx_net, "tiny", spec=InputSpec(size=(96, 96))), "a")
    assert any("graph node" in c.value for c in at.caption)  # where the GAP was found, said on the page
    plain = UserClassifier(timm_net, TIMM_ARCH, spec=timm_input(timm_net.pretrained_cfg))
    assert _fresh_decode(at, timm_name) == _engine(plain, "b")


def test_cached_weights_and_the_real_network_are_in_the_picker(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(fake_hf_cache(tmp_path / "hf", tiny_timm())))
    at = AppTest.from_file(str(ROOT / "pages" / "channel_code.py"), default_timeout=240)
    at.query_params["cc_images"] = "8"
    at.run()
    assert not at.exception, at.exception
    options = at.selectbox(key="cc_net").options
    assert "real: PP-OCR text direction (rapidocr-cls)" in options and f"cache:timm/{HF_NAME}" in options
    at.selectbox(key="cc_net").set_value("rapidocr-cls").run()
    assert not at.exception, at.exception
    assert any(i.value.startswith("Averaging 8 images in each of the 9 cells of rapidocr-cls") for i in at.info)
    assert not at.metric and not at.get("plotly_chart")  # no map shipped to stand meanwhile
    finish_code_map(at)
    assert at.metric[0].label == "Channels" and at.metric[0].value == "200"  # PP-OCR's GAP vector
    assert any("PP-OCR's own: height 48, padded to 192" in c.value for c in at.caption)
    recorded = json.loads((ROOT / "assets" / "channel_code" / "real_network.json").read_text())
    order3 = next(r for r in recorded if r["network"] == "rapidocr-cls" and r.get("grid") == 3 and r["readout"] == "order")
    assert any(f"3x3: {order3['accuracy']:.1f}% [" in c.value for c in at.caption)  # read from the file, not typed
    finish_code_map(at.selectbox(key="cc_net").set_value(f"cache:timm/{HF_NAME}").run())
    assert not at.exception, at.exception
    assert at.metric[0].value == str(tiny_timm().num_features)


def test_a_link_keeps_its_channel_while_the_real_networks_map_computes(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path / "cache"))
    CACHE.clear()
    at = AppTest.from_file(str(ROOT / "pages" / "channel_code.py"), default_timeout=240)
    at.query_params.update({"cc_net": model_sources.label("rapidocr-cls"), "cc_channel": "5", "cc_images": "16"})
    at.run()
    assert not at.exception, at.exception
    assert any(i.value.startswith("Averaging 16 images in each of the 9 cells of rapidocr-cls") for i in at.info)
    box = at.selectbox(key="cc_channel")
    assert box.disabled and box.value == 5
    finish_code_map(at)
    box = at.selectbox(key="cc_channel")
    assert not at.exception and not box.disabled and box.value == 5 and len(box.options) == 200


def test_the_page_says_how_to_get_the_real_network(monkeypatch, tmp_path):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path / "cache"))
    import ui.model_sources

    monkeypatch.setattr(ui.model_sources, "rapidocr_available", lambda: False)
    at = AppTest.from_file(str(ROOT / "pages" / "channel_code.py"), default_timeout=240).run()
    assert not at.exception, at.exception
    assert "rapidocr-cls" not in at.selectbox(key="cc_net").options
    assert any("`pip install --no-deps rapidocr-onnxruntime==1.4.4`" in c.value for c in at.caption)
