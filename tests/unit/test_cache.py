"""The one cache (engine.core.cache): bounded by bytes and entries, thread-safe, keyed by content, never by id()."""
from __future__ import annotations

import threading
import time

import torch
from torch import nn

from engine.core.cache import Cache, model_key, nbytes_of


def test_memory_bound_holds_when_filled_past_the_limit():
    cache = Cache(max_bytes=10 * 4096, max_entries=1000)
    for i in range(50):  # 50 tensors of 4 KiB each: five times the bound
        cache.get_or_compute(f"k{i}", lambda: torch.zeros(1024))
        assert cache.nbytes <= cache.max_bytes
    assert len(cache) == 10 and cache.peak_bytes <= cache.max_bytes
    assert "k49" in cache and "k0" not in cache  # least recently used first out


def test_entry_bound_and_recency():
    cache = Cache(max_bytes=1 << 30, max_entries=3)
    for key in "abc":
        cache.put(key, key)
    cache.get_or_compute("a", lambda: "recomputed")  # touching "a" makes "b" the oldest
    cache.put("d", "d")
    assert "b" not in cache and {"a", "c", "d"} <= {k for k in "abcd" if k in cache}
    assert cache.get_or_compute("a", lambda: "recomputed") == "a"


def test_a_value_larger_than_the_bound_is_returned_and_kept_alone():
    cache = Cache(max_bytes=8)
    cache.put("small", torch.zeros(1))
    big = cache.get_or_compute("big", lambda: torch.zeros(100))
    assert big.numel() == 100 and len(cache) == 1 and "big" in cache


def test_concurrent_requests_for_one_key_compute_it_once():
    cache, calls = Cache(), []

    def slow() -> torch.Tensor:
        calls.append(1)
        time.sleep(0.2)
        return torch.ones(3)

    results: list[torch.Tensor] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute("k", slow))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 6 and all(r is results[0] for r in results)


def test_a_failed_computation_stores_nothing_and_can_be_retried():
    cache = Cache()

    def fail() -> None:
        raise RuntimeError("boom")

    try:
        cache.get_or_compute("k", fail)
    except RuntimeError:
        pass
    assert "k" not in cache and cache.get_or_compute("k", lambda: 7) == 7


def test_model_key_follows_the_weights_not_the_object():
    torch.manual_seed(0)
    a = nn.Linear(4, 2)
    b = nn.Linear(4, 2)
    b.load_state_dict(a.state_dict())
    assert model_key(a) == model_key(b)  # equal weights: one entry, whichever object asks
    assert model_key(a, "layer4") != model_key(a, "stem")
    key = model_key(a)
    with torch.no_grad():
        b.weight[0, 0] += 1
    assert model_key(b) != key
    del a
    c = nn.Linear(4, 2)  # may reuse a's id(); its key is its own weights'
    assert model_key(c) != key


def test_nbytes_counts_tensors_inside_containers_and_dataclasses():
    from dataclasses import dataclass

    @dataclass
    class Pair:
        x: torch.Tensor
        y: dict

    assert nbytes_of(Pair(torch.zeros(10), {"z": torch.zeros(5, dtype=torch.float16)})) == 40 + 10
