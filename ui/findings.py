"""Where the findings document lives and how a page points a reader to its sections (the app serves no docs)."""
from __future__ import annotations

FINDINGS_DOC = "docs/findings.md"  # in the repository, beside README.md
SECTIONS = ("Table 1 location", "Table 1 object", "Table 2 shift consistency", "Fig 4 top", "Fig 4 bottom", "Fig 6",
            "Position decodable from GAP", "Mirror cost")


def more(*sections: str) -> str:
    """A pointer to sections of the findings document, e.g. 'More: docs/findings.md, section Fig 6.'"""
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise ValueError(f"no such section in {FINDINGS_DOC}: {unknown}")
    names = sections[0] if len(sections) == 1 else ", ".join(sections[:-1]) + " and " + sections[-1]
    return f"More: {FINDINGS_DOC}, section{'s' if len(sections) > 1 else ''} {names}."
