"""A video file's frame times, read from its container with PyAV, and whether they vary.

Only the packets are read (demuxed), nothing is decoded: about as long as reading the file.
Presentation times are the packets' pts in presentation order (sorted), in the stream's time
base; a stream is variable frame rate (VFR) when its frame durations differ by more than the
container's rounding of them to its time base (one tick: Matroska's millisecond ticks give a
29.97 fps stream 33 and 34 ms frames).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

# Output rates offered when a VFR source needs one.
COMMON_RATES = ("24000/1001", "30000/1001", "60000/1001", "60")
# Rounding a time to the container's time base moves it by at most half a tick each way, so
# two frame durations of a constant-rate stream differ by at most one tick.
ROUNDING_TICKS = 1


@dataclass(frozen=True)
class ContainerTimes:
    """The first video stream's frame times. ticks: every frame's pts, in presentation order;
    end: the last frame's pts plus its packet's duration, None when the container does not
    say it; time_base: seconds per tick."""

    ticks: tuple[int, ...]
    end: int | None
    time_base: Fraction

    @property
    def frames(self) -> int:
        return len(self.ticks)

    @property
    def durations(self) -> list[int]:
        ends = [*self.ticks[1:], *([] if self.end is None else [self.end])]
        return [b - a for a, b in zip(self.ticks, ends, strict=False)]

    @property
    def is_variable(self) -> bool:
        durations = self.durations
        return bool(durations) and max(durations) - min(durations) > ROUNDING_TICKS

    def seconds(self) -> list[Fraction]:
        """Every frame's start from the first frame's, in seconds, then the end of the last
        frame when the container gives it."""
        origin = self.ticks[0]
        ends = self.ticks if self.end is None else (*self.ticks, self.end)
        return [(tick - origin) * self.time_base for tick in ends]

    @property
    def average_rate(self) -> Fraction:
        """Frames per second over the stream (the last frame counted when its end is known)."""
        intervals = self.frames if self.end is not None else self.frames - 1
        last = self.end if self.end is not None else self.ticks[-1]
        span = (last - self.ticks[0]) * self.time_base
        return Fraction(intervals) / span if span > 0 else Fraction(0)


def read_times(path: str | Path) -> ContainerTimes | None:
    """The first video stream's frame times, or None when its packets carry no pts (raw
    streams) or there are fewer than two frames."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        time_base = Fraction(stream.time_base)
        packets = [
            (packet.pts, packet.duration or 0)
            for packet in container.demux(stream)
            if packet.size > 0  # not the demuxer's end marker
        ]
    if len(packets) < 2 or any(pts is None for pts, _ in packets):
        return None
    packets.sort()
    last, duration = packets[-1]
    ticks = tuple(pts for pts, _ in packets)
    return ContainerTimes(ticks, last + duration if duration > 0 else None, time_base)


def snap_to_rate(times: Sequence[Fraction], fps: Fraction, tick: Fraction) -> list[Fraction]:
    """``times`` with each one that lies within half a container tick of an output frame's
    time (a multiple of 1 / fps) moved onto it, so that a frame taken exactly there, which
    the container could only store rounded, is that output frame bit-exact rather than
    re-synthesised at t ~ 0.01. A move that would break the increasing order is skipped."""
    snapped: list[Fraction] = []
    for time in times:
        grid = Fraction(round(time * fps)) / fps
        moved = grid if abs(time - grid) * 2 <= tick else time
        if snapped and moved <= snapped[-1]:
            moved = time
        snapped.append(moved)
    return snapped


def rate_text(rate: Fraction) -> str:
    """NUM or NUM/DEN, as --fps takes it; rates that need a denominator above 1001 (a
    measured average) are rounded to the nearest with one up to 1001."""
    rate = rate.limit_denominator(1001)
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def duration_range(times: ContainerTimes) -> tuple[Fraction, Fraction]:
    """The shortest and the longest frame, in seconds."""
    durations = times.durations
    return min(durations) * times.time_base, max(durations) * times.time_base


def trimmed(times: Sequence[Fraction], first: int, end: int) -> list[Fraction]:
    """The timeline of source frames ``first .. end - 1``: their starts from frame
    ``first``'s, and the end of the last one when it is known (the next frame's start, or
    the stream's end)."""
    inside = list(itertools.islice(times, first, end + 1))
    return [time - inside[0] for time in inside]
