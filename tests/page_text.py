"""The words a page shows as a reader meets them, from an AppTest run: its "What am I looking at?" expander, and the
text shown before its first chart or table (in page order, the expander's contents aside: they open on a click)."""
from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

EXPLAINER = "What am I looking at?"
TEXT = ("markdown", "caption", "title", "header", "subheader", "alert")  # element types that carry text to read
FIGURES = ("plotly_chart", "dataframe", "table", "imgs")


def _text(node) -> str:
    kind = getattr(node, "type", "")
    return str(getattr(node, "value", "")) if kind in TEXT or kind in ("info", "warning", "success", "error") else ""


def words(text: str) -> int:
    """Words as a reader counts them: whitespace-separated tokens with a letter or digit (markdown marks aside)."""
    return len([w for w in text.split() if any(c.isalnum() for c in w)])


def explainer(at: AppTest) -> str:
    """The text inside the page's "What am I looking at?" expander."""
    (box,) = [e for e in at.expander if e.label == EXPLAINER]
    return " ".join(filter(None, (_text(node) for node in box)))


def before_first_chart(at: AppTest) -> str:
    """The text from the top of the page to its first chart or table, the sidebar and closed expanders left out."""
    out: list[str] = []

    def walk(node) -> bool:  # False once the first figure is reached
        if getattr(node, "type", "") in FIGURES:
            return False
        if getattr(node, "type", "") == "expander" and not node.proto.expanded:
            out.append(getattr(node, "label", ""))
            return True
        out.append(_text(node))
        return all(walk(child) for child in getattr(node, "children", {}).values())

    walk(at.main)
    return " ".join(filter(None, out))


def rerun_while_noted(at: AppTest, note: str, timeout: float = 120) -> AppTest:
    """Rerun the page while an info note starting with ``note`` shows (work on the server's worker thread)."""
    deadline = time.monotonic() + timeout
    while any(i.value.startswith(note) for i in at.info) and time.monotonic() < deadline:
        time.sleep(0.2)
        at.run()
    return at


def finish_code_map(at: AppTest) -> AppTest:
    """Rerun the Channel code page until the code map it computes on the server's worker thread has shown."""
    return rerun_while_noted(at, "Averaging")


def finish_fresh_decode(at: AppTest, timeout: float = 120) -> AppTest:
    """Rerun the Channel code page until its fresh decode (computing on the server's worker thread) has shown."""
    return rerun_while_noted(at, "Decoding on a fresh sample", timeout)
