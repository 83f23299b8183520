"""One place that decides where and how tensors are computed.

CUDA when present, else CPU. On CPU, bf16 autocast with channels_last memory is 2-3x faster
for conv training on these machines; evaluation that must be exact can ask for fp32.
"""
from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch
from torch import nn


def pick_device(prefer: str | None = None) -> torch.device:
    """The device to use: ``prefer`` if given (``"cpu"``/``"cuda"``), else CUDA when available."""
    choice = prefer or os.environ.get("POSLAB_DEVICE")
    if choice:
        return torch.device(choice)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that a run can be repeated exactly on the same device."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CPU or CUDA (no grad scaler needed for bf16); a no-op when disabled."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def prepare_model(model: nn.Module, device: torch.device, channels_last: bool = True) -> nn.Module:
    """Move a model to ``device``, in channels_last layout for conv speed."""
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def prepare_input(x: torch.Tensor, device: torch.device, channels_last: bool = True) -> torch.Tensor:
    """Move an NCHW batch to ``device`` (channels_last when asked)."""
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x
