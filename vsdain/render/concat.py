"""Joining the chunk files into OUTPUT by remuxing their packets (nothing is re-encoded),
and copying the source's audio alongside.

Video timestamps are rebuilt from frame indices: a packet of chunk c at frame i of that chunk
gets pts ``start_c + i`` frames (and its dts likewise, keeping the encoder's reordering
delay), rescaled once to the output stream's time base, so they run on at the exact output
rate across every boundary whatever each chunk's container rounded to.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av

from .encode import open_output


def _frames(value: int | None, time_base: Fraction, fps: Fraction) -> int | None:
    """A timestamp in ``time_base`` units as a whole number of frames at ``fps``."""
    return None if value is None else round(value * time_base * fps)


def _video_packets(
    chunks: Sequence[tuple[Path, int]], fps: Fraction, stream: av.VideoStream
) -> Iterator[tuple[Fraction, av.Packet]]:
    """(dts in seconds, packet ready for ``stream``) for every chunk, in order."""
    out_base = stream.time_base
    frame_span = round(1 / fps / out_base)
    for path, start in chunks:
        with av.open(str(path)) as container:
            source = container.streams.video[0]
            for packet in container.demux(source):
                if packet.size == 0:  # the demuxer's end marker
                    continue
                pts = _frames(packet.pts, source.time_base, fps)
                dts = _frames(packet.dts, source.time_base, fps)
                packet.pts = None if pts is None else round((start + pts) / fps / out_base)
                packet.dts = None if dts is None else round((start + dts) / fps / out_base)
                packet.duration = frame_span
                packet.time_base = out_base
                packet.stream = stream
                order = dts if dts is not None else pts
                yield Fraction(start + order) / fps, packet


def _audio_packets(
    container: av.container.InputContainer,
    source: av.AudioStream,
    stream: av.AudioStream,
    window: tuple[Fraction, Fraction | None] | None,
) -> Iterator[tuple[Fraction, av.Packet]]:
    """The source's audio packets, timed from the source's first video frame. With a
    ``window`` (seconds; end None: to the end) only packets starting inside it, shifted so
    the window starts at 0; packet granularity (a few tens of ms) bounds the precision."""
    base = source.time_base
    origin = _video_start(container)
    begin, end = (Fraction(0), None) if window is None else window
    shift = round((begin + origin) / base)
    for packet in container.demux(source):
        if packet.size == 0 or packet.pts is None:
            continue
        if window is not None:
            seconds = packet.pts * base - origin
            if seconds < begin or (end is not None and seconds >= end):
                continue
        packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        order = packet.dts if packet.dts is not None else packet.pts
        packet.stream = stream
        packet.time_base = base
        yield order * base, packet


def _video_start(container: av.container.InputContainer) -> Fraction:
    video = container.streams.video[0]
    start = video.start_time
    return Fraction(0) if start is None else start * video.time_base


def concatenate(
    chunks: Sequence[tuple[Path, int]],
    output: Path,
    fps: Fraction,
    *,
    audio_from: Path | None = None,
    audio_window: tuple[Fraction, Fraction | None] | None = None,
) -> None:
    """Write ``output`` from ``chunks`` ((file, first output frame) in order) and, when
    ``audio_from`` is a file with audio, its first audio stream's packets (those in
    ``audio_window`` when the video was trimmed), interleaved by time."""
    with av.open(str(chunks[0][0])) as first:
        template = first.streams.video[0]
        container = open_output(output)
        try:
            video = container.add_stream_from_template(template)
            video.time_base = 1 / fps
            audio_input = av.open(str(audio_from)) if audio_from is not None else None
            try:
                streams = []
                if audio_input is not None and audio_input.streams.audio:
                    audio_source = audio_input.streams.audio[0]
                    audio = container.add_stream_from_template(audio_source)
                    streams.append(_audio_packets(audio_input, audio_source, audio, audio_window))
                container.start_encoding()
                streams.insert(0, _video_packets(chunks, fps, video))
                merged = heapq.merge(*streams, key=lambda item: item[0])
                for _, packet in merged:
                    container.mux(packet)
            finally:
                if audio_input is not None:
                    audio_input.close()
        finally:
            container.close()
