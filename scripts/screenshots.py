"""Screenshots of the running app for the README: the Segmentation lab and the Grid probe, in Debian's chromium.

    python scripts/screenshots.py [--out docs/img]

Starts PosLab on a free localhost port with the browser tests' harness (tests/browser_harness.py), opens each page at
1400x900, waits until its first run has finished, and writes ``screenshot-<page>.png`` (at most 300 KB each). Needs
what ``bash scripts/install.sh --test`` installs (Playwright and chromium).
"""
from __future__ import annotations

import argparse
import io
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the browser harness lives beside the browser tests

from browser_harness import CHROMIUM, CHROMIUM_ARGS, open_page, streamlit_server  # noqa: E402

PAGES = {"seg": ("segmentation-lab", "Segmentation lab"), "grid": ("grid-probe", "Grid probe")}
VIEWPORT = {"width": 1400, "height": 900}
MAX_BYTES = 300_000


def fit(png: bytes, limit: int = MAX_BYTES) -> bytes:
    """The PNG as it is, or downscaled (and palette-quantised) until it is at most ``limit`` bytes."""
    image, scale = Image.open(io.BytesIO(png)).convert("RGB"), 1.0
    while len(png) > limit:
        scale *= 0.85
        size = (round(image.width * scale), round(image.height * scale))
        out = io.BytesIO()
        image.resize(size, Image.LANCZOS).quantize(colors=256).save(out, "PNG", optimize=True)
        png = out.getvalue()
    return png


def take(out: Path, names: list[str]) -> list[Path]:
    """Screenshot each named page into ``out``; the written paths (on a worker thread: Playwright's sync API refuses a
    thread that already runs another sync Playwright session, as the browser tests' do)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_take, out, names).result()


def _take(out: Path, names: list[str]) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with streamlit_server() as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        for name in names:
            path, heading = PAGES[name]
            open_page(page, f"{server.url}/{path}", heading)
            page.wait_for_timeout(1500)  # plotly draws after the run ends
            target = out / f"screenshot-{name}.png"
            target.write_bytes(fit(page.screenshot()))
            written.append(target)
        browser.close()
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("pages", nargs="*", help=f"any of {', '.join(PAGES)} (default: all)")
    args = parser.parse_args(argv)
    if set(args.pages) - set(PAGES):
        parser.error(f"unknown page(s) {sorted(set(args.pages) - set(PAGES))}; known: {', '.join(PAGES)}")
    for path in take(args.out, args.pages or list(PAGES)):
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
