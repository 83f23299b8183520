"""The command line's ``--help``: every option explained, every subcommand with examples that parse."""
from __future__ import annotations

import argparse
import importlib
import shlex

import pytest

from engine.cli import COMMAND_MODULES, build_parser

# Not yet on engine.cli.add_command (issue 13): their help is checked, and expected to fail, until they are.
PENDING: set[str] = set()


def commands() -> list[tuple[str, str]]:
    """(module, subcommand) for every subcommand, in registration order."""
    found = []
    for module in COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(sub)
        found += [(module, name) for name in sub.choices]
    return found


def subparser(name: str) -> argparse.ArgumentParser:
    """The full parser's subcommand ``name``."""
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


@pytest.mark.parametrize("module,name", [
    pytest.param(module, name, marks=pytest.mark.xfail(module in PENDING, strict=True, raises=AssertionError,
                                                       reason="not yet on add_command"))
    for module, name in commands()])
def test_every_option_has_help_and_every_example_parses(module, name):
    parser = subparser(name)
    undocumented = [a.option_strings[0] for a in parser._actions if a.option_strings and not a.help]
    assert not undocumented, f"{name}: options without help: {undocumented}"
    text = parser.format_help()
    assert parser.description and "examples:" in text, f"{name}: no description or examples in --help"
    examples = [line.split(f" {name} ", 1)[1] for line in text.split("examples:", 1)[1].splitlines() if f" {name} " in line]
    assert examples, f"{name}: no example lines"
    for example in examples:
        assert build_parser().parse_args([name, *shlex.split(example)]).func is parser.get_default("func")


def test_top_level_help_lists_every_command():
    text = build_parser().format_help()
    assert all(name in text for _, name in commands()) and "examples:" in text
