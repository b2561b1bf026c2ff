"""Peak memory of one measured stretch of work.

On a GPU this is PyTorch's own count of the bytes its tensors hold at the peak. On the CPU
PyTorch keeps no such count, so the process's resident memory is sampled by a thread every
few milliseconds and the peak above the level at the start is taken: that includes
VapourSynth's frames and anything else the work allocates, which is what a user pays. Each
stretch is measured on its own, so peaks of configurations run one after another do not mix.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from types import TracebackType

import torch

SAMPLE_INTERVAL_S = 0.002
_STATM = "/proc/self/statm"


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
        gc.collect()
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
