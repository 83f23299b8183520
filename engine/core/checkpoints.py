"""Users' checkpoints: find the state dict inside common wrappers and explain mismatches clearly.

Training scripts save weights in many shapes: a bare state dict, one wrapped under
``model_state`` / ``state_dict`` / ``model``, keys prefixed by ``module.`` (DataParallel/DDP) or
``_orig_mod.`` (torch.compile). These helpers normalise all of them and, when the weights do not fit
an architecture, name the first few missing, unexpected and mis-shaped keys.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from engine.core.storage import CheckpointError, load_torch

WRAPPER_KEYS = ("model_state", "state_dict", "model", "model_state_dict", "net")
PREFIXES = ("module.", "_orig_mod.", "model.")
SHOWN = 5


def unwrap_state_dict(blob: object, name: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensor mapping inside ``blob`` (descending through known wrapper keys), prefixes stripped."""
    while isinstance(blob, Mapping) and not _is_state_dict(blob):
        inner = next((blob[k] for k in WRAPPER_KEYS if k in blob and isinstance(blob[k], Mapping)), None)
        if inner is None:
            raise CheckpointError(f"{name} holds no state dict: expected tensors, or one under {', '.join(WRAPPER_KEYS)} "
                                  f"(found keys: {', '.join(map(str, list(blob)[:SHOWN]))}).")
        blob = inner
    if not isinstance(blob, Mapping):
        raise CheckpointError(f"{name} holds a {type(blob).__name__}, not a state dict of tensors.")
    state = {str(k): v for k, v in blob.items() if isinstance(v, torch.Tensor)}
    for prefix in PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _is_state_dict(blob: Mapping) -> bool:
    return bool(blob) and all(isinstance(v, torch.Tensor) for v in blob.values())


def read_state_dict(source: Path | str | bytes, name: str | None = None) -> dict[str, torch.Tensor]:
    """Load (``weights_only=True``) and unwrap a user's checkpoint."""
    name = name or (Path(source).name if not isinstance(source, bytes) else "upload")
    return unwrap_state_dict(load_torch(source, name), name)


def mismatch_report(model: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """``None`` when ``state`` fits ``model`` exactly; else a short list of what does not fit."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]  # older files lack it
    unexpected = [k for k in state if k not in expected]
    misshaped = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                 if k in state and state[k].shape != v.shape]
    if not (missing or unexpected or misshaped):
        return None
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
        if keys:
            more = f" (+{len(keys) - SHOWN} more)" if len(keys) > SHOWN else ""
            parts.append(f"{len(keys)} {label}: {', '.join(keys[:SHOWN])}{more}")
    return "; ".join(parts)


def load_state_into(model: nn.Module, state: Mapping[str, torch.Tensor], name: str = "checkpoint") -> nn.Module:
    """Load ``state`` into ``model`` strictly, or raise :class:`CheckpointError` naming the mismatched keys."""
    problem = mismatch_report(model, state)
    if problem:
        raise CheckpointError(f"{name} does not fit {type(model).__name__}: {problem}.")
    model.load_state_dict(state)
    return model
