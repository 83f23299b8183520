"""``python -m engine ...``: run any experiment headless (see ``engine.cli``)."""
from engine.cli.main import main

raise SystemExit(main())
