"""VapourSynth frames into a video file through PyAV, and the checks around it.

Frames are written with ``pts`` = frame index in a time base of 1 / fps, so the decoded
timestamps are exact multiples of the frame duration whatever the container rounds to.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import vapoursynth as vs

# VapourSynth format -> (FFmpeg pixel format, order of the VapourSynth planes in FFmpeg's).
# FFmpeg's planar RGB is G, B, R; VapourSynth's is R, G, B.
PIXEL_FORMATS: dict[int, tuple[str, tuple[int, ...]]] = {
    vs.YUV420P8: ("yuv420p", (0, 1, 2)),
    vs.YUV422P8: ("yuv422p", (0, 1, 2)),
    vs.YUV444P8: ("yuv444p", (0, 1, 2)),
    vs.YUV420P10: ("yuv420p10le", (0, 1, 2)),
    vs.YUV422P10: ("yuv422p10le", (0, 1, 2)),
    vs.YUV444P10: ("yuv444p10le", (0, 1, 2)),
    vs.YUV420P16: ("yuv420p16le", (0, 1, 2)),
    vs.YUV444P16: ("yuv444p16le", (0, 1, 2)),
    vs.GRAY8: ("gray", (0,)),
    vs.GRAY16: ("gray16le", (0,)),
    vs.RGB24: ("gbrp", (1, 2, 0)),
    vs.RGB30: ("gbrp10le", (1, 2, 0)),
    vs.RGB48: ("gbrp16le", (1, 2, 0)),
}
DEFAULT_CODEC = "libx264"
# Visually transparent for most material, and what Av1an-style pipelines use as "high".
DEFAULT_CODEC_OPTIONS = {"libx264": {"crf": "16", "preset": "medium"}}
# Chunks go into MP4 whatever OUTPUT is: it keeps each packet's decoding timestamp (Matroska
# drops them for reordered frames), which the concatenation needs to stay monotonic.
CHUNK_SUFFIX = ".mp4"
FALLBACK_CHUNK_SUFFIX = ".mkv"


class EncodeError(ValueError):
    """A codec, option, pixel format or container that cannot be used; the message says
    which and what would work."""


@dataclass(frozen=True)
class Encoding:
    """How frames are encoded. fps: the exact output rate (frames per second); options: the
    encoder's private options (``crf``, ``preset``, ...), as FFmpeg names them."""

    codec: str
    fps: Fraction
    width: int
    height: int
    format_id: int
    options: dict[str, str] = field(default_factory=dict)

    @property
    def pixel_format(self) -> str:
        return PIXEL_FORMATS[self.format_id][0]


def pixel_format_of(node: vs.VideoNode) -> str:
    """The FFmpeg pixel format for ``node``'s frames; EncodeError for a format without one
    (float or variable formats)."""
    if node.format is None or node.width == 0 or node.height == 0:
        raise EncodeError(
            "the output node has a variable format or size; give it one, e.g. "
            "clip.resize.Bicubic(1280, 720, format=vs.YUV420P8)"
        )
    if node.format.id not in PIXEL_FORMATS:
        names = ", ".join(vs.core.get_video_format(key).name for key in PIXEL_FORMATS)
        raise EncodeError(
            f"the output node is {node.format.name}, which no encoder takes; convert it to "
            f"one of {names}, e.g. clip.resize.Bicubic(format=vs.YUV420P8, matrix_s='709')"
        )
    return PIXEL_FORMATS[node.format.id][0]


def check_codec(name: str) -> av.Codec:
    try:
        codec = av.Codec(name, "w")
    except av.codec.codec.UnknownCodecError:
        raise EncodeError(
            f"unknown codec {name!r}; PyAV's FFmpeg can encode video with e.g. libx264, "
            "libx265, libsvtav1, ffv1 (lossless)"
        ) from None
    if codec.type != "video":
        raise EncodeError(f"codec {name!r} encodes {codec.type}, not video")
    return codec


def open_output(path: Path) -> av.container.OutputContainer:
    """A container for ``path``, its format chosen by the extension."""
    try:
        return av.open(str(path), "w")
    except ValueError:
        raise EncodeError(
            f"no container format for the extension {path.suffix or '(none)'!r} of {path}; "
            "use .mkv or .mp4"
        ) from None


def probe(encoding: Encoding, suffix: str) -> None:
    """Encode two black frames into a temporary file of ``suffix`` so that a bad codec
    option, pixel format or codec/container pairing fails now, not in a worker hours later.
    """
    check_codec(encoding.codec)
    handle, name = tempfile.mkstemp(suffix=suffix, prefix="vsdain-probe-")
    os.close(handle)
    path = Path(name)
    try:
        container = open_output(path)
        try:
            stream = _add_stream(container, encoding)
            for index in range(2):
                frame = av.VideoFrame(encoding.width, encoding.height, encoding.pixel_format)
                for plane in frame.planes:
                    np.frombuffer(plane, np.uint8)[:] = 16
                frame.pts = index
                frame.time_base = 1 / encoding.fps
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        finally:
            container.close()
    except (av.FFmpegError, ValueError) as failure:
        if isinstance(failure, EncodeError):
            raise
        options = " ".join(f"{key}={value}" for key, value in encoding.options.items())
        raise EncodeError(
            f"{encoding.codec} ({encoding.pixel_format}, options: {options or 'none'}) cannot "
            f"write {suffix}: {failure}"
        ) from None
    finally:
        path.unlink(missing_ok=True)


def chunk_suffix(encoding: Encoding) -> str:
    """MP4 for the chunks when the codec fits in it, else Matroska."""
    try:
        probe(encoding, CHUNK_SUFFIX)
    except EncodeError:
        return FALLBACK_CHUNK_SUFFIX
    return CHUNK_SUFFIX


def _add_stream(container: av.container.OutputContainer, encoding: Encoding) -> av.VideoStream:
    try:
        stream = container.add_stream(encoding.codec, rate=encoding.fps)
    except ValueError as failure:
        raise EncodeError(
            f"{container.format.name} cannot hold {encoding.codec}: {failure}"
        ) from None
    stream.width = encoding.width
    stream.height = encoding.height
    stream.pix_fmt = encoding.pixel_format
    stream.time_base = 1 / encoding.fps
    stream.codec_context.options = dict(encoding.options)
    return stream


def to_video_frame(frame: vs.VideoFrame, pixel_format: str, order: Iterable[int]) -> av.VideoFrame:
    """A copy of ``frame``'s planes in an ``av.VideoFrame`` of ``pixel_format``."""
    out = av.VideoFrame(frame.width, frame.height, pixel_format)
    for target, source in zip(out.planes, order, strict=True):
        data = np.asarray(frame[source])
        rows = np.frombuffer(target, data.dtype).reshape(target.height, -1)
        rows[:, : data.shape[1]] = data
    return out


def encode_frames(
    frames: Iterable[vs.VideoFrame],
    path: Path,
    encoding: Encoding,
    *,
    on_frame: Callable[[int], None] | None = None,
) -> int:
    """Encode ``frames`` into ``path`` (container by its extension), pts 0, 1, 2, ... in
    units of 1 / fps; returns the number of frames written. ``on_frame(count)`` after each.
    """
    pixel_format, order = PIXEL_FORMATS[encoding.format_id]
    container = open_output(path)
    count = 0
    try:
        stream = _add_stream(container, encoding)
        time_base = 1 / encoding.fps
        for frame in frames:
            picture = to_video_frame(frame, pixel_format, order)
            picture.pts = count
            picture.time_base = time_base
            container.mux(stream.encode(picture))
            count += 1
            if on_frame is not None:
                on_frame(count)
        container.mux(stream.encode(None))
    finally:
        container.close()
    return count


def count_frames(path: Path) -> int:
    """Frames that decode from the first video stream of ``path`` (decodes them all)."""
    with av.open(str(path)) as container:
        container.streams.video[0].thread_type = "AUTO"
        return sum(1 for _ in container.decode(video=0))
