"""The Segmentation lab's live slider as a lookup: one slider position's mIoU and pictures computed (the pictures
JPEG-encoded) once per server, shared by every session, and every top-N position of the shipped models read from a
table shipped in assets/seg.

A result is keyed by the model's weights, the latents, the ranking and the zeroed channels, and held in the
engine's cache (:data:`engine.core.cache.CACHE`), so two sessions at the same slider position share one head run.
The shipped table (:data:`TABLE`, written by ``scripts/build_seg_live_table.py``) holds the mIoU of every N from 0
to the latent width for the shipped models' rankings on the live images; an entry is used only where it was
computed with the same weights, the same latent values, the same channel order and the same arithmetic (device,
bf16 or fp32, torch version), so a lookup equals a fresh :func:`engine.seg.lab.ablate` to the last bit.
"""
from __future__ import annotations

import base64
import io
import json
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.core.cache import CACHE
from engine.core.device import native_bf16
from engine.core.storage import ASSETS, fingerprint, save_json
from engine.data.cityscapes_classes import colorize
from engine.data.scenes import SceneSet
from engine.models.segmentation import SegModel
from engine.seg import lab
from engine.seg.ablation import channel_mask, evaluate_masks, scores, select
from engine.seg.features import Latents, StreamedLatents
from engine.seg.metrics import REGIONS

TABLE = ASSETS / "seg" / "live_table.json"


def arithmetic(seg: SegModel) -> str:
    """What decides the head's rounding: device, bf16 autocast or fp32, CPU kernels (AMX), torch version."""
    device = next(seg.model.parameters()).device
    amx = device.type == "cpu" and torch.cpu._is_amx_tile_supported()
    return f"{device.type} bf16={native_bf16(device.type)} amx={amx} torch={torch.__version__.split('+')[0]}"


def content_id(lat: Latents) -> str:
    """A fingerprint of the latents' values and labels (once per latents: held in the engine's cache)."""
    return CACHE.get_or_compute(f"seg/content/{lat.key}", lambda: fingerprint(lat.z, lat.labels))


def entry_key(seg: SegModel, lat: Latents, order: np.ndarray) -> str:
    """The table's key of a channel order's top-N column under ``seg`` on ``lat``."""
    return fingerprint(seg.fingerprint, content_id(lat), arithmetic(seg), order.tolist())


def build_entry(seg: SegModel, lat: Latents, order: np.ndarray, on_progress=None) -> dict:
    """Baseline and mIoU per region of zeroing the top N of ``order``, every N from 0 to the latent width (the same
    head runs as :func:`engine.seg.lab.ablate`, one mask per N)."""
    masks = [channel_mask(seg.channels, select(order, n)) for n in range(seg.channels + 1)]
    confs = evaluate_masks(seg, lat, masks, on_progress=on_progress)
    return {"baseline": lab.baseline(seg, lat), "scores": [[scores(c)[r] for r in REGIONS] for c in confs]}


def pack_scores(rows: list[list[float]]) -> str:
    """A column's scores as the table stores them: float64 bytes, zlib-compressed, base64 (bit-exact, a third of JSON)."""
    return base64.b64encode(zlib.compress(np.asarray(rows, dtype="<f8").tobytes(), 9)).decode()


def unpack_scores(text: str) -> list[list[float]]:
    """The inverse of :func:`pack_scores`: one row of per-region scores per N."""
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype="<f8").reshape(-1, len(REGIONS)).tolist()


def read_table(path: Path = TABLE) -> dict:
    """A table file with its columns unpacked (empty when absent)."""
    table = json.loads(path.read_text()) if path.is_file() else {}
    return {key: {**entry, "scores": unpack_scores(entry["scores"])} for key, entry in table.items()}


def add_entry(seg: SegModel, lat: Latents, order: np.ndarray, label: dict, path: Path = TABLE, on_progress=None) -> dict:
    """Compute a top-N column (:func:`build_entry`) and store it in the table file at ``path`` (written atomically)."""
    table = json.loads(path.read_text()) if path.is_file() else {}
    entry = build_entry(seg, lat, order, on_progress)
    table[entry_key(seg, lat, order)] = {**label, "arithmetic": arithmetic(seg), **entry, "scores": pack_scores(entry["scores"])}
    save_json(table, path)
    return table


def shipped_table() -> dict:
    """The shipped table, read and unpacked once per process (empty when absent)."""
    return CACHE.get_or_compute(f"seg/live-table/{TABLE.stat().st_mtime_ns if TABLE.is_file() else 0}", read_table)


def lookup(seg: SegModel, lat: Latents | StreamedLatents, order: np.ndarray, n: int) -> tuple[dict, dict] | None:
    """(baseline, mIoU per region) of zeroing the top ``n`` of ``order`` from the shipped table, or None when it has
    no entry made with these weights, latents, order and arithmetic."""
    table = shipped_table()
    if not table or isinstance(lat, StreamedLatents):
        return None
    entry = table.get(entry_key(seg, lat, order))
    if entry is None or not 0 <= n < len(entry["scores"]):
        return None
    return entry["baseline"], dict(zip(REGIONS, entry["scores"][n]))


def ablate(seg: SegModel, data: SceneSet, subset: str, ranking: str, draw: int, n: int | None,
           rank_range: tuple[int, int] | None, rank_on: str, images: int) -> lab.AblationResult:
    """One live slider position (one draw): :func:`engine.seg.lab.ablate` on the first ``images`` images of ``subset``,
    read from the shipped table when it holds it, computed otherwise; either way once per server (shared cache)."""
    lat = lab.latents(seg, data, subset, images)
    order = lab.channel_order(seg, data, ranking, draw, rank_on)
    zeroed = select(order, n, rank_range)
    picked = draw if ranking == "random" else None

    def compute() -> lab.AblationResult:
        found = lookup(seg, lat, order, len(zeroed)) if rank_range is None else None
        if found is None:
            return lab.ablate(seg, data, ranking, n, rank_range, [draw], subset, rank_on, images=images)
        base, now = found
        return lab.AblationResult(subset, len(lat), ranking, base, [lab.Ablated(picked, zeroed, now)])

    return CACHE.get_or_compute(f"seg/live-result/{fingerprint(seg.fingerprint, lat.key, ranking, picked, zeroed.tolist())}",
                                compute)


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """An RGB image with a label map blended over it."""
    return (image * (1 - alpha) + colorize(labels) * alpha).astype(np.uint8)


def changed_map(image: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """The image dimmed, with pixels whose prediction changed in bright magenta."""
    out = (image * 0.35).astype(np.uint8)
    out[changed] = (255, 0, 255)
    return out


def jpeg(image: np.ndarray) -> bytes:
    """An RGB image as the JPEG bytes Streamlit's ``st.image`` makes of an array (quality 100), so it sends them as they are."""
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=100)
    return out.getvalue()


def pictures(seg: SegModel, data: SceneSet, subset: str, lat: Latents, index: int, zeroed: np.ndarray) -> dict[str, bytes]:
    """Image ``index`` of ``subset`` (row ``index`` of ``lat``) as the live panel shows it, JPEG-encoded once per server for
    every session: ``input``, ``truth`` and both predictions overlaid, ``changed`` pixels (:func:`engine.seg.lab.live_view`)."""
    key = fingerprint(seg.fingerprint, lat.key, data.key, subset, index, np.asarray(zeroed).tolist())

    def compute() -> dict[str, bytes]:
        image, q = data.images[lab.subset_index(data, subset)[index]], lab.live_view(seg, lat, index, zeroed)
        return {"input": jpeg(image), **{k: jpeg(overlay(image, q[k])) for k in ("truth", "before", "after")},
                "changed": jpeg(changed_map(image, q["changed"]))}

    return CACHE.get_or_compute(f"seg/live-pictures/{key}", compute)
