"""The engine's layers: each folder imports only the ones below it, and nothing in the engine imports Streamlit or ui."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "engine"
LABS = ("probe", "channel", "seg", "shift")
# what each layer may import from the engine, besides itself
ALLOWED = {"core": set(), "data": {"core"}, "models": {"core", "data"}, **{lab: {"core", "data", "models"} for lab in LABS}}
ALLOWED["channel"].add("probe")  # the channel code reads the grid probe's networks and evaluation


def imports(path: Path) -> set[str]:
    """Every module a file imports (absolute names), at any depth of the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_below_it(layer):
    for path in (ENGINE / layer).rglob("*.py"):
        for name in imports(path):
            parts = name.split(".")
            if parts[0] == "engine" and len(parts) > 1 and parts[1] != layer:
                assert parts[1] in ALLOWED[layer], f"{path.relative_to(ENGINE)} imports {name}"


def test_the_engine_never_imports_streamlit_or_the_ui():
    for path in ENGINE.rglob("*.py"):
        bad = {n for n in imports(path) if n.split(".")[0] in ("streamlit", "ui")}
        assert not bad, f"{path.relative_to(ENGINE)} imports {bad}"


def test_every_engine_module_lives_in_a_layer():
    loose = {p.name for p in ENGINE.glob("*.py")} - {"__init__.py", "__main__.py"}
    assert not loose and {p.name for p in ENGINE.iterdir() if p.is_dir() and p.name != "__pycache__"} == {*ALLOWED, "cli"}


PAGES = ENGINE.parent / "pages"
PAGE_LAB = {"grid_probe": "probe", "channel_code": "channel", "segmentation_lab": "seg", "shift_lab": "shift", "home": None}


def engine_imports(path: Path) -> set[str]:
    """The engine names a page imports, as ``module`` or ``module.name`` for ``from module import name``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names if alias.name.split(".")[0] == "engine"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "engine":
            one_dot = node.module.count(".") == 1  # ``from engine.seg import lab``: the modules are the names
            names |= {f"{node.module}.{alias.name}" for alias in node.names} if one_dot else {node.module}
    return names


@pytest.mark.parametrize("page", sorted(PAGE_LAB))
def test_a_page_imports_its_lab_the_ui_and_core_types_only(page):
    own = PAGE_LAB[page]
    allowed = {f"engine.{own}.lab"} if own else set()
    for name in engine_imports(PAGES / f"{page}.py"):
        assert name in allowed or name.startswith("engine.core."), f"pages/{page}.py imports {name}"


def test_every_page_is_held_by_the_layout_rule():
    assert {p.stem for p in PAGES.glob("*.py")} == set(PAGE_LAB)
