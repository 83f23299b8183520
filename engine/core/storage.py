"""Files on disk: atomic writes, safe checkpoint loading, and the on-disk cache folder.

Checkpoints are always read with ``torch.load(weights_only=True)``: a file that needs code to
unpickle is refused with a clear message, never executed. ``.safetensors`` files (tensors only, no
code by design) are read with safetensors. A file over ``MAX_MODEL_BYTES`` is refused unread.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import lzma
import os
import tempfile
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch

from engine.core.errors import CheckpointError

REPO_ROOT = Path(__file__).resolve().parents[2]
ASSETS = REPO_ROOT / "assets"


def env_megabytes(name: str, default_mb: float) -> int:
    """A size limit in bytes from the environment variable ``name`` (in MB, fractions allowed), else ``default_mb``."""
    return int(float(os.environ.get(name, default_mb)) * 2**20)


MAX_MODEL_BYTES = env_megabytes("POSLAB_MAX_MODEL_MB", 1024)
XZ_MAGIC = b"\xfd7zXZ\x00"  # shipped checkpoints are xz-compressed (``pack_checkpoint``); loading detects it


def cache_dir() -> Path:
    """Folder for on-disk caches (``$POSLAB_CACHE`` or ``~/.cache/poslab``), created on demand."""
    path = Path(os.environ.get("POSLAB_CACHE", Path.home() / ".cache" / "poslab"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _atomic(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


Key = TypeVar("Key", bound=Hashable)


def over_budget(candidates: Iterable[tuple[Key, int, float]], total: int, budget: int) -> list[Key]:
    """What to remove, least recently used first, so that ``total`` bytes fit ``budget``: ``candidates`` are the
    removable items as (key, bytes, last use time); whatever is not a candidate still counts in ``total``."""
    removed = []
    for key, size, _ in sorted(candidates, key=lambda c: c[2]):
        if total <= budget:
            break
        removed.append(key)
        total -= size
    return removed


def save_torch(obj: Any, path: Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename: never a half-written file."""
    return _atomic(path, lambda fh: torch.save(obj, fh))


def stored(path: Path, compute: Callable[[], Any]) -> Any:
    """The tensors saved at ``path`` (a cache file), else ``compute()`` saved there atomically; an unreadable file
    is recomputed and replaced."""
    if path.is_file():
        try:
            return load_torch(path)
        except CheckpointError:
            pass
    value = compute()
    save_torch(value, path)
    return value


def half_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's state dict on the CPU with floating tensors in fp16: shipped checkpoints stay half the size."""
    return {k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu() for k, v in module.state_dict().items()}


def weight_entries(module: torch.nn.Module, train_state: dict[str, Any] | None = None) -> dict[str, Any]:
    """A checkpoint's weights: fp16 (shipped files stay small); with ``train_state`` (a run to be continued) fp32 and
    the state beside them, so the continued training starts from exactly these numbers."""
    if train_state is None:
        return {"state_dict": half_state_dict(module)}
    return {"state_dict": {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()},
            "train_state": train_state}


def save_bytes(data: bytes, path: Path) -> Path:
    """Write ``data`` atomically."""
    return _atomic(path, lambda fh: fh.write(data))


def save_json(obj: Any, path: Path) -> Path:
    """Write JSON atomically (indent 2, keys as given)."""
    return _atomic(path, lambda fh: fh.write(json.dumps(obj, indent=2).encode() + b"\n"))


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Rows as CSV, atomically: one column per key in first-seen order; lists and dicts as JSON text."""
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(v: Any) -> Any:
        return json.dumps(v) if isinstance(v, (list, dict)) else v

    def write(f) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: cell(v) for k, v in row.items()} for row in rows)
        f.write(text.getvalue().encode())

    return _atomic(path, write)


def load_torch(source: Path | str | bytes, name: str | None = None) -> Any:
    """Load a checkpoint (a path, or bytes of an upload: nothing is written to disk) with
    ``weights_only=True``; raise :class:`CheckpointError` when it is missing, unsafe or broken.

    Messages name the file once and never repeat the unpickler's own text (it can quote file contents)."""
    if isinstance(source, bytes):
        name = name or "upload"
        target: Any = io.BytesIO(source)
        empty = not source
    else:
        path = Path(source)
        name = name or path.name
        if path.is_dir():
            raise CheckpointError(f"{name} is a folder, not a checkpoint file.")
        if not path.is_file():
            raise CheckpointError(f"No checkpoint file at {path}.")
        target, empty = path, path.stat().st_size == 0
    check_size(len(source) if isinstance(source, bytes) else target.stat().st_size, name)
    if empty:
        raise CheckpointError(f"{name} is empty, not a PyTorch checkpoint.")
    if name.lower().endswith(".safetensors"):
        return _load_safetensors(source if isinstance(source, bytes) else target, name)
    if _is_xz(target):
        try:
            target = io.BytesIO(lzma.decompress(target.getvalue() if isinstance(target, io.BytesIO) else target.read_bytes()))
        except lzma.LZMAError as err:
            raise CheckpointError(f"{name} is a damaged compressed checkpoint (xz): download or pack it again.") from err
    try:
        return torch.load(target, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - unpickling errors come in many types
        if "unsupported global" in str(err).lower():
            raise CheckpointError(
                f"{name} holds pickled code or objects, not just tensors; it was refused for "
                "safety. Save the model's state_dict() instead."
            ) from err
        raise CheckpointError(f"{name} is not a PyTorch checkpoint: expected a file written by torch.save.") from err


def check_size(size: int, name: str, limit: int | None = None) -> None:
    """Refuse a model file of ``size`` bytes over ``limit`` (default ``MAX_MODEL_BYTES``) before anything reads it."""
    limit = MAX_MODEL_BYTES if limit is None else limit
    if size > limit:
        raise CheckpointError(f"{name} is {size / 2**30:.2f} GiB, over this app's {limit / 2**30:.2f} GiB model limit "
                              "(POSLAB_MAX_MODEL_MB); it was not read.")


def _load_safetensors(source: Path | bytes, name: str) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (a JSON header and raw tensor bytes: nothing in it can run)."""
    from safetensors import SafetensorError
    from safetensors.torch import load, load_file

    try:
        return load(source) if isinstance(source, bytes) else load_file(str(source))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{name} is not a safetensors file ({str(err)[:120]}).") from err


def _is_xz(target: Path | io.BytesIO) -> bool:
    if isinstance(target, io.BytesIO):
        return target.getvalue().startswith(XZ_MAGIC)
    with open(target, "rb") as fh:
        return fh.read(len(XZ_MAGIC)) == XZ_MAGIC


def pack_checkpoint(path: Path) -> tuple[int, int]:
    """Compress a checkpoint in place with xz (about 11% smaller for fp16 weights: what keeps ``assets/`` within its
    budget); (bytes before, bytes after). Already packed files are left alone; the content must load first."""
    path = Path(path)
    raw = path.read_bytes()
    if raw.startswith(XZ_MAGIC):
        return len(raw), len(raw)
    load_torch(path)  # never pack something that does not load safely
    packed = lzma.compress(raw, preset=9)
    _atomic(path, lambda fh: fh.write(packed))
    return len(raw), len(packed)


def fingerprint(*parts: Any) -> str:
    """A short stable hash of tensors, state dicts, and JSON-able values (cache keys)."""
    h = hashlib.sha1()

    def feed(obj: Any) -> None:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous().reshape(-1)
            h.update(str((t.dtype, tuple(obj.shape))).encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(obj, Mapping):
            for k in sorted(obj, key=str):
                h.update(str(k).encode())
                feed(obj[k])
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                feed(v)
        else:
            h.update(json.dumps(obj, sort_keys=True, default=str).encode())

    for part in parts:
        feed(part)
    return h.hexdigest()[:16]
