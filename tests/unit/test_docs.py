"""The project's text: no words about how it was built, README and docs links that resolve, cards in one template."""
from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXT_SUFFIXES = {".py", ".md", ".sh", ".toml", ".txt", ".cff"}
MAX_BYTES = 8 * 1024
CARD_SECTIONS = ["Model details", "Intended use", "Training data", "Recipe", "Evaluation data",
                 "Results beside the paper", "Limitations", "History"]

# Words about the development process rather than the project. "--sessions 4" (a benchmark flag) is not one.
PROCESS_WORDS = re.compile("|".join([
    r"(?<![-\w])sessions? \d", r"\bsession-\d", r"\bissues? #?\d", r"\bissue's\b", r"\bissues? asks?\b",
]), re.IGNORECASE)
# In prose "this session" is a development session; in Python code it is a Streamlit browser session.
PROSE_ONLY = re.compile(r"\bthis session\b", re.IGNORECASE)
# More such phrases, named by the first 16 hex digits of the SHA-1 of the lowercase phrase (digits written "#") so that
# this file does not spell them: a project tracker's word for a work item (singular, plural), an item left unfinished, a
# missed bar stated as a verdict, and a numbered stretch of work.
HASHED_PHRASES = {"346d34a0f0d96dda", "d370d9cd5625a534", "d684d1ef6712e47b", "eaba45d08abc11a4", "86154b331a5ab525"}


def hashed_phrase(line: str) -> bool:
    """Whether ``line`` holds a phrase of one to three space-separated words (trailing punctuation dropped, numbers as
    "#") whose hash is in :data:`HASHED_PHRASES`."""
    words = [re.sub(r"\d+", "#", w).rstrip(".,;:!?)'\"") for w in line.lower().split()]
    return any(hashlib.sha1(" ".join(words[i:i + n]).encode()).hexdigest()[:16] in HASHED_PHRASES
               for n in (1, 2, 3) for i in range(len(words) - n + 1))


LINK = re.compile(r"(!?)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def tracked_text_files() -> list[Path]:
    """Every tracked file with a text suffix (this test's own patterns excluded)."""
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / n for n in names if Path(n).suffix in TEXT_SUFFIXES and ROOT / n != Path(__file__).resolve()]


def test_no_development_process_words():
    files = tracked_text_files()
    assert len(files) > 50, "git ls-files found too few files to check"
    hits = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if PROCESS_WORDS.search(line) or hashed_phrase(line) or (path.suffix != ".py" and PROSE_ONLY.search(line)):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not hits, "development-process words (name the hardware, a date or a commit instead):\n" + "\n".join(hits)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation removed, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 suffixes for repeated headings."""
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            out.add(base if base not in seen else f"{base}-{seen[base]}")
            seen[base] = seen.get(base, 0) + 1
    return out


def links(path: Path) -> list[tuple[bool, str]]:
    """(is an image, target) of every relative link in a Markdown file, outside code."""
    text = CODE_SPAN.sub("", FENCE.sub("", path.read_text(encoding="utf-8")))
    return [(bang == "!", target) for bang, target in LINK.findall(text)
            if not re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)]


def broken(path: Path, target: str) -> str | None:
    """Why a relative link from ``path`` does not resolve, or None."""
    file_part, _, anchor = target.partition("#")
    dest = (path.parent / file_part).resolve() if file_part else path
    if not dest.exists():
        return f"{path.relative_to(ROOT)}: {target}: no such file"
    if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
        return f"{path.relative_to(ROOT)}: {target}: no heading with that anchor in {dest.relative_to(ROOT)}"
    return None


def markdown_docs() -> list[Path]:
    """README, docs/, the benchmarks' README and the model cards."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), ROOT / "bench" / "README.md",
            *sorted((ROOT / "assets").glob("*/MODEL_CARD.md"))]


def test_readme_and_docs_links_resolve():
    docs = markdown_docs()
    assert (ROOT / "docs" / "findings.md") in docs
    problems = [why for path in docs for image, target in links(path)
                if not (image and path.name == "README.md" and path.parent == ROOT)
                and (why := broken(path, target))]
    assert not problems, "\n".join(problems)


def test_readme_images_exist():
    readme = ROOT / "README.md"
    images = [target for image, target in links(readme) if image]
    assert len(images) >= 2, images
    problems = [why for target in images if (why := broken(readme, target))]
    assert not problems, "\n".join(problems)


def test_readme_findings_block_and_size():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.encode()) <= MAX_BYTES, f"README.md is {len(text.encode())} bytes (at most {MAX_BYTES})"
    begin, end = text.find("<!-- findings:begin -->"), text.find("<!-- findings:end -->")
    assert text.count("<!-- findings:begin -->") == 1 and 0 <= begin < end, "findings markers missing or out of order"
    assert "https://arxiv.org/abs/2108.07884" in text


def test_model_cards_follow_the_template():
    cards = sorted((ROOT / "assets").glob("*/MODEL_CARD.md"))
    assert len(cards) == 4, cards
    for card in cards:
        text = card.read_text(encoding="utf-8")
        assert len(text.encode()) <= MAX_BYTES, f"{card.relative_to(ROOT)} is {len(text.encode())} bytes"
        sections = [m.group(1).strip() for m in re.finditer(r"^## (.+)$", FENCE.sub("", text), re.MULTILINE)]
        assert sections == CARD_SECTIONS, f"{card.relative_to(ROOT)}: {sections}"


def test_a_hashed_phrase_is_found_in_any_case_and_with_any_number():
    assert hashed_phrase("As ROUND 12 showed") and hashed_phrase("see the " + "tic" + "kets")
    assert not hashed_phrase("a round trip") and not hashed_phrase("the targets were met")
