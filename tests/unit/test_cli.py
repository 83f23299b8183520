"""The command line's ``--help``: every option explained, every subcommand with examples that parse."""
from __future__ import annotations

import argparse
import importlib
import shlex

import pytest

from engine.cli.main import COMMAND_MODULES, build_parser


def commands() -> list[str]:
    """Every subcommand, in registration order."""
    sub = argparse.ArgumentParser().add_subparsers()
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return list(sub.choices)


def subparser(name: str) -> argparse.ArgumentParser:
    """The full parser's subcommand ``name``."""
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


@pytest.mark.parametrize("name", commands())
def test_every_option_has_help_and_every_example_parses(name):
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
    assert all(name in text for name in commands()) and "examples:" in text
