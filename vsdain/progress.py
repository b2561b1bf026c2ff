"""A progress line on stderr for the long-running commands (``download``, ``evaluate``,
``train``).

On a terminal it redraws one line in place (at most every ``REDRAW_SECONDS``); otherwise (a
log file, CI) it prints a plain line each time the count passes a multiple of ``every``, at
least every ``every_seconds`` while the count moves (a slow download), and at the end, so
logs stay readable. Nothing goes to stdout.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

REDRAW_SECONDS = 0.2
BAR_WIDTH = 24


class Progress:
    """Counts steps towards ``total`` (0: unknown) and shows rate, ETA and the caller's
    fields (``update(loss="0.0123")``). With ``unit=(size, name)``, e.g. ``(1e6, "MB")`` for
    bytes, counts and rate are shown in that unit, with a percentage."""

    def __init__(
        self,
        total: int | None,
        label: str,
        *,
        start: int = 0,
        every: int = 10,
        every_seconds: float | None = None,
        unit: tuple[float, str] | None = None,
        stream: TextIO | None = None,
        clock=time.monotonic,
    ) -> None:
        self.total = max(0, total or 0)
        self.unit = unit
        self.label = label
        self.count = start
        self.every = max(1, every)
        self.every_seconds = every_seconds
        self.stream = sys.stderr if stream is None else stream
        self.interactive = _is_terminal(self.stream)
        self._clock = clock
        self._started = clock()
        self._start_count = start
        self._last_draw = -float("inf")
        self._last_line = start // self.every
        self._last_line_count = start
        self._last_line_time = self._started
        self._fields: dict[str, str] = {}

    @property
    def rate(self) -> float:
        """Steps per second since this object was made (resumed steps not counted)."""
        elapsed = self._clock() - self._started
        done = self.count - self._start_count
        return done / elapsed if elapsed > 0 and done > 0 else 0.0

    def update(self, steps: int = 1, **fields: object) -> None:
        self.count += steps
        self._fields.update({key: str(value) for key, value in fields.items()})
        now = self._clock()
        if self.interactive:
            if now - self._last_draw >= REDRAW_SECONDS or self.count >= self.total:
                self._last_draw = now
                self.stream.write("\r" + self.line() + "\x1b[K")
                self.stream.flush()
        elif (
            self.count // self.every != self._last_line
            or self.count == self.total
            or (self.every_seconds is not None and now - self._last_line_time >= self.every_seconds)
        ):
            self._write_line(now)

    def close(self) -> None:
        """Ends the terminal line (the last state stays visible); elsewhere prints the last
        count if no line showed it yet."""
        if self.interactive:
            self.stream.write("\r" + self.line() + "\x1b[K\n")
            self.stream.flush()
        elif self._last_line_count != self.count:
            self._write_line(self._clock())

    def _write_line(self, now: float) -> None:
        self._last_line = self.count // self.every
        self._last_line_count = self.count
        self._last_line_time = now
        self.stream.write(self.line() + "\n")
        self.stream.flush()

    def line(self) -> str:
        parts = [f"{self.label} {self._counts()}"]
        if self.interactive and self.total:
            filled = round(BAR_WIDTH * min(self.count, self.total) / self.total)
            parts.insert(1, "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]")
        parts += [f"{key} {value}" for key, value in self._fields.items()]
        rate = self.rate
        if rate > 0:
            if self.unit is not None:
                parts.append(f"{rate / self.unit[0]:.1f} {self.unit[1]}/s")
            else:
                parts.append(f"{rate:.2f} it/s" if rate >= 0.1 else f"{1 / rate:.1f} s/it")
            if self.total:
                remaining = max(0, self.total - self.count) / rate
                parts.append(f"ETA {_duration(remaining)}")
        return "  ".join(parts)

    def _counts(self) -> str:
        if self.unit is None:
            return f"{self.count}/{self.total}"
        size, name = self.unit
        if not self.total:
            return f"{self.count / size:.1f} {name}"
        return (
            f"{self.count / size:.1f}/{self.total / size:.1f} {name} "
            f"{100 * self.count / self.total:.0f}%"
        )

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
