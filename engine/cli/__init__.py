"""Command-line interface: ``python -m engine ...`` (or ``poslab ...``); one module per lab (see ``main``)."""
from engine.cli.main import main

__all__ = ["main"]
