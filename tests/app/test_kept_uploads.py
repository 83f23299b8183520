"""Every checkpoint that loads survives a reload: a fresh session with the same URL lists it again in the same registry
with the same settings; a link to an upload removed for the size budget says so, and a server path is read again
only where path boxes are on."""
from __future__ import annotations

import io
from pathlib import Path

import torch
from streamlit.testing.v1 import AppTest

from engine.core.storage import fingerprint
from engine.models.segmentation import build_model
from engine.probe.shipped import shipped_probe_path

from byo_models import TIMM_ARCH, save_timm, tiny_onnx, tiny_timm

ROOT = Path(__file__).resolve().parents[2]
GONE = "not on this server any more: upload it again"
BIN = "application/octet-stream"


def _app(**params) -> AppTest:
    """The app's first page in a new session (a reload, or the link opened elsewhere) with the URL's ``params``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def _seg_state() -> bytes:
    buf = io.BytesIO()
    torch.save({"model_state": build_model("deeplabv3_mobilenet_v3_small").state_dict()}, buf)
    return buf.getvalue()


def _upload(at: AppTest, name: str, data: bytes) -> None:
    at.file_uploader(key="ckpt_uploads").set_value([(name, data, BIN)]).run()
    assert not at.exception, at.exception


def _registries(at: AppTest) -> dict[str, dict[str, tuple]]:
    """Each registry's models as what identifies them: architecture, settings and weights."""
    def models(key: str) -> dict:
        return at.session_state[key] if key in at.session_state else {}

    return {
        "probes": {n: (m.config.label, fingerprint(m.state_dict())) for n, m in models("user_probes").items()},
        "classifiers": {n: (m.label, m.spec, fingerprint(m.state_dict())) for n, m in models("user_classifiers").items()},
        "segmentation": {n: (m.arch, m.output_stride, m.rates, m.meta.get("config"), m.meta.get("uploaded"), m.fingerprint)
                         for n, m in models("user_seg_models").items()},
    }


def test_classifiers_and_segmentation_weights_come_back_after_a_reload_with_their_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path / "cache"))
    onnx_bytes, _ = tiny_onnx()
    _, timm_file = save_timm(tmp_path, tiny_timm())
    at = _app()
    _upload(at, "tiny.onnx", onnx_bytes)
    at.text_input(key="ckpt_timm").set_value(TIMM_ARCH).run()
    _upload(at, "tiny.safetensors", timm_file.read_bytes())
    at.text_input(key="ckpt_timm").set_value("").run()
    at.selectbox(key="ckpt_arch").set_value("deeplabv3_mobilenet_v3_small")
    at.selectbox(key="ckpt_config").set_value("paper").run()
    _upload(at, "street.pth", _seg_state())
    kept = _registries(at)
    assert set(kept["classifiers"]) == {"tiny.onnx · tiny", f"tiny.safetensors · {TIMM_ARCH}"}
    assert kept["segmentation"]["street.pth · deeplabv3_mobilenet_v3_small"][3:5] == ("paper", True)
    link = at.query_params["ckpt"]
    assert len(link) == 3  # the URL names each upload
    assert {p.suffix for p in (tmp_path / "cache" / "uploads").iterdir()} == {".onnx", ".safetensors", ".pth", ".json"}
    at.query_params.clear()  # what moving to another page does to the URL
    at.run()
    assert at.query_params["ckpt"] == link  # named again: a reload on any page brings them back

    reloaded = _app(ckpt=link)  # F5: a new session with the same URL, the uploader empty
    assert not reloaded.exception, reloaded.exception
    assert _registries(reloaded) == kept  # the timm architecture and the paper's settings too, not told afresh
    assert not reloaded.sidebar.error
    assert reloaded.query_params["ckpt"] == link


def test_the_budget_removes_the_oldest_upload_and_its_link_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path / "cache"))
    files = {"probe.pt": shipped_probe_path("gapnet", "location", 3, "zero").read_bytes(), "tiny.onnx": tiny_onnx()[0],
             "street.pth": _seg_state()}
    newest_two = sum(len(data) for data in list(files.values())[1:])
    monkeypatch.setenv("POSLAB_UPLOADS_BUDGET_MB", str((newest_two + 1) / 2**20))  # room for the two newest only
    at = _app()
    for name, data in files.items():
        _upload(at, name, data)
    assert len(_registries(at)["probes"]) == 1  # this session keeps what it loaded
    link = at.query_params["ckpt"]
    assert len(link) == 3 and not (tmp_path / "cache" / "uploads" / f"{link[0]}.pt").exists()

    reloaded = _app(ckpt=link)
    assert not reloaded.exception, reloaded.exception
    (error,) = [e.value for e in reloaded.sidebar.error]
    assert GONE in error and link[0][:8] in error
    kept = _registries(reloaded)
    assert not kept["probes"] and list(kept["classifiers"]) == ["tiny.onnx · tiny"]
    assert list(kept["segmentation"]) == ["street.pth · deeplabv3_mobilenet_v3_small"]


def test_a_server_path_is_named_in_the_url_and_read_again_only_where_path_boxes_are_on(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("POSLAB_DATA_ROOT", str(tmp_path))
    (tmp_path / "big_seg.pth").write_bytes(_seg_state())
    at = _app()
    at.selectbox(key="ckpt_config").set_value("paper")
    at.text_input(key="ckpt_path").set_value("big_seg.pth").run()  # relative to the data root
    assert not at.exception, at.exception
    kept = _registries(at)
    assert kept["segmentation"]["big_seg.pth · deeplabv3_mobilenet_v3_small"][3] == "paper"
    link = at.query_params["ckpt_path"]
    assert link == str(tmp_path.resolve() / "big_seg.pth")  # one value: AppTest gives it as a string

    reloaded = _app(ckpt_path=link)
    assert not reloaded.exception and not reloaded.sidebar.error
    assert _registries(reloaded) == kept
    reloaded.query_params.clear()
    assert reloaded.run().query_params["ckpt_path"] == link  # a link's checkpoint stays named too

    monkeypatch.delenv("POSLAB_DATA_ROOT")  # path boxes off (the test server is not bound to localhost)
    refused = _app(ckpt_path=link)
    assert not refused.exception, refused.exception
    (error,) = [e.value for e in refused.sidebar.error]
    assert "big_seg.pth" in error and "takes no folder or file paths" in error
    assert not _registries(refused)["segmentation"]


def test_an_upload_that_cannot_be_kept_still_loads_and_says_a_reload_loses_it(tmp_path, monkeypatch):
    monkeypatch.setenv("POSLAB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "uploads").write_text("a file where the folder goes")  # nothing can be written there
    at = _app()
    _upload(at, "tiny.onnx", tiny_onnx()[0])
    assert list(_registries(at)["classifiers"]) == ["tiny.onnx · tiny"] and "ckpt" not in at.query_params
    (error,) = [e.value for e in at.sidebar.error]
    assert "tiny.onnx is loaded but could not be kept" in error
    linked = _app(ckpt="0" * 32)  # a link while nothing can be kept: said, not a traceback
    assert not linked.exception and GONE in linked.sidebar.error[0].value
