"""A variable-frame-rate source's timeline: when each source frame starts, exactly.

Three ways to give it (``Interpolate(timeline=...)``):

- a timecodes file in the v2 format mkvtoolnix writes (``mkvextract timestamps_v2``) and
  encoders read: the line ``# timecode format v2`` (or ``timestamp``), then one timestamp in
  milliseconds a line, decimals allowed (``33.367``), read as exact decimals;
- a sequence of start times in seconds (ints, :class:`fractions.Fraction`, floats, taken as
  the decimal they print as, or decimal strings);
- ``"durations"``: the frames' own ``_DurationNum``/``_DurationDen``, which bestsource and
  most source filters set from the container. Reading them costs a pass over the clip: every
  frame is requested once when the filter is built (decoded, for a video file).

A file or sequence holds one entry per source frame, optionally followed by one more, the end
of the last frame; without it the last frame lasts as long as the one before it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import vapoursynth as vs

DURATIONS = "durations"
V2_HEADERS = ("# timecode format v2", "# timestamp format v2")


class TimelineError(ValueError):
    """A timeline that cannot be used; the message names the line or entry and the fix."""


def read_timeline(timeline: object, clip: vs.VideoNode) -> tuple[Fraction, ...]:
    """The start of every source frame of ``clip`` and the end of the last one, in seconds
    (num_frames + 1 increasing times)."""
    if isinstance(timeline, str) and timeline == DURATIONS:
        return _from_durations(clip)
    if isinstance(timeline, str | os.PathLike):
        times, where = _from_file(Path(timeline))
    elif isinstance(timeline, Sequence) and not isinstance(timeline, bytes | str):
        times = [_seconds(value, f"timeline[{index}]") for index, value in enumerate(timeline)]
        where = [f"timeline[{index}]" for index in range(len(times))]
    else:
        raise TimelineError(
            f"timeline must be a timecodes v2 file, a list of start times in seconds or "
            f"{DURATIONS!r}, got {type(timeline).__name__}"
        )
    return _complete(times, where, clip.num_frames)


def _seconds(value: object, where: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction | str):
        raise TimelineError(f"{where} must be a number of seconds, got {value!r}")
    try:
        seconds = Fraction(repr(value) if isinstance(value, float) else value)
    except (ValueError, ZeroDivisionError):
        raise TimelineError(f"{where} must be a number of seconds, got {value!r}") from None
    return seconds


def _from_file(path: Path) -> tuple[list[Fraction], list[str]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as failure:
        raise TimelineError(
            f"timeline {str(path)!r} cannot be read ({failure}); give a timecodes v2 file"
        ) from None
    if not lines or lines[0].strip().lower() not in V2_HEADERS:
        first = lines[0].strip() if lines else "nothing"
        raise TimelineError(
            f"timeline {path.name} line 1: expected '# timecode format v2', got {first!r}; "
            "write v2 timecodes (mkvextract timestamps_v2, one time in ms a line)"
        )
    times, where = [], []
    for number, line in enumerate(lines[1:], start=2):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            times.append(Fraction(text) / 1000)
        except (ValueError, ZeroDivisionError):
            raise TimelineError(
                f"timeline {path.name} line {number}: {text!r} is not a time in milliseconds"
            ) from None
        where.append(f"timeline {path.name} line {number}")
    return times, where


def _complete(times: list[Fraction], where: list[str], frames: int) -> tuple[Fraction, ...]:
    if len(times) not in (frames, frames + 1):
        raise TimelineError(
            f"the timeline has {len(times)} times, the clip {frames} frames; give one start "
            f"time per frame ({frames}), optionally then the end of the last ({frames + 1})"
        )
    for index in range(1, len(times)):
        if times[index] <= times[index - 1]:
            raise TimelineError(
                f"{where[index]}: {float(times[index]):g} s does not come after "
                f"{float(times[index - 1]):g} s; the times must increase"
            )
    if frames < 2 and len(times) == frames:
        raise TimelineError("a one-frame timeline needs the end time too")
    if len(times) == frames:
        times.append(times[-1] + (times[-1] - times[-2]))
    return tuple(times)


def _from_durations(clip: vs.VideoNode) -> tuple[Fraction, ...]:
    times = [Fraction(0)]
    for n, frame in enumerate(clip.frames(close=True)):
        num, den = frame.props.get("_DurationNum"), frame.props.get("_DurationDen")
        if type(num) is not int or type(den) is not int or num <= 0 or den <= 0:
            raise TimelineError(
                f"timeline={DURATIONS!r}: frame {n} has _DurationNum={num!r}, "
                f"_DurationDen={den!r}, not a positive duration; give the timeline as a "
                "timecodes file or a list instead"
            )
        times.append(times[-1] + Fraction(num, den))
    return tuple(times)
