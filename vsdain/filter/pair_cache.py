"""Runs DAIN for the filter so that each frame's and each pair's work is done once.

Two bounded caches, both keyed by source frame index:

- per-frame features (depth, context, flow pyramid): the right frame of pair k is the left
  frame of pair k + 1, so two entries cover sequential playback;
- per-pair results: when the first output frame of a pair is asked for, the pair's flow and
  kernels are computed once and every timestamp of the pair is synthesised from them at once.
  Each finished frame is handed out once and then dropped (VapourSynth keeps its own cache of
  output frames), so unrequested results are all that stays in memory. If VapourSynth asks
  for a frame a second time, the pair is computed again, with identical results.

The network itself runs under one lock: on the CPU concurrent calls would only compete for
the same cores, and on a GPU they would compete for memory. Threads that need something
another thread is computing wait for it (see :class:`BoundedCache`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import torch
import vapoursynth as vs

from ..model import DAIN, FrameFeatures, Padding
from .cache import BoundedCache
from .frames import frame_to_tensor, tensor_to_planes

# A pair's two frames: the right one is the next pair's left one.
FRAME_CAPACITY = 2
# Unserved pair results kept; more threads can be between the two slots of more pairs.
MIN_PAIR_CAPACITY = 2

PairResults = dict[Fraction, np.ndarray]


class PairCache:
    """Interpolated frames for one clip.

    model: a DAIN in eval mode on ``device`` with parameters of ``dtype``; padding: the clip's
    :class:`Padding`; sample_type: numpy dtype of the output frames (float32 or float16);
    pair_capacity: how many pairs' unserved results to keep (VapourSynth's thread count is
    a good value).
    """

    def __init__(
        self,
        model: DAIN,
        padding: Padding,
        *,
        device: torch.device,
        dtype: torch.dtype,
        sample_type: np.dtype,
        pair_capacity: int = MIN_PAIR_CAPACITY,
    ) -> None:
        self.model = model
        self.padding = padding
        self.device = device
        self.dtype = dtype
        self.sample_type = np.dtype(sample_type)
        self.features: BoundedCache[int, FrameFeatures] = BoundedCache(FRAME_CAPACITY)
        self.pairs: BoundedCache[int, PairResults] = BoundedCache(
            max(MIN_PAIR_CAPACITY, pair_capacity)
        )
        self._model_lock = threading.Lock()
        self._results_lock = threading.Lock()

    def interpolated(
        self,
        left: int,
        t: Fraction,
        timestamps: Sequence[Fraction],
        left_frame: vs.VideoFrame,
        right_frame: vs.VideoFrame,
    ) -> np.ndarray:
        """The frame at ``t`` between source frames ``left`` and ``left + 1`` as (3, H, W)
        planes of ``sample_type``, clamped to [0, 1].

        timestamps: every t of the pair that the output needs (``t`` among them), all in
        (0, 1); left_frame / right_frame: the two source frames (used only when their features
        are not cached).
        """
        if t not in timestamps:
            raise ValueError(f"t = {t} is not among the pair's timestamps {list(timestamps)}")
        while True:
            results = self.pairs.get(
                left, lambda: self._compute_pair(left, timestamps, left_frame, right_frame)
            )
            with self._results_lock:
                planes = results.pop(t, None)
                if not results:
                    self.pairs.discard(left, results)
            if planes is not None:
                return planes
            # Handed out before and asked for again: forget the pair and compute it afresh.
            self.pairs.discard(left, results)

    def _frame_features(self, frame: vs.VideoFrame) -> FrameFeatures:
        image = frame_to_tensor(frame, device=self.device, dtype=self.dtype)
        with self._model_lock, torch.inference_mode():
            return self.model.frame_features(self.padding.pad(image))

    def _compute_pair(
        self,
        left: int,
        timestamps: Sequence[Fraction],
        left_frame: vs.VideoFrame,
        right_frame: vs.VideoFrame,
    ) -> PairResults:
        # Features are fetched without the model lock held: waiting for another thread's
        # computation while holding it would deadlock.
        first = self.features.get(left, lambda: self._frame_features(left_frame))
        second = self.features.get(left + 1, lambda: self._frame_features(right_frame))
        results: PairResults = {}
        with self._model_lock, torch.inference_mode():
            pair = self.model.pair_features(first, second)
            for t in timestamps:
                synthesis = self.model.synthesize(pair, float(t))
                image = self.padding.crop(synthesis.output).clamp(0.0, 1.0)
                results[t] = tensor_to_planes(image, self.sample_type)
        return results
