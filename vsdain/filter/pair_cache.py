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

Timestamps are synthesised on demand. By default on the CPU each request synthesises its own
timestamp, so the first frame of a pair comes after one synthesis whatever ``multi`` is, and
nothing but the features stays in memory; VapourSynth keeps its own cache of finished output
frames. Given the timestamps each pair will be asked for (``timestamps_of``), a request can
instead synthesise its pair's other pending timestamps with it, as one batch of the synthesis
network (:meth:`vsdain.model.DAIN.synthesize_timestamps`, equal to one by one), and keep those
frames until they are asked for or their pair leaves the cache. That is the default on a GPU,
where a larger batch keeps more of it busy; on the CPU it saves nothing measurable (README,
"Speed and memory") and multiplies the per-timestamp memory. A batch is made only when one
timestamp fits untiled and the batch fits the same memory budget the tiles are chosen from
(:class:`vsdain.model.tiling.TilePlan`), from one measurement of the per-pixel cost; a batch
that runs out of memory anyway is redone one by one, and batching stops for the clip.

On a GPU the transfers overlap the compute (see :mod:`.transfer`): the worker queues a
request's work and returns a pending download, which the asking thread waits for, and
``torch.backends.cudnn.benchmark`` is turned on (for the process) once the tile size is chosen:
a clip's shapes are fixed, so each convolution's fastest algorithm is searched for once. It is
turned on only then because the search's scratch memory would count in the tile measurement.

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
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch
import vapoursynth as vs

from ..memory import release_unused
from ..model import DAIN, FrameFeatures, Padding, PairFeatures
from ..model.tiling import (
    SAFETY_FACTOR,
    TilePlan,
    held_bytes,
    is_out_of_memory,
    measure_pixel_cost,
)
from .cache import BoundedCache
from .transfer import PendingPlanes, Transfers, resolved

log = logging.getLogger(__name__)

# A pair's two frames: the second one is the next pair's first one.
FRAME_CAPACITY = 2
# The pair being played and the next one. Each entry also keeps its two frames' features
# alive, so more entries cost frame features (0.8 GB each at 1280x720), not just flow and
# kernels; a pair evicted and asked for again is recomputed, with identical results.
PAIR_CAPACITY = 2

# The most timestamps synthesised as one batch: it bounds the finished frames a pair keeps for
# later requests (one (3, H, W) float32 frame each, 24 MiB at 1920x1080).
MAX_TIMESTAMP_BATCH = 8
# What each further timestamp of a batch keeps whole-frame beside its work: the projected
# flows (2 + 2 channels), the blend and the output (3 + 3), as vsdain.model.tiling counts them.
WHOLE_FRAME_CHANNELS = 10

Pair = tuple[int, int]
Planes = np.ndarray | PendingPlanes


@dataclass
class _PairTimestamps:
    """One pair's timestamps, on the worker thread: finished by a batch and not yet asked
    for, and already handed out (never made again by a batch)."""

    finished: dict[Fraction, Planes] = field(default_factory=dict)
    delivered: set[Fraction] = field(default_factory=set)


class PairCache:
    """Interpolated frames for one clip.

    model: a DAIN in eval mode on ``device`` with parameters of ``dtype``; padding: the clip's
    :class:`Padding`; sample_type: numpy dtype of the output frames (float32 or float16);
    pair_capacity: how many pairs' features to keep; tiles: how each timestamp is split
    (default: automatic, see :class:`vsdain.model.tiling.TilePlan`); timestamps_of: for a
    pair ``(first, second)``, every t in (0, 1) it will be asked for, ascending (None: not
    known, each request synthesises its own timestamp); batch_timestamps: whether to
    synthesise a pair's pending timestamps as one batch where memory allows (None: on CUDA
    only; needs ``timestamps_of``).
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
        timestamps_of: Callable[[int, int], Sequence[Fraction]] | None = None,
        batch_timestamps: bool | None = None,
    ) -> None:
        self.model = model
        self.padding = padding
        self.device = device
        self.dtype = dtype
        self.sample_type = np.dtype(sample_type)
        self.tiles = TilePlan() if tiles is None else tiles
        self.features: BoundedCache[int, FrameFeatures] = BoundedCache(FRAME_CAPACITY)
        self.pairs: BoundedCache[Pair, PairFeatures] = BoundedCache(pair_capacity)
        self.timestamps_of = timestamps_of
        self.batch_timestamps = (
            device.type == "cuda" if batch_timestamps is None else bool(batch_timestamps)
        )
        self.batches = 0  # timestamp batches synthesised (for tests and diagnostics)
        self._model_lock = threading.Lock()
        self._transfers = Transfers(device)
        # Touched on the worker thread only.
        self._timestamps: dict[Pair, _PairTimestamps] = {}
        self._settled = False  # the first timestamp has run: tiles chosen, cost measured
        self._timestamp_cost: float | None = None  # bytes per padded pixel, with headroom
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
            # A GPU's download is waited for here, not on the worker, which meanwhile queues
            # the next request's work.
            return resolved(self._on_worker(self._planes, (first, second), pair, t))

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
        with self._model_lock, torch.inference_mode(), self._transfers.computing():
            image = self._transfers.upload(frame, self.dtype)
            return self.model.frame_features(self.padding.pad(image))

    def _pair(self, first: FrameFeatures, second: FrameFeatures) -> PairFeatures:
        with self._model_lock, torch.inference_mode(), self._transfers.computing():
            return self.model.pair_features(first, second)

    def _synthesize(self, pair: PairFeatures, t: Fraction) -> Planes:
        """One timestamp of a pair: (3, H, W) planes of ``sample_type`` in [0, 1] (on CUDA
        still being downloaded, see :mod:`.transfer`)."""
        with self._model_lock, torch.inference_mode(), self._transfers.computing():
            synthesis = self.tiles.synthesize(self.model, pair, float(t))
            image = self.padding.crop(synthesis.output).clamp(0.0, 1.0)
            return self._transfers.download(image, self.sample_type)

    # -- several timestamps of a pair at once (on the worker thread) --------------------------
    def _planes(self, key: Pair, pair: PairFeatures, t: Fraction) -> Planes:
        """t's planes: kept from an earlier batch, made in a new batch with the pair's other
        pending timestamps, or made alone."""
        record = None
        batch = [t]
        if self.batch_timestamps and self.timestamps_of is not None:
            self._forget_released_pairs()
            record = self._timestamps.setdefault(key, _PairTimestamps())
            if t in record.finished:
                record.delivered.add(t)
                return record.finished.pop(t)
            batch = self._batch(pair, t, self.timestamps_of(*key), record)
        planes = self._synthesize(pair, t) if len(batch) == 1 else self._batched(key, pair, batch)
        if record is not None:
            record.delivered.add(t)
        if not self._settled:
            self._settle(pair, t)
        return planes

    def _forget_released_pairs(self) -> None:
        # A pair's kept frames go with its features: once the cache has let the pair go.
        for key in [key for key in self._timestamps if key not in self.pairs]:
            del self._timestamps[key]

    def _batch(
        self,
        pair: PairFeatures,
        t: Fraction,
        timestamps: Sequence[Fraction],
        record: _PairTimestamps,
    ) -> list[Fraction]:
        """t and as many of the pair's other ``timestamps`` not yet made as memory allows."""
        size = self._batch_size(pair)
        if size < 2:
            return [t]
        pending = [
            other
            for other in timestamps
            if 0 < other < 1
            and other != t
            and other not in record.delivered
            and other not in record.finished
        ]
        return [t, *pending[: size - 1]]

    def _may_batch(self) -> bool:
        # One timestamp must fit the whole frame, and the tiles must not be forced: a forced
        # tile asks for little memory, and a tiled timestamp's result differs from a whole-frame
        # one by float rounding.
        return self._settled and self.tiles.requested in (None, 0) and self.tiles.current is None

    def _batch_size(self, pair: PairFeatures) -> int:
        """How many timestamps of ``pair`` fit the budget at once (1: no batch)."""
        if self._timestamp_cost is None or not self._may_batch():
            return 1
        batch, _, height, width = pair.flow_forward.shape
        pixels = batch * height * width
        whole_frame = WHOLE_FRAME_CHANNELS * pair.flow_forward.element_size()
        per_timestamp = pixels * (self._timestamp_cost + whole_frame)
        budget = self.tiles.budget(self.device, held=held_bytes(pair))
        if budget is None:
            return 1
        return max(1, min(MAX_TIMESTAMP_BATCH, int(budget // per_timestamp)))

    def _batched(self, key: Pair, pair: PairFeatures, batch: list[Fraction]) -> Planes:
        """Synthesises ``batch`` (its first timestamp is the one asked for) as one batch and
        keeps the others' planes; one by one if the batch runs out of memory."""
        try:
            with self._model_lock, torch.inference_mode(), self._transfers.computing():
                syntheses = self.model.synthesize_timestamps(pair, [float(t) for t in batch])
                planes = [
                    self._transfers.download(
                        self.padding.crop(synthesis.output).clamp(0.0, 1.0), self.sample_type
                    )
                    for synthesis in syntheses
                ]
                del syntheses
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            failed = error.with_traceback(None)  # its frames hold the batch's tensors
        else:
            self.batches += 1
            record = self._timestamps[key]
            record.finished.update(zip(batch[1:], planes[1:], strict=True))
            return planes[0]
        release_unused(self.device)
        log.warning(
            "out of memory synthesising %d timestamps as one batch (%s); synthesising one at a "
            "time from now on",
            len(batch),
            failed,
        )
        self._timestamp_cost = None
        return self._synthesize(pair, batch[0])

    def _settle(self, pair: PairFeatures, t: Fraction) -> None:
        """After the clip's first timestamp (the tile size is chosen then): measures what a
        timestamp costs for the batches, and turns on cuDNN's algorithm search on a GPU."""
        self._settled = True
        if self.batch_timestamps and self.timestamps_of is not None and self._may_batch():
            try:
                with self._model_lock, torch.inference_mode(), self._transfers.computing():
                    cost = measure_pixel_cost(self.model, pair, float(t))
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                release_unused(self.device)
                log.warning("out of memory measuring a timestamp's cost; no timestamp batches")
            else:
                self._timestamp_cost = cost * SAFETY_FACTOR
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
