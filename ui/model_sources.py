"""Networks made elsewhere on the Channel code page: the bundled real network, weights already in the local torch /
Hugging Face caches, and what a found network's GAP and stages are."""
from __future__ import annotations

import streamlit as st

from engine.channel import lab
from engine.core.errors import CheckpointError
from engine.models.importers import RAPIDOCR_CLS, RAPIDOCR_INSTALL, UNTRAINED, cached_models, rapidocr_available
from engine.models.user_classifier import UserClassifier

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
