"""Progress of a render on stderr: one tqdm bar over all output frames on a terminal, a
plain line per finished chunk elsewhere, and a summary at the end. Nothing on stdout."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TextIO

from tqdm import tqdm

from .plan import Chunk


@dataclass(frozen=True)
class RenderSummary:
    """What a render did. frames: output frames in OUTPUT; chunks: chunks in the plan;
    rendered: chunks rendered by this run (the others were done before); retries: attempts
    beyond the first, over all chunks; seconds: wall time of the whole run."""

    output: str
    frames: int
    chunks: int
    rendered: int
    retries: int
    seconds: float

    def line(self) -> str:
        reused = self.chunks - self.rendered
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        return (
            f"render: {self.output}: {self.frames} frames in {self.chunks} chunks "
            f"({self.rendered} rendered, {reused} already done), {self.retries} retries, "
            f"{_clock(self.seconds)} wall ({rate:.2f} frames/s overall)"
        )


class RenderProgress:
    """Frames done over the whole job. ``show(counts)`` takes the frames each unfinished
    chunk has encoded so far (attempts restart at 0, so the bar can step back after a
    retry); ``chunk_done`` counts a verified chunk."""

    def __init__(
        self, total: int, done: int, *, stream: TextIO | None = None, enabled: bool = True
    ):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.interactive = enabled and _is_terminal(self.stream)
        self.total = total
        self.finished = done
        self.started = time.monotonic()
        self.bar = tqdm(
            total=total,
            initial=done,
            unit="frame",
            desc="render",
            file=self.stream,
            disable=not self.interactive,
            dynamic_ncols=True,
            smoothing=0.05,
        )

    def show(self, in_flight: int) -> None:
        """in_flight: frames encoded by chunks not yet finished."""
        self.bar.n = self.finished + in_flight
        self.bar.refresh()

    def chunk_done(self, chunk: Chunk, attempts: int, in_flight: int) -> None:
        self.finished += chunk.frames
        self.show(in_flight)
        if self.enabled and not self.interactive:
            elapsed = time.monotonic() - self.started
            retried = f", {attempts - 1} retries" if attempts > 1 else ""
            self.stream.write(
                f"render: {chunk.name} done ({chunk.frames} frames{retried}); "
                f"{self.finished}/{self.total} frames, {_clock(elapsed)} elapsed\n"
            )
            self.stream.flush()

    def message(self, text: str) -> None:
        if self.enabled:
            self.bar.write(text, file=self.stream)

    def close(self) -> None:
        self.bar.close()


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
