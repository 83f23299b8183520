"""Start PosLab's server: ``streamlit run app.py`` with Streamlit's legacy pages-folder mode switched off.

A ``pages/`` folder beside the entry point makes Streamlit (1.36+) run a fresh server's first
script run in the old folder-based navigation (``PagesManager.uses_pages_directory``), until some
run calls ``st.navigation``. That first run resolves a deep link such as ``/segmentation-lab``
against the folder's file names, finds nothing and shows "Page not found" over the right page.
app.py always navigates with ``st.navigation``, so the mode is switched off before serving.

    python -m ui.serve [streamlit run options, e.g. --server.port 8502]
"""
from __future__ import annotations

import sys
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli

APP = Path(__file__).resolve().parent.parent / "app.py"


def main(options: list[str]) -> None:
    """Run the Streamlit server on app.py with ``options``, navigation from ``st.navigation`` only."""
    PagesManager.uses_pages_directory = False
    sys.argv = ["streamlit", "run", str(APP), *options]
    cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
