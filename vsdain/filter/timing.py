"""Exact frame-rate arithmetic: which source pair and which timestamp each output frame gets.

Pure Python (no VapourSynth, no torch), so the rules can be tested on their own. Positions
are :class:`fractions.Fraction` throughout: 24000/1001 -> 60000/1001 must land on exactly
the same source frame every 5 output frames, forever, which floating point cannot promise.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

# std.SelectEvery rejects a cycle of 1, so a cycle of one source frame is written as two.
MIN_SELECT_CYCLE = 2


@dataclass(frozen=True)
class Slot:
    """Where one output frame sits on the source timeline.

    left: index of the source frame at or before it; t: position after ``left`` in source
    frame periods, 0 <= t < 1 (0 means the output frame *is* source frame ``left``).
    """

    left: int
    t: Fraction

    @property
    def is_source(self) -> bool:
        return self.t == 0


@dataclass(frozen=True)
class FrameTiming:
    """The mapping from output frame indices to source positions.

    Output frame i sits at source position ``i * source_fps / output_fps`` (duration
    preserving). The output has ``ceil(source_length * output_fps / source_fps)`` frames, so
    it lasts as long as the source: with ``multi`` it has exactly ``source_length * multi``.
    Slots after the last source frame (left = source_length - 1, t > 0) have no right
    neighbour; the filter repeats the last frame there.

    timestamps: for a variable-frame-rate source, the start time in seconds of every source
    frame and then the end of the last one (source_length + 1 increasing entries; build with
    :meth:`from_timeline`). Output frame i is then at time ``timestamps[0] + i / output_fps``,
    and its position between the source frames a and a + 1 around that time is
    a + (time - timestamps[a]) / (timestamps[a + 1] - timestamps[a]). The output has
    ``ceil(duration * output_fps)`` frames; source_fps is the average rate. None: constant
    rate, as above.
    """

    source_length: int
    source_fps: Fraction
    output_fps: Fraction
    timestamps: tuple[Fraction, ...] | None = None

    def __post_init__(self) -> None:
        if self.source_length < 1:
            raise ValueError(f"source_length must be positive, got {self.source_length}")
        if self.source_fps <= 0 or self.output_fps <= 0:
            raise ValueError(
                f"frame rates must be positive, got {self.source_fps} -> {self.output_fps}"
            )
        times = self.timestamps
        if times is not None:
            if len(times) != self.source_length + 1:
                raise ValueError(
                    f"a timeline of {self.source_length} frames needs "
                    f"{self.source_length + 1} times (starts and the end), got {len(times)}"
                )
            if any(b <= a for a, b in itertools.pairwise(times)):
                raise ValueError("the times of a timeline must increase")

    @classmethod
    def from_multi(cls, source_length: int, source_fps: Fraction, multi: int) -> FrameTiming:
        return cls(source_length, Fraction(source_fps), Fraction(source_fps) * multi)

    @classmethod
    def from_timeline(cls, times: Sequence[Fraction], output_fps: Fraction) -> FrameTiming:
        """A variable-frame-rate timing: ``times`` are the source frames' start times and the
        end of the last frame, in seconds (see the class docstring)."""
        times = tuple(Fraction(time) for time in times)
        length = len(times) - 1
        average = length / (times[-1] - times[0]) if length > 0 else Fraction(1)
        return cls(length, average, Fraction(output_fps), times)

    @property
    def step(self) -> Fraction:
        """Source frame periods per output frame (source_fps / output_fps), in lowest terms."""
        return self.source_fps / self.output_fps

    @property
    def output_length(self) -> int:
        if self.timestamps is not None:
            return math.ceil((self.timestamps[-1] - self.timestamps[0]) * self.output_fps)
        return math.ceil(self.source_length / self.step)

    @property
    def span(self) -> int:
        """The most source frames between the positions of two consecutive output frames,
        rounded up (ceil(step) at a constant rate)."""
        if self.timestamps is None:
            return math.ceil(self.step)
        shortest = min(b - a for a, b in itertools.pairwise(self.timestamps))
        return math.ceil(1 / (self.output_fps * shortest)) + 1

    def position(self, n: int) -> Fraction:
        """Output frame n's position on the source timeline, in source frames (any n >= 0;
        past the end it extends the last frame's rate)."""
        times = self.timestamps
        if times is None:
            return n * self.step
        time = times[0] + n / self.output_fps
        left = min(max(bisect.bisect_right(times, time) - 1, 0), self.source_length - 1)
        return left + (time - times[left]) / (times[left + 1] - times[left])

    @property
    def output_duration(self) -> Fraction:
        """Duration of every output frame in seconds (1 / output_fps)."""
        return 1 / self.output_fps

    def between(self, n: int, first: int, second: int) -> Fraction:
        """Where output frame n lies between source frames first < second, 0 at first and 1 at
        second: in time, so that with a timeline a pair spanning frames of unequal durations
        is interpolated at the true moment."""
        if self.timestamps is None:
            return (self.position(n) - first) / (second - first)
        times = self.timestamps
        return (times[0] + n / self.output_fps - times[first]) / (times[second] - times[first])

    def timestamps_between(self, first: int, second: int) -> list[Fraction]:
        """t (see :meth:`between`) of every output frame strictly between source frames first
        < second, in order: the timestamps a pair is asked for when nothing between its frames
        is kept."""
        outputs = range(self.output_length)
        start = bisect.bisect_right(outputs, first, key=self.position)
        end = bisect.bisect_left(outputs, second, key=self.position)
        return [self.between(n, first, second) for n in range(start, end)]

    def slot(self, n: int) -> Slot:
        if not 0 <= n < self.output_length:
            raise IndexError(f"output frame {n} is outside 0..{self.output_length - 1}")
        position = self.position(n)
        left = math.floor(position)
        return Slot(left, position - left)

    def select_every(self) -> tuple[int, list[int]]:
        """``std.SelectEvery`` arguments (cycle, offsets) that turn a source-length clip into
        an output-length clip whose frame n is source frame ``slot(n).left``.

        With step a/b in lowest terms, every a source frames give b output frames, and output
        k of a cycle takes source offset floor(k * a / b). A partial last cycle keeps the
        offsets that exist, which is exactly ``output_length`` frames because the offsets
        ascend. With a timeline the mapping has no period: one cycle of the whole source, with
        one offset per output frame.
        """
        if self.timestamps is not None:
            cycle = max(self.source_length, MIN_SELECT_CYCLE)
            return cycle, [self.slot(n).left for n in range(self.output_length)]
        source_per_cycle, outputs_per_cycle = self.step.numerator, self.step.denominator
        repeat = 1 if source_per_cycle >= MIN_SELECT_CYCLE else MIN_SELECT_CYCLE
        cycle, outputs = source_per_cycle * repeat, outputs_per_cycle * repeat
        return cycle, [k * cycle // outputs for k in range(outputs)]
