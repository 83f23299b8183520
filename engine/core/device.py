"""One place that decides where and how tensors are computed.

CUDA when present, else CPU. bf16 autocast runs only where the hardware computes bf16 natively
(CUDA with bf16, CPUs with AVX512-BF16 or AMX: 2-3x faster conv training with channels_last); on a CPU
without it (AVX2 only) oneDNN emulates bf16 and a training step is ~10x slower than fp32
(bench/bench_seg_training_precision.py), so it stays fp32.
Evaluation that must be exact can ask for fp32 anywhere.
"""
from __future__ import annotations

import contextlib
import functools
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


@functools.lru_cache(maxsize=None)
def native_bf16(device_type: str) -> bool:
    """Whether this machine computes bf16 in hardware on ``device_type`` ("cpu"/"cuda"); ``POSLAB_BF16=0/1`` overrides."""
    forced = os.environ.get("POSLAB_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device_type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast (no grad scaler needed for bf16) where the hardware has bf16; a no-op when disabled or without it."""
    if not enabled or not native_bf16(device.type):
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
