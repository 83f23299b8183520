"""Networks made elsewhere on the Channel code page: the bundled real network, weights already in the local torch /
Hugging Face caches, and what a found network's GAP and stages are."""
from __future__ import annotations

import json

import streamlit as st

from engine.channel import lab
from engine.channel.nets import CHANNEL_ASSETS
from engine.core.errors import CheckpointError
from engine.models.importers import RAPIDOCR_CLS, RAPIDOCR_INSTALL, UNTRAINED, cached_models, rapidocr_available
from engine.models.user_classifier import UserClassifier

RECORDED = CHANNEL_ASSETS / "real_network.json"
LABELS = {RAPIDOCR_CLS: "real: PP-OCR text direction (rapidocr-cls)",
          RAPIDOCR_CLS + UNTRAINED: "control: PP-OCR text direction, untrained"}


def sources() -> list[str]:
    """Model specs the picker offers: the real network and its untrained control (when installed), cached weights."""
    real = [RAPIDOCR_CLS, RAPIDOCR_CLS + UNTRAINED] if rapidocr_available() else []
    return real + cached_models()


def label(key: str) -> str:
    """How the picker shows a network."""
    return LABELS.get(key, key)


def missing_note() -> str | None:
    """How to get the real network when its package is not installed."""
    if rapidocr_available():
        return None
    return (f"The real network (PP-OCR's text-direction classifier, trained by the PaddleOCR project on real text) "
            f"comes with a package: `{RAPIDOCR_INSTALL}` (scripts/install.sh installs it), then reload.")


def open_source(key: str) -> lab.UserNet:
    """A picker entry opened (once per file version, in the engine's shared cache); a clear message and a stop if not."""
    try:
        with st.spinner(f"Loading {label(key)}..."):
            return lab.open_model(key)
    except (CheckpointError, FileNotFoundError, ValueError) as err:
        st.error(f"{label(key)}: {err}")
        st.stop()


def found_note(model: object) -> str | None:
    """For a network whose GAP was found in its graph: which node, which stages, what input."""
    if not isinstance(model, UserClassifier) or model.gap is None:
        return None
    stages = ", ".join(f"{layer} = `{node}`" for layer, node in zip(("stem", "layer1", "layer2", "layer3", "layer4"),
                                                                    model.stage_names))
    return (f"{model.label}: the GAP its classifier reads is graph node `{model.gap.gap}` (the mean of layer4); "
            f"stages by resolution: {stages}. Input: {model.spec.source}.")


def recorded_note(key: str) -> str | None:
    """For the real network or its control: what ``python -m engine real-network`` recorded (read from its JSON)."""
    if key not in (RAPIDOCR_CLS, RAPIDOCR_CLS + UNTRAINED) or not RECORDED.is_file():
        return None
    rows = json.loads(RECORDED.read_text())

    def pct(network: str, **match: object) -> str:
        row = next(r for r in rows if r["network"] == network and all(r.get(k) == v for k, v in match.items()))
        return f"{row['accuracy']:.1f}% [{row['interval'][0]:.1f}, {row['interval'][1]:.1f}]"

    decode = "; ".join(
        f"{g}x{g}: {pct(RAPIDOCR_CLS, grid=g, readout='order')} in channel order vs "
        f"{pct(RAPIDOCR_CLS, grid=g, readout='permuted')} permuted (untrained: "
        f"{pct(RAPIDOCR_CLS + UNTRAINED, grid=g, readout='order')} vs "
        f"{pct(RAPIDOCR_CLS + UNTRAINED, grid=g, readout='permuted')})"
        for g in sorted({r["grid"] for r in rows if "grid" in r}))
    n = next(r["n"] for r in rows if "tested" in r)
    return (f"Recorded on PP-OCR's text-direction classifier, the cell decoded from its GAP vector, 95% intervals: "
            f"{decode}. On its own task (text direction on {n:,} rendered lines, chance 50%) it scores "
            f"{pct(RAPIDOCR_CLS, tested='in order')} with its GAP vector in order, "
            f"{pct(RAPIDOCR_CLS, tested='one fixed permutation')} under one fixed permutation of the channels and "
            f"{pct(RAPIDOCR_CLS, tested='each image its own permutation')} with each image's own. "
            "`python -m engine real-network --json assets/channel_code/real_network.json`")
