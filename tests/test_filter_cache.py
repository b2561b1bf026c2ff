"""BoundedCache: LRU bound, one computation per key across threads, failures not stored."""

from __future__ import annotations

import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

import pytest

from vsdain.filter.cache import BoundedCache


def test_keeps_at_most_capacity_values_least_recent_first_out():
    cache: BoundedCache[int, str] = BoundedCache(2)
    cache.get(1, lambda: "one")
    cache.get(2, lambda: "two")
    cache.get(1, lambda: "recomputed")  # touch 1, so 2 is the oldest
    cache.get(3, lambda: "three")
    assert 1 in cache and 3 in cache and 2 not in cache
    assert len(cache) == 2
    assert cache.get(1, lambda: "recomputed") == "one"
    assert cache.computations == 3


def test_concurrent_requests_for_one_key_compute_it_once():
    cache: BoundedCache[int, object] = BoundedCache(1)
    started = threading.Event()
    calls = []

    def slow() -> object:
        calls.append(1)
        started.set()
        time.sleep(0.2)
        return object()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: cache.get(7, slow), range(8)))
    assert len(calls) == 1
    assert all(result is results[0] for result in results)


def test_compute_runs_without_the_lock_so_it_can_use_the_cache_itself():
    cache: BoundedCache[int, int] = BoundedCache(4)

    def fib(n: int) -> int:
        return (
            n
            if n < 2
            else cache.get(n - 1, lambda: fib(n - 1)) + cache.get(n - 2, lambda: fib(n - 2))
        )

    assert cache.get(10, lambda: fib(10)) == 55


def test_a_failure_reaches_every_waiter_and_is_not_stored():
    cache: BoundedCache[str, int] = BoundedCache(2)
    barrier = threading.Barrier(2)

    def failing() -> int:
        barrier.wait()
        time.sleep(0.1)
        raise RuntimeError("boom")

    def waiter() -> int:
        barrier.wait()
        return cache.get("key", lambda: 0)

    with ThreadPoolExecutor(2) as pool:
        owner = pool.submit(cache.get, "key", failing)
        other = pool.submit(waiter)
        with pytest.raises(RuntimeError, match="boom"):
            owner.result()
        # The waiter either joined the failed computation or came after it and computed 0.
        try:
            assert other.result() == 0
        except RuntimeError as error:
            assert "boom" in str(error)
    assert cache.get("key", lambda: 5) == 5


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        BoundedCache(0)


class _Value:
    def __init__(self, key: int) -> None:
        self.key = key


def test_leases_bound_what_is_alive_and_wait_for_room():
    cache: BoundedCache[int, _Value] = BoundedCache(2)
    live: weakref.WeakSet[_Value] = weakref.WeakSet()
    most = [0]
    lock = threading.Lock()

    def use(key: int) -> None:
        def compute() -> _Value:
            time.sleep(0.01)
            value = _Value(key)
            with lock:
                live.add(value)
                most[0] = max(most[0], len(live))
            return value

        with cache.lease(key, compute) as value:
            time.sleep(0.01)
            assert value.key == key

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(use, range(16)))
    assert most[0] == 2
    assert len(cache) == 2


def test_a_failed_lease_unpins_and_the_next_one_computes_again():
    cache: BoundedCache[str, int] = BoundedCache(1)

    def boom():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"), cache.lease("a", boom):
        pass
    with cache.lease("b", lambda: 2) as value:
        assert value == 2
    with cache.lease("a", lambda: 1) as value:
        assert value == 1
    assert "b" not in cache and cache.computations == 3
