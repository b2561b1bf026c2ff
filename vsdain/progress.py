"""A progress line on stderr for the long-running commands (``evaluate``, ``train``).

On a terminal it redraws one line in place (at most every ``REDRAW_SECONDS``); otherwise (a
log file, CI) it prints a plain line every ``every`` steps and at the end, so logs stay
readable. Nothing goes to stdout.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

REDRAW_SECONDS = 0.2
BAR_WIDTH = 24


class Progress:
    """Counts steps towards ``total`` and shows rate, ETA and the caller's fields
    (``update(loss="0.0123")``)."""

    def __init__(
        self,
        total: int,
        label: str,
        *,
        start: int = 0,
        every: int = 10,
        stream: TextIO | None = None,
        clock=time.monotonic,
    ) -> None:
        self.total = max(0, total)
        self.label = label
        self.count = start
        self.every = max(1, every)
        self.stream = sys.stderr if stream is None else stream
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._clock = clock
        self._started = clock()
        self._start_count = start
        self._last_draw = -float("inf")
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
        elif self.count % self.every == 0 or self.count == self.total:
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Ends the terminal line (the last state stays visible)."""
        if self.interactive:
            self.stream.write("\r" + self.line() + "\x1b[K\n")
            self.stream.flush()

    def line(self) -> str:
        parts = [f"{self.label} {self.count}/{self.total}"]
        if self.interactive and self.total:
            filled = round(BAR_WIDTH * min(self.count, self.total) / self.total)
            parts.insert(1, "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]")
        parts += [f"{key} {value}" for key, value in self._fields.items()]
        rate = self.rate
        if rate > 0:
            parts.append(f"{rate:.2f} it/s" if rate >= 0.1 else f"{1 / rate:.1f} s/it")
            remaining = max(0, self.total - self.count) / rate
            parts.append(f"ETA {_duration(remaining)}")
        return "  ".join(parts)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
