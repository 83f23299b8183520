"""Users' checkpoints kept on this server, so that a reload or a link loads each again with the settings it loaded with.

``cache_dir()/uploads/`` holds every upload that loaded, named by its content hash: ``<sha256[:32]>`` with the upload's
extension (``.pt``, ``.pth``, ``.safetensors`` or ``.onnx``; any other name is kept as ``.pt``), beside ``<hash>.json``,
the name it was uploaded under and its settings (``Settings``). A checkpoint read from a server path is not copied:
only its settings are kept, in ``<hash of the path>.json``. Uploads keep within ``$POSLAB_UPLOADS_BUDGET_MB``
(default 2000): the least recently used (by file time, renewed on every load) go first.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from engine.core.storage import cache_dir, env_megabytes, over_budget, save_bytes, save_json

BUDGET_ENV = "POSLAB_UPLOADS_BUDGET_MB"
DEFAULT_BUDGET_MB = 2000
SUFFIXES = (".pt", ".pth", ".safetensors", ".onnx")
KEPT_ID = re.compile(r"^[0-9a-f]{32}$")
GONE = "This link names an uploaded checkpoint that is not on this server any more: upload it again."


class KeptGone(LookupError):
    """A link names an upload this server does not have (removed for the budget, or never uploaded here)."""


@dataclass(frozen=True)
class Settings:
    """How a checkpoint was loaded: its display name and ``load_user_checkpoint``'s ``arch`` and ``config``."""

    name: str
    arch: str = "auto"
    config: str = "torchvision"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


class KeptCheckpoints:
    """Uploads by content hash and the settings of server-path checkpoints, in one folder kept within a byte budget."""

    def __init__(self, root: Path | None = None, budget_bytes: int | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir() / "uploads"
        self.budget_bytes = env_megabytes(BUDGET_ENV, DEFAULT_BUDGET_MB) if budget_bytes is None else budget_bytes

    def keep(self, data: bytes, settings: Settings) -> str:
        """Keep an upload that loaded and its settings; its id (the content hash). Older uploads go when over budget."""
        digest = _digest(data)
        if self._touch(digest) is None:
            suffix = Path(settings.name).suffix.lower()
            save_bytes(data, self.root / f"{digest}{suffix if suffix in SUFFIXES else '.pt'}")
        save_json(asdict(settings), self.root / f"{digest}.json")
        self.evict(keep=digest)
        return digest

    def upload(self, digest: str) -> tuple[Path, Settings]:
        """A kept upload's file and settings, marked as used now; :class:`KeptGone` when this server does not have it."""
        path = self._touch(digest) if KEPT_ID.match(digest) else None
        if path is None:
            raise KeptGone(GONE)
        return path, self._settings(digest, f"upload {digest[:8]}")

    def remember(self, path: str, settings: Settings) -> None:
        """Keep the settings a checkpoint at a server ``path`` loaded with (the file itself stays where it is)."""
        save_json(asdict(settings), self.root / f"{_digest(path.encode())}.json")

    def settings_at(self, path: str) -> Settings:
        """The settings the checkpoint at ``path`` last loaded with; the defaults (told from its keys) if none are kept."""
        return self._settings(_digest(path.encode()), Path(path).name)

    def evict(self, keep: str = "") -> list[str]:
        """Remove the least recently used uploads (file and settings) until the rest fit the budget, never ``keep``;
        the removed ids."""
        sizes = {}
        for path in self.root.glob("*") if self.root.is_dir() else []:
            if path.suffix in SUFFIXES and KEPT_ID.match(path.stem):
                try:
                    stat = path.stat()
                except FileNotFoundError:  # removed meanwhile by another session
                    continue
                sizes[path] = (stat.st_size, stat.st_mtime)
        candidates = [(path, size, used) for path, (size, used) in sizes.items() if path.stem != keep]
        removed = over_budget(candidates, sum(size for size, _ in sizes.values()), self.budget_bytes)
        for path in removed:
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)
        return [path.stem for path in removed]

    def _touch(self, digest: str) -> Path | None:
        """The kept file of ``digest`` marked as used now; ``None`` when there is none (another session may just have
        removed it)."""
        for suffix in SUFFIXES:
            path = self.root / f"{digest}{suffix}"
            try:
                os.utime(path)
            except OSError:  # not there, or no folder to look in
                continue
            return path
        return None

    def _settings(self, digest: str, name: str) -> Settings:
        try:
            record = json.loads((self.root / f"{digest}.json").read_text())
        except (OSError, ValueError):
            record = {}
        if not isinstance(record, dict):
            record = {}
        known = {f.name: record[f.name] for f in fields(Settings) if isinstance(record.get(f.name), str)}
        return Settings(**{"name": name, **known})
