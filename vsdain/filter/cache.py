"""A small thread-safe LRU cache that computes each key at most once at a time.

VapourSynth asks for frames from several threads and not always in order. Two threads
that need the same source frame's features (or the same pair) must not both compute them:
the second one waits for the first one's result. Pure Python; no VapourSynth or torch.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager


class BoundedCache[K: Hashable, V]:
    """At most ``capacity`` finished values, least recently used evicted first, plus the
    values being computed right now (one per key, shared by every thread that asks).

    ``compute`` runs in the asking thread without the cache's lock held, so it may itself use
    other caches; a failed computation raises in every waiting thread and is not stored, so
    the next request tries again.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._values: OrderedDict[K, V] = OrderedDict()
        self._in_flight: dict[K, Future[V]] = {}
        self._pins: Counter[K] = Counter()
        self.computations = 0  # how many times compute ran (for tests and diagnostics)

    def get(self, key: K, compute: Callable[[], V]) -> V:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            pending = self._in_flight.get(key)
            if pending is None:
                pending = Future()
                self._in_flight[key] = pending
                owner = True
                self.computations += 1
            else:
                owner = False
        if not owner:
            return pending.result()
        try:
            value = compute()
        except BaseException as error:
            with self._lock:
                del self._in_flight[key]
            pending.set_exception(error)
            raise
        with self._lock:
            del self._in_flight[key]
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.capacity:
                self._values.popitem(last=False)
        pending.set_result(value)
        return value

    @contextmanager
    def lease(self, key: K, compute: Callable[[], V]) -> Iterator[V]:
        """``with cache.lease(key, compute) as value:``: the value, pinned for the block.

        Unlike :meth:`get`, a lease bounds what is alive, not only what is stored: finished,
        pinned and in-flight values together never exceed ``capacity``. A new key waits until
        an unpinned value can be evicted, so however many threads ask for distinct keys at
        once, at most ``capacity`` values exist. Use one cache either with leases or with
        :meth:`get`, not both. A thread must not take a second lease while it holds one.
        """
        with self._changed:
            owner = False
            while True:
                if key in self._values:
                    self._values.move_to_end(key)
                    pending: Future[V] = Future()
                    pending.set_result(self._values[key])
                    break
                if key in self._in_flight:
                    pending = self._in_flight[key]
                    break
                if self._make_room():
                    pending = self._in_flight[key] = Future()
                    owner = True
                    self.computations += 1
                    break
                self._changed.wait()
            self._pins[key] += 1
        try:
            if owner:
                self._compute(key, pending, compute)
            yield pending.result()
        finally:
            with self._changed:
                self._pins[key] -= 1
                if not self._pins[key]:
                    del self._pins[key]
                self._changed.notify_all()

    def _make_room(self) -> bool:
        """With the lock held: whether one more value fits, evicting the least recently used
        unpinned value if need be."""
        if len(self._values) + len(self._in_flight) < self.capacity:
            return True
        unpinned = next((key for key in self._values if not self._pins[key]), None)
        if unpinned is None:
            return False
        del self._values[unpinned]
        return True

    def _compute(self, key: K, pending: Future[V], compute: Callable[[], V]) -> None:
        try:
            value = compute()
        except BaseException as error:
            with self._changed:
                del self._in_flight[key]
            pending.set_exception(error)
            return
        with self._changed:
            del self._in_flight[key]
            self._values[key] = value
        pending.set_result(value)

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._values
