"""Research modules: the measurements behind the dated notes in docs/research that are not lab features.

Each runs from the repository root as ``python -m research.<name> ...`` (``--help`` gives its options) and keeps its
measurement in one importable function, smoke-tested on tiny inputs in tests/unit/test_research.py.
"""
