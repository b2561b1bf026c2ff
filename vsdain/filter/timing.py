"""Exact frame-rate arithmetic: which source pair and which timestamp each output frame gets.

Pure Python (no VapourSynth, no torch), so the rules can be tested on their own. Positions
are :class:`fractions.Fraction` throughout: 24000/1001 -> 60000/1001 must land on exactly
the same source frame every 5 output frames, forever, which floating point cannot promise.
"""

from __future__ import annotations

import math
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
    """

    source_length: int
    source_fps: Fraction
    output_fps: Fraction

    def __post_init__(self) -> None:
        if self.source_length < 1:
            raise ValueError(f"source_length must be positive, got {self.source_length}")
        if self.source_fps <= 0 or self.output_fps <= 0:
            raise ValueError(
                f"frame rates must be positive, got {self.source_fps} -> {self.output_fps}"
            )

    @classmethod
    def from_multi(cls, source_length: int, source_fps: Fraction, multi: int) -> FrameTiming:
        return cls(source_length, Fraction(source_fps), Fraction(source_fps) * multi)

    @property
    def step(self) -> Fraction:
        """Source frame periods per output frame (source_fps / output_fps), in lowest terms."""
        return self.source_fps / self.output_fps

    @property
    def output_length(self) -> int:
        return math.ceil(self.source_length / self.step)

    @property
    def output_duration(self) -> Fraction:
        """Duration of every output frame in seconds (1 / output_fps)."""
        return 1 / self.output_fps

    def slot(self, n: int) -> Slot:
        if not 0 <= n < self.output_length:
            raise IndexError(f"output frame {n} is outside 0..{self.output_length - 1}")
        position = n * self.step
        left = math.floor(position)
        return Slot(left, position - left)

    def select_every(self) -> tuple[int, list[int]]:
        """``std.SelectEvery`` arguments (cycle, offsets) that turn a source-length clip into
        an output-length clip whose frame n is source frame ``slot(n).left``.

        With step a/b in lowest terms, every a source frames give b output frames, and output
        k of a cycle takes source offset floor(k * a / b). A partial last cycle keeps the
        offsets that exist, which is exactly ``output_length`` frames because the offsets
        ascend.
        """
        source_per_cycle, outputs_per_cycle = self.step.numerator, self.step.denominator
        repeat = 1 if source_per_cycle >= MIN_SELECT_CYCLE else MIN_SELECT_CYCLE
        cycle, outputs = source_per_cycle * repeat, outputs_per_cycle * repeat
        return cycle, [k * cycle // outputs for k in range(outputs)]
