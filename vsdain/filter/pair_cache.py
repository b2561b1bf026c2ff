"""Runs DAIN for the filter so that each frame's and each pair's work is done once.

Two bounded caches:

- per-frame features (depth, context, flow pyramid), keyed by source index: the second
  frame of one pair is the first frame of the next, so two entries cover sequential playback;
- per-pair features (flow both ways, the two kernel sets), keyed by the pair's two source
  indices ``(first, second)``: computed once, then every timestamp of the pair reuses them.
  Pairs are leased (:meth:`BoundedCache.lease`): the pairs being computed, being synthesised
  from and kept for later together never exceed ``PAIR_CAPACITY``, however many of
  VapourSynth's threads ask for distinct pairs at once; the others wait their turn. Memory
  is therefore bounded by design, not by the order of requests.

Timestamps are synthesised on demand, one per request: the first frame of a pair comes after
one synthesis whatever ``multi`` is, and nothing but the features stays in memory. VapourSynth
keeps its own cache of finished output frames.

All tensor work runs on one worker thread per cache, which VapourSynth's threads hand it to
and wait on: on the CPU concurrent calls would only compete for the same cores, on a GPU for
memory, and with glibc every thread that allocates large tensors grows its own malloc arena,
so peak memory would rise with ``core.num_threads`` (see README, "Speed and memory"). The
network also runs under a lock, so a wrapper that calls :meth:`PairCache._synthesize` from
another thread stays safe. Threads that need something another thread is computing wait for it
(see :class:`BoundedCache`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
import torch
import vapoursynth as vs

from ..model import DAIN, FrameFeatures, Padding, PairFeatures
from ..model.tiling import TilePlan
from .cache import BoundedCache
from .frames import frame_to_tensor, tensor_to_planes

# A pair's two frames: the second one is the next pair's first one.
FRAME_CAPACITY = 2
# The pair being played and the next one. Each entry also keeps its two frames' features
# alive, so more entries cost frame features (0.8 GB each at 1280x720), not just flow and
# kernels; a pair evicted and asked for again is recomputed, with identical results.
PAIR_CAPACITY = 2

Pair = tuple[int, int]


class PairCache:
    """Interpolated frames for one clip.

    model: a DAIN in eval mode on ``device`` with parameters of ``dtype``; padding: the clip's
    :class:`Padding`; sample_type: numpy dtype of the output frames (float32 or float16);
    pair_capacity: how many pairs' features to keep; tiles: how each timestamp is split
    (default: automatic, see :class:`vsdain.model.tiling.TilePlan`).
    """

    def __init__(
        self,
        model: DAIN,
        padding: Padding,
        *,
        device: torch.device,
        dtype: torch.dtype,
        sample_type: np.dtype,
        pair_capacity: int = PAIR_CAPACITY,
        tiles: TilePlan | None = None,
    ) -> None:
        self.model = model
        self.padding = padding
        self.device = device
        self.dtype = dtype
        self.sample_type = np.dtype(sample_type)
        self.tiles = TilePlan() if tiles is None else tiles
        self.features: BoundedCache[int, FrameFeatures] = BoundedCache(FRAME_CAPACITY)
        self.pairs: BoundedCache[Pair, PairFeatures] = BoundedCache(pair_capacity)
        self._model_lock = threading.Lock()
        # The worker thread ends by itself once the cache is garbage-collected.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vsdain-model")

    def interpolated(
        self,
        first: int,
        second: int,
        t: Fraction,
        first_frame: vs.VideoFrame,
        second_frame: vs.VideoFrame,
    ) -> np.ndarray:
        """The frame at ``t`` between source frames ``first`` and ``second`` as (3, H, W)
        planes of ``sample_type``, clamped to [0, 1].

        t: in (0, 1), 0 being ``first`` and 1 ``second``; first_frame / second_frame: the two
        source frames (used only when their features are not cached).
        """
        if not first < second:
            raise ValueError(f"a pair needs first < second, got ({first}, {second})")
        if not 0 < t < 1:
            raise ValueError(f"t must lie strictly between 0 and 1, got {t}")
        compute = functools.partial(self._pair_features, first, second, first_frame, second_frame)
        with self.pairs.lease((first, second), compute) as pair:
            return self._on_worker(self._synthesize, pair, t)

    def _on_worker[R](self, work: Callable[..., R], *args: object) -> R:
        """Runs ``work(*args)`` on the worker thread and waits; its exception is re-raised."""
        return self._worker.submit(work, *args).result()

    def _pair_features(
        self, first: int, second: int, first_frame: vs.VideoFrame, second_frame: vs.VideoFrame
    ) -> PairFeatures:
        # The frame features are fetched here, not on the worker: waiting for another
        # thread's computation on the one thread that would run it would deadlock.
        first_features = self.features.get(
            first, lambda: self._on_worker(self._frame_features, first_frame)
        )
        second_features = self.features.get(
            second, lambda: self._on_worker(self._frame_features, second_frame)
        )
        return self._on_worker(self._pair, first_features, second_features)

    def _frame_features(self, frame: vs.VideoFrame) -> FrameFeatures:
        image = frame_to_tensor(frame, device=self.device, dtype=self.dtype)
        with self._model_lock, torch.inference_mode():
            return self.model.frame_features(self.padding.pad(image))

    def _pair(self, first: FrameFeatures, second: FrameFeatures) -> PairFeatures:
        with self._model_lock, torch.inference_mode():
            return self.model.pair_features(first, second)

    def _synthesize(self, pair: PairFeatures, t: Fraction) -> np.ndarray:
        """One timestamp of a pair: (3, H, W) planes of ``sample_type`` in [0, 1]."""
        with self._model_lock, torch.inference_mode():
            synthesis = self.tiles.synthesize(self.model, pair, float(t))
            image = self.padding.crop(synthesis.output).clamp(0.0, 1.0)
            return tensor_to_planes(image, self.sample_type)
