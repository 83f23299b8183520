"""Every control of every page, each changed once on a fresh cache folder: seconds until the run that the change
starts has finished, on the server alone (Streamlit's AppTest, no browser), so a control whose run computes shows.

    python bench/bench_controls.py [--pages grid_probe channel_code] [--options 3] [--cache DIR] [--json out.json]

Each page is first opened with its defaults. Then, for every keyed selectbox, radio, select slider, slider, number
input and checkbox of that first view, a new session of the page changes that one control (up to ``--options`` of
a box's other options, a slider to its far end, a number input one step up, a checkbox flipped) and runs. The
sessions share only the process's cache, as a class's sessions share the server's, so a move finds what an earlier
move computed. Buttons are left out (they start jobs, which answer with their progress). Lines over the 2 s bar are
marked; a browser adds its drawing on top (``bench_cold.py`` measures that). ``--cache DIR`` uses that cache folder
instead of a fresh one: run it twice on one folder to time a server restarted on the folder an earlier one filled.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("grid_probe", "channel_code", "segmentation_lab", "shift_lab")
KINDS = ("selectbox", "radio", "select_slider", "slider", "number_input", "checkbox")
BAR = 2.0
TIMEOUT = 600


def opened(page: str) -> AppTest:
    """A new session of ``page`` after its first run."""
    return AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=TIMEOUT).run()


def widget(at: AppTest, kind: str, key: str):
    return next(w for w in getattr(at, kind) if w.key == key)


def moves(w, kind: str, options: int) -> Iterator[tuple[str, object]]:
    """What each change of control ``w`` sets: a label and the value for :func:`apply`."""
    if kind in ("selectbox", "radio"):
        others = [i for i in range(len(w.options)) if i != w.index][:options]
        yield from ((w.options[i], i) for i in others)
    elif kind == "select_slider":
        current = str(w.format_func(w.value))
        yield from ((o, o) for o in [o for o in w.options if o != current][:options])
    elif kind == "slider":
        yield str(w.max), w.max
    elif kind == "number_input":
        yield "+1 step", None
    else:
        yield str(not w.value), not w.value


def apply(w, kind: str, value: object) -> bool:
    """Set control ``w`` as the move says; ``False`` where the value behind the option's label is not found (AppTest
    sets a box's value, not its shown label)."""
    if kind in ("selectbox", "radio", "select_slider"):
        label = w.options[value] if kind != "select_slider" else value
        found = [v for v in _candidates(label, w.format_func, len(w.options)) if _shows(w.format_func, v, label)]
        if not found:
            return False
        w.set_value(found[0])
    elif kind == "number_input":
        w.increment()
    else:
        w.set_value(value)
    return True


def _shows(format_func, value: object, label: str) -> bool:
    """Whether ``format_func`` shows ``value`` as ``label`` (a value of the wrong type for it does not)."""
    try:
        return str(format_func(value)) == label
    except (TypeError, KeyError, IndexError, ValueError, AttributeError):
        return False


def _candidates(label: str, format_func, count: int) -> list:
    """Values a shown label may stand for: itself, the number it reads as, an index or number below ``count`` (the
    box's options), or a key of a dict its format function reads (``LABELS.get``, or a function that looks a name up
    in a module's dict)."""
    owner = getattr(format_func, "__self__", None)
    code, names = getattr(format_func, "__code__", None), getattr(format_func, "__globals__", {})
    tables = [owner] if isinstance(owner, dict) else [names.get(n) for n in (code.co_names if code else ())]
    out: list = [label, *(k for table in tables if isinstance(table, dict) for k in table), *range(count)]
    for cast in (int, float):
        try:
            out.append(cast(label))
        except ValueError:
            pass
    return out


def controls(at: AppTest) -> list[tuple[str, str]]:
    """The keyed, enabled controls of a page's first view, by kind and key."""
    return [(kind, w.key) for kind in KINDS for w in getattr(at, kind) if w.key and not w.disabled]


def measure(page: str, options: int) -> dict[str, float]:
    """Seconds of the first run and of each control's change on ``page``."""
    start = time.perf_counter()
    first = opened(page)
    out = {f"{page}: first run": time.perf_counter() - start}
    for kind, key in controls(first):
        for label, value in moves(widget(first, kind, key), kind, options):
            at = opened(page)
            name = f"{page}: {key} -> {label}"
            if not apply(widget(at, kind, key), kind, value):
                print(f"{name}: left out (AppTest cannot pick this option by its label)", flush=True)
                continue
            start = time.perf_counter()
            at.run()
            out[name] = time.perf_counter() - start
            if at.exception:
                raise RuntimeError(f"{name}: {at.exception[0].message}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", nargs="+", default=PAGES, choices=PAGES)
    parser.add_argument("--options", type=int, default=3, help="at most this many other options of a box")
    parser.add_argument("--cache", type=Path, help="this cache folder (made if missing) instead of a fresh one")
    parser.add_argument("--json", type=Path, help="write the seconds per item here")
    args = parser.parse_args()
    os.environ["POSLAB_CACHE"] = str(args.cache or tempfile.mkdtemp(prefix="poslab-controls-"))
    import ui.serve

    ui.serve.preload()  # what the server loads before it listens
    seconds = {}
    for page in args.pages:
        for item, s in measure(page, args.options).items():
            seconds[item] = s
            print(f"{item}: {s:.2f} s" + ("  (over the bar)" if s > BAR else ""), flush=True)
    over = {item: s for item, s in seconds.items() if s > BAR}
    print(f"\n{len(seconds)} runs, {len(over)} over {BAR:.0f} s" + "".join(f"\n  {i}: {s:.2f} s" for i, s in over.items()))
    if args.json:
        args.json.write_text(json.dumps(seconds, indent=1))


if __name__ == "__main__":
    main()
