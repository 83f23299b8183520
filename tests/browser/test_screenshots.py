"""The README's screenshots are remade by their committed command: a PNG of the page, within the size limit."""
import importlib.util

from browser_harness import ROOT


def test_the_screenshot_command_remakes_the_grid_probe_screenshot(tmp_path):
    spec = importlib.util.spec_from_file_location("screenshots", ROOT / "scripts" / "screenshots.py")
    screenshots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(screenshots)
    [png] = screenshots.take(tmp_path, ["grid"])
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert 20_000 < len(data) <= screenshots.MAX_BYTES
    for name in screenshots.PAGES:  # the committed ones are within the limit too
        assert (ROOT / "docs" / "img" / f"screenshot-{name}.png").stat().st_size <= screenshots.MAX_BYTES
