"""Splitting the output node's frames into chunks of consecutive frames.

A chunk boundary costs recomputation: a worker starting at output frame n must compute the
features of the source frames around n that the previous chunk also computed. The cheapest
places, in order:

1. The first output frame after a scene cut. The pair across a cut is never interpolated,
   so neither chunk computes anything the other needs: no recomputation at all.
2. An output frame that is a source frame (t = 0: every ``multi``-th frame at a constant
   rate). The next chunk needs that source frame's features for the pair after it; the
   previous chunk computed them for the pair before it: one frame's features are computed
   twice.
3. Anywhere else (inside a pair): both chunks compute the pair's two frames' features and
   the pair's flow and kernels.

Each nominal boundary (every ``chunk_frames`` frames) moves to the best place within
``window`` frames of it, the nearest one among equals.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction

# Seconds of output per chunk by default: long enough that a chunk's start-up (loading the
# network, one frame's features) is small next to its work, short enough that a lost chunk
# costs little and many workers stay busy on a short clip.
DEFAULT_CHUNK_SECONDS = 4
# A boundary may move by up to this fraction of a chunk to reach a cheaper place.
WINDOW_FRACTION = 0.25

CUT, SOURCE_FRAME, ANYWHERE = 0, 1, 2  # boundary costs, cheapest first


@dataclass(frozen=True)
class Chunk:
    """Output frames ``start`` to ``end - 1`` of the rendered node."""

    index: int
    start: int
    end: int

    @property
    def frames(self) -> int:
        return self.end - self.start

    @property
    def name(self) -> str:
        return f"chunk-{self.index:05d}-{self.start}-{self.end}"


def default_chunk_frames(fps: float) -> int:
    return max(1, round(DEFAULT_CHUNK_SECONDS * fps))


def plan_chunks(
    total: int,
    chunk_frames: int,
    *,
    cost: Callable[[Iterable[int]], dict[int, int]] | None = None,
    window: int | None = None,
) -> list[Chunk]:
    """Chunks covering output frames 0..total - 1 in order.

    cost: given candidate boundary frames, the cost class (CUT, SOURCE_FRAME) of those that
    are cheaper than ANYWHERE; None places boundaries exactly every ``chunk_frames``.
    window: how far a boundary may move (default a quarter of a chunk).
    """
    if total < 1 or chunk_frames < 1:
        raise ValueError(f"need total >= 1 and chunk_frames >= 1, got {total}, {chunk_frames}")
    if window is None:
        window = int(chunk_frames * WINDOW_FRACTION)
    boundaries = [0]
    nominal = chunk_frames
    while nominal < total:
        low = max(boundaries[-1] + 1, nominal - window)
        high = min(total - 1, nominal + window)
        candidates = range(low, high + 1)
        costs = cost(candidates) if cost is not None and window > 0 else {}
        best = min(candidates, key=lambda n: (costs.get(n, ANYWHERE), abs(n - nominal), n))
        boundaries.append(best)
        nominal = best + chunk_frames
    boundaries.append(total)
    pairs = itertools.pairwise(boundaries)
    return [Chunk(i, start, end) for i, (start, end) in enumerate(pairs)]


def boundary_costs(
    position: Callable[[int], Fraction], is_cut: Callable[[int], bool]
) -> Callable[[Iterable[int]], dict[int, int]]:
    """The ``cost`` for an interpolated file: ``position(n)`` is output frame n's position
    on the source timeline in source frames (n * source_fps / output_fps at a constant
    rate; the filter's :meth:`vsdain.filter.timing.FrameTiming.position`, which also covers
    a variable-rate timeline); ``is_cut(k)`` says whether there is a scene cut between
    source frames k and k + 1.

    A chunk starting at n inside or at the start of a cut pair k needs no features of
    frame k (nothing is synthesised there); one starting at source frame k + 1 after a cut
    needs none the previous chunk made either.
    """

    def cost(candidates: Iterable[int]) -> dict[int, int]:
        costs = {}
        for n in candidates:
            place = position(n)
            left = math.floor(place)
            on_source = place == left
            if is_cut(left) or (on_source and left > 0 and is_cut(left - 1)):
                costs[n] = CUT
            elif on_source:
                costs[n] = SOURCE_FRAME
        return costs

    return cost
