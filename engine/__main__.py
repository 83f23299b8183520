"""``python -m engine ...``: run any experiment headless (see ``engine.cli``)."""
from engine.cli import main

raise SystemExit(main())
