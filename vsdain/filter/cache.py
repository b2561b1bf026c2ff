"""A small thread-safe LRU cache that computes each key at most once at a time.

VapourSynth asks for frames from several threads and not always in order. Two threads
that need the same source frame's features (or the same pair) must not both compute them:
the second one waits for the first one's result. Pure Python; no VapourSynth or torch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future


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
        self._values: OrderedDict[K, V] = OrderedDict()
        self._in_flight: dict[K, Future[V]] = {}
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

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._values
