"""The VapourSynth graph a render encodes, rebuilt the same way in the driver and in every
worker from a :class:`GraphSpec` (plain data, so it pickles to Ray workers).

A video file is read with ``core.bs.VideoSource``, optionally trimmed and resized, and
interpolated; a ``.vpy`` script is executed and its first output node is rendered as it is.
"""

from __future__ import annotations

import runpy
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import vapoursynth as vs

SCRIPT_SUFFIXES = (".vpy", ".py")
MATRIX_UNSPECIFIED = 2  # the _Matrix frame property's "unspecified"
# Unlabelled video this tall or taller is HD and BT.709 by convention, smaller is BT.601.
HD_MIN_HEIGHT = 600


class GraphError(ValueError):
    """The source or script cannot give a node to render; the message says why."""


@dataclass(frozen=True)
class GraphSpec:
    """Everything that decides the frames of the rendered node.

    source: a video file or a ``.vpy`` script. For a file: first/frames trim the source
    (source frame indices; frames None = to the end), width/height resize it before
    interpolation (None keeps the size; one of them keeps the aspect ratio), and multi or
    fps_num/fps_den, weights, device go to :func:`vsdain.Interpolate`. A script ignores them.
    """

    source: str
    multi: int = 2
    fps_num: int | None = None
    fps_den: int | None = None
    weights: str | None = None
    device: str | None = None
    width: int | None = None
    height: int | None = None
    first: int = 0
    frames: int | None = None

    @property
    def is_script(self) -> bool:
        return Path(self.source).suffix.lower() in SCRIPT_SUFFIXES


def load_source(spec: GraphSpec) -> vs.VideoNode:
    """The (trimmed, resized) source clip of a file spec, before interpolation."""
    try:
        clip = vs.core.bs.VideoSource(spec.source)
    except vs.Error as failure:
        raise GraphError(f"cannot read {spec.source} as video: {failure}") from None
    if spec.first >= clip.num_frames:
        raise GraphError(
            f"--first {spec.first} is past the end of {spec.source} ({clip.num_frames} frames)"
        )
    end = clip.num_frames if spec.frames is None else min(clip.num_frames, spec.first + spec.frames)
    clip = clip[spec.first : end]
    if spec.width is not None or spec.height is not None:
        width, height = preview_size(clip, spec.width, spec.height)
        clip = clip.resize.Bicubic(width, height)
    return clip


def preview_size(clip: vs.VideoNode, width: int | None, height: int | None) -> tuple[int, int]:
    """(width, height) with a missing side following the aspect ratio, both rounded to the
    chroma subsampling (even for 4:2:0)."""
    step_w = 1 << clip.format.subsampling_w
    step_h = 1 << clip.format.subsampling_h
    if width is None:
        width = round(clip.width * height / clip.height)
    if height is None:
        height = round(clip.height * width / clip.width)
    width = max(step_w, round(width / step_w) * step_w)
    height = max(step_h, round(height / step_h) * step_h)
    return width, height


def unlabelled_matrix(clip: vs.VideoNode) -> str | None:
    """resize's name of the matrix to assume for a YUV clip whose first frame does not say
    it (``_Matrix`` missing or 2): BT.709 for HD, BT.601 below; None when it says it."""
    if clip.format.color_family != vs.YUV:
        return None
    matrix = int(clip.get_frame(0).props.get("_Matrix", MATRIX_UNSPECIFIED))
    if matrix != MATRIX_UNSPECIFIED:
        return None
    return "709" if clip.height >= HD_MIN_HEIGHT else "170m"


def interpolate(clip: vs.VideoNode, spec: GraphSpec) -> vs.VideoNode:
    """``vsdain.Interpolate`` on the source clip; it takes YUV and RGB of any depth and
    returns the clip's own format, which the encoder writes."""
    import vsdain

    return vsdain.Interpolate(
        clip,
        multi=spec.multi,
        fps_num=spec.fps_num,
        fps_den=spec.fps_den,
        weights=spec.weights,
        device=spec.device,
        matrix=unlabelled_matrix(clip),
    )


def run_script(path: str) -> vs.VideoNode:
    """Execute a VapourSynth script and return its lowest-numbered video output."""
    vs.clear_outputs()
    try:
        runpy.run_path(path, run_name="__vapoursynth__")
    except SystemExit as stop:
        raise GraphError(f"{path} exited ({stop.code}) instead of setting an output") from None
    except Exception as failure:
        raise GraphError(f"{path} failed: {type(failure).__name__}: {failure}") from failure
    outputs = vs.get_outputs()
    videos = {
        index: output.clip
        for index, output in outputs.items()
        if isinstance(output, vs.VideoOutputTuple)
    }
    vs.clear_outputs()
    if not videos:
        raise GraphError(
            f"{path} sets no video output; end it with clip.set_output() on the clip to render"
        )
    return videos[min(videos)]


def build_node(spec: GraphSpec) -> vs.VideoNode:
    """The node whose frames the render encodes, identical wherever it is built."""
    if spec.is_script:
        return run_script(spec.source)
    return interpolate(load_source(spec), spec)


def node_fps(node: vs.VideoNode) -> Fraction:
    if node.fps_num == 0:
        raise GraphError(
            "the output node has a variable frame rate; set one with "
            "clip.std.AssumeFPS(fpsnum=..., fpsden=...)"
        )
    return Fraction(node.fps_num, node.fps_den)
