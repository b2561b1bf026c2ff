"""Memory on a device: how much is free, and the peak of one measured stretch of work.

On a GPU the peak is PyTorch's own count of the bytes its tensors hold. On the CPU PyTorch
keeps no such count, so the process's resident memory is sampled by a thread every few
milliseconds and the peak above the level at the start is taken: that includes VapourSynth's
frames and anything else the work allocates, which is what a user pays. Each stretch is
measured on its own, so peaks of stretches run one after another do not mix. Used by the
filter's automatic tile choice and by the benchmark.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
import threading
import time
from types import TracebackType

import torch

SAMPLE_INTERVAL_S = 0.002
_STATM = "/proc/self/statm"
_MEMINFO = "/proc/meminfo"


def available_bytes(device: torch.device) -> int | None:
    """Memory a new allocation on ``device`` can still get: CUDA's free memory plus what
    PyTorch's caching allocator holds unused; on the CPU the kernel's MemAvailable. None where
    the system does not say."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    try:
        with open(_MEMINFO, encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def release_unused(device: torch.device) -> None:
    """Give memory that nothing uses back: collected garbage, PyTorch's CUDA cache, and on
    the CPU glibc's free heap pages (so the resident size shows what is really in use)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    else:
        trim = _malloc_trim()
        if trim is not None:
            trim(0)


@functools.cache
def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def resident_bytes() -> int | None:
    """The process's resident set size, or None where the OS does not say (non-Linux)."""
    try:
        with open(_STATM, encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class PeakMemory:
    """``with PeakMemory(device) as peak: ...`` then ``peak.bytes``: the most memory in use
    during the block above what was in use when it began (None if it cannot be measured)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.bytes: int | None = None
        self._baseline = 0
        self._highest = 0
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        release_unused(self.device)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._baseline = torch.cuda.memory_allocated(self.device)
            return self
        baseline = resident_bytes()
        if baseline is not None:
            self._baseline = self._highest = baseline
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            current = resident_bytes() or 0
            self._highest = max(self._highest, current)
            time.sleep(SAMPLE_INTERVAL_S)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self._baseline
            return
        if self._sampler is None:
            return
        self._stop.set()
        self._sampler.join()
        self._highest = max(self._highest, resident_bytes() or 0)
        self.bytes = self._highest - self._baseline
