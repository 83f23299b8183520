"""bf16 autocast only where the hardware computes bf16 (an AVX2-only CPU emulates it, ~10x slower than fp32)."""
from __future__ import annotations

import pytest
import torch

from engine.core.device import autocast, native_bf16


@pytest.fixture
def bf16_env(monkeypatch):
    def set_to(value: str | None):
        if value is None:
            monkeypatch.delenv("POSLAB_BF16", raising=False)
        else:
            monkeypatch.setenv("POSLAB_BF16", value)
        native_bf16.cache_clear()
    yield set_to
    native_bf16.cache_clear()


def _dtype_under(ctx) -> torch.dtype:
    with ctx:
        return (torch.ones(2, 2) @ torch.ones(2, 2)).dtype


def test_autocast_follows_the_hardware_check_and_its_override(bf16_env):
    cpu = torch.device("cpu")
    bf16_env("1")
    assert _dtype_under(autocast(cpu)) == torch.bfloat16
    assert _dtype_under(autocast(cpu, enabled=False)) == torch.float32
    bf16_env("0")
    assert _dtype_under(autocast(cpu)) == torch.float32
    bf16_env(None)
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert native_bf16("cpu") == native
    assert _dtype_under(autocast(cpu)) == (torch.bfloat16 if native else torch.float32)


def test_cached_fp16_latents_run_the_head_without_autocast(bf16_env):
    """Without native bf16 nothing autocasts, and the head computes fp16 cached latents in its own fp32."""
    from engine.models.segmentation import build_model, class_logits

    bf16_env("0")
    model = build_model("deeplabv3_resnet_slim", rates=(1, 2, 3)).eval()
    z = torch.rand(2, 512, 4, 8).to(torch.float16)
    mask = torch.ones(512)
    mask[:100] = 0
    with torch.inference_mode(), autocast(torch.device("cpu")):
        got = class_logits(model, z, mask)
        want = class_logits(model, z.float() * mask.view(1, -1, 1, 1))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want)
