"""The one in-memory cache of the engine and the UI: a thread-safe LRU bounded by bytes and by entries.

Keys are content fingerprints (:func:`engine.core.storage.fingerprint` of weights, data and settings; :func:`model_key`
for a network), never ``id()``, which a freed object hands on to the next one. Values are never copied: callers
treat them as read-only. Two threads asking for the same missing key compute it once; the others wait for it.
Disk persistence stays with the callers (they know the file formats): pass a ``compute`` that reads or writes a file.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from engine.core.storage import fingerprint

T = TypeVar("T")
DEFAULT_MAX_BYTES = int(float(os.environ.get("POSLAB_CACHE_MB", 2048)) * 2**20)
DEFAULT_MAX_ENTRIES = 512


def nbytes_of(value: Any) -> int:
    """Memory held by ``value``: tensors and arrays by their data, containers and dataclasses by their items,
    objects with an ``nbytes`` attribute by it, anything else by ``sys.getsizeof``."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, nn.Module):
        return sum(t.numel() * t.element_size() for t in value.state_dict().values())
    if isinstance(value, Mapping):
        return sum(nbytes_of(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(nbytes_of(v) for v in value)
    if hasattr(value, "nbytes"):
        return int(value.nbytes)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(nbytes_of(getattr(value, f.name)) for f in dataclasses.fields(value))
    return sys.getsizeof(value)


def model_key(model: nn.Module, *parts: Any) -> str:
    """A cache key for ``model``'s current weights and buffers (plus ``parts``): equal weights, equal key."""
    return fingerprint(type(model).__name__, model.state_dict(), list(parts))


class Cache:
    """Least-recently-used values by key, evicted beyond ``max_entries`` items or ``max_bytes`` (the most recent
    item stays even when it alone is larger: the caller gets its value either way)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[str, threading.Lock] = {}
        self.nbytes = 0
        self.peak_bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get_or_compute(self, key: str, compute: Callable[[], T]) -> T:
        """The value under ``key``; computed by ``compute()`` and stored when missing."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
            gate = self._computing.setdefault(key, threading.Lock())
        with gate:  # one thread computes a key; the others wait here and then find it
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key][0]
            try:
                value = compute()
                self.put(key, value)
            finally:
                with self._lock:
                    self._computing.pop(key, None)
            return value

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` as the most recent item, evicting the least recent beyond the bounds."""
        size = nbytes_of(value)
        with self._lock:
            if key in self._items:
                self.nbytes -= self._items.pop(key)[1]
            self._items[key] = (value, size)
            self.nbytes += size
            while len(self._items) > 1 and (self.nbytes > self.max_bytes or len(self._items) > self.max_entries):
                self.nbytes -= self._items.popitem(last=False)[1][1]
            self.peak_bytes = max(self.peak_bytes, self.nbytes)

    def clear(self) -> None:
        """Drop every item."""
        with self._lock:
            self._items.clear()
            self.nbytes = 0


CACHE = Cache()  # the process's cache: every lab's features and latents and the pages' derived results
