"""The findings' figures are built from the shipped files, and the command renders them to PNG in chromium."""
from pathlib import Path

from ui import figures

IMG = Path(figures.claims.ROOT) / "docs" / "img"


def test_every_figure_builds_from_the_shipped_files_and_is_linked_from_the_findings_document():
    findings = (figures.claims.ROOT / figures.claims.FINDINGS).read_text()
    for stem, build in figures.figures().items():
        fig = build()
        assert fig.data, stem
        assert f"(img/{stem}.png)" in findings, stem
        assert (IMG / f"{stem}.png").is_file(), f"docs/img/{stem}.png missing: python -m ui.figures --out docs/img"


def test_the_command_renders_a_png(tmp_path):
    figures.main(["--out", str(tmp_path), "mirror-cost"])
    png = tmp_path / "mirror-cost.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 2_000 < png.stat().st_size < 150_000
