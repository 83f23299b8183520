"""Bring your own images: every bad upload gets one clear message, through the engine and through the pages."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from engine.data.images import ImageError, decode_image, image_to_patch

from byo_fixtures import bad_uploads, image_bytes

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"street.png": image_bytes((80, 60), "PNG"), "photo.jpg": image_bytes((64, 48), "JPEG", 1),
        "pic.webp": image_bytes((50, 50), "WEBP", 2)}


@pytest.mark.parametrize("name", list(bad_uploads()))
def test_engine_refuses_each_bad_upload_with_one_message(name):
    data, phrase = bad_uploads()[name]
    with pytest.raises(ImageError) as err:
        decode_image(data, name)
    message = str(err.value)
    assert name in message and phrase in message and message.count(".") <= 3 and "\n" not in message


def test_a_wrong_extension_on_a_real_image_still_decodes():
    img = decode_image(image_bytes((40, 30), "PNG"), "actually_a_png.jpg")
    assert img.size == (40, 30) and img.mode == "RGB"


def test_modes_and_exif_orientation_are_normalised():
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.new("RGB", (40, 20), (255, 0, 0)).save(buf, "JPEG", exif=exif)
    assert decode_image(buf.getvalue()).size == (20, 40)
    for array in (np.arange(64 * 32, dtype=np.uint16).reshape(32, 64) * 30,  # 16-bit grey
                  np.zeros((32, 64, 4), np.uint8), np.zeros((32, 64), np.uint8)):  # RGBA, 8-bit grey
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, "PNG")
        img = decode_image(buf.getvalue())
        assert img.mode == "RGB" and img.size == (64, 32)
    assert image_to_patch(decode_image(GOOD["pic.webp"]), 32).shape == (3, 32, 32)


def test_grid_probe_page_reports_each_bad_upload_and_keeps_working():
    at = AppTest.from_file(str(ROOT / "pages" / "grid_probe.py"), default_timeout=180).run()
    at.radio(key="gp_source").set_value("Upload").run()
    assert not at.exception, at.exception
    files = [(n, d, "application/octet-stream") for n, (d, _) in bad_uploads().items()]
    files += [(n, d, "image/png") for n, d in GOOD.items()]
    at.file_uploader(key="gp_uploads").set_value(files).run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == len(bad_uploads())
    for (name, (_, phrase)), message in zip(bad_uploads().items(), errors):
        assert name in message and phrase in message
    assert at.selectbox(key="gp_upload_pick").options == list(GOOD)
    table = at.dataframe[0].value
    assert list(table["image"]) == list(GOOD) and len(table.columns) == 3  # GAPNet and PermuteNet per image
    assert {m.label for m in at.metric} >= {"GAPNet says", "PermuteNet says"}


def _grid_probe_app(**params) -> AppTest:
    """The Grid probe through app.py (the sidebar with the checkpoint uploader is drawn there), its URL's ``params``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    for key, value in params.items():
        at.query_params[key] = value
    return at.switch_page("pages/grid_probe.py").run()


def test_an_uploaded_probe_comes_back_after_a_reload_and_path_errors_do_not_pile_up(tmp_path, monkeypatch):
    from engine.probe.shipped import shipped_probe_path

    monkeypatch.setenv("POSLAB_DATA_ROOT", str(tmp_path))  # the path box reads inside the data root only
    at = _grid_probe_app()
    data = shipped_probe_path("gapnet", "location", 3, "zero").read_bytes()
    at.file_uploader(key="ckpt_uploads").set_value([("mine.pt", data, "application/octet-stream")]).run()
    assert not at.exception, at.exception
    name = next(o for o in at.multiselect(key="gp_nets").options if o.startswith("mine.pt"))
    kept = at.query_params["ckpt"]
    assert kept  # the URL names the upload

    reloaded = _grid_probe_app(ckpt=kept)  # F5: a new session with the same URL
    assert not reloaded.exception and name in reloaded.multiselect(key="gp_nets").options

    for typed in ("a.pt", "b.pt", "c.pt"):  # none exists
        reloaded.text_input(key="ckpt_path").set_value(str(tmp_path / typed)).run()
    errors = [e.value for e in reloaded.sidebar.error]
    assert len(errors) == 1 and "c.pt" in errors[0]  # the latest path's message only

    linked = _grid_probe_app(gp_nets=["GAPNet", "theirs · GAPNet 3x3"])  # a link naming a network this browser lacks
    assert any("theirs · GAPNet 3x3" in i.value and "does not have" in i.value for i in linked.info)
