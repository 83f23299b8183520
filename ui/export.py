"""Sharing and export: CSV/JSON download buttons, PNG-ready chart toolbars, and a note on link settings a page refused.

Widgets bound to the URL (``bind="query-params"``) already fall back to their defaults when a link carries
a bad or stale value; :func:`url_snapshot` and :func:`note_refused_params` only tell the user that it happened.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

NOTE_LIMIT = 60  # characters of a refused link name or value quoted in the note


def chart_config(filename: str) -> dict:
    """A ``st.plotly_chart`` config whose toolbar camera saves ``filename``.png."""
    return {"displayModeBar": True, "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2}}


def export_frame(rows: Sequence[Mapping] | pd.DataFrame, percent: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``rows`` as the table a download holds: the ``percent`` columns (fractions) times 100, under their new names."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if not percent:
        return frame
    return frame.assign(**{column: 100 * frame[column] for column in percent}).rename(columns=dict(percent))


def download_buttons(rows: Sequence[Mapping] | pd.DataFrame, stem: str, as_json: Any = None,
                     percent: Mapping[str, str] | None = None) -> None:
    """Small "CSV" and "JSON" buttons in a row: ``rows`` as ``stem``.csv, ``as_json`` (default: the rows) as ``stem``.json.

    ``percent`` maps columns that hold fractions (0-1) to the names they are exported under in percent, e.g.
    ``{"left": "left_miou_pct"}``: one unit per export, named in the column, as the page shows it.
    """
    frame = export_frame(rows, percent)
    payload = json.loads(frame.to_json(orient="records")) if as_json is None else as_json
    with st.container(horizontal=True, gap="small"):
        st.download_button("CSV", frame.to_csv(index=False), f"{stem}.csv", "text/csv", key=f"dl:{stem}.csv",
                           on_click="ignore", icon=":material/download:", type="tertiary")
        st.download_button("JSON", json.dumps(payload, indent=1), f"{stem}.json", "application/json",
                           key=f"dl:{stem}.json", on_click="ignore", icon=":material/download:", type="tertiary")


def url_snapshot(prefix: str) -> dict[str, list[str]]:
    """This page's URL parameters (names starting with ``prefix``) as the run found them, before widgets read them."""
    return {k: st.query_params.get_all(k) for k in st.query_params if k.startswith(prefix)}


def _shown_as(raw: list[str], value: Any, fmt: Callable[[Any], str]) -> bool:
    """Whether the URL text ``raw`` spells the widget value ``value`` (a valid link value equal to the default)."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(raw) != len(values):
        return False
    for text, v in zip(raw, values):
        if text in (str(v), fmt(v)):
            continue
        try:
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isclose(float(text), v):
                continue
        except ValueError:
            pass
        return False
    return True


def cut(text: str, limit: int = NOTE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis says so), so a long link value cannot flood the note."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def note_refused_params(snapshot: dict[str, list[str]],
                        formats: Mapping[str, Callable[[Any], str]] | None = None) -> None:
    """A small note naming the link parameters no widget of this run accepted as given (call after every bound widget).

    Streamlit drops or corrects a bound parameter it cannot use; it also drops one equal to the default,
    which is no refusal, so a dropped value that spells the widget's current value is not reported. A
    parameter no widget of this run is bound to (unknown, or for a control this view does not show) is.
    """
    formats = formats or {}
    refused = []
    for key, raw in snapshot.items():
        if key in st.session_state and st.query_params.get_all(key) == raw:
            continue  # a widget took it as given
        if key in st.session_state and _shown_as(raw, st.session_state[key], formats.get(key, str)):
            continue  # dropped because it equals the default
        refused.append(f"`{cut(key)}={cut('&'.join(raw))}`")
    if refused:
        st.caption("ℹ️ Some link settings were not used (bad, stale, or not part of this view); defaults apply: "
                   f"{', '.join(refused)}.")
