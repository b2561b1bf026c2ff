"""The VapourSynth graph a render encodes, rebuilt the same way in the driver and in every
worker from a :class:`GraphSpec` (plain data, so it pickles to Ray workers).

A video file is read with ``core.bs.VideoSource``, optionally trimmed and resized, and
interpolated; a ``.vpy`` script is executed and its first output node is rendered as it is.
"""

from __future__ import annotations

import functools
import logging
import runpy
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import vapoursynth as vs

if TYPE_CHECKING:
    import torch

    from ..model import DAIN

log = logging.getLogger(__name__)

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
    interpolation (None keeps the size; one of them keeps the aspect ratio), options are
    keywords of :func:`vsdain.Interpolate` (those given; see :mod:`.options`), and timeline
    is the trimmed source's frame times in seconds for a variable-frame-rate file (see
    :mod:`.timestamps`; None for constant rate). A script ignores them all.
    """

    source: str
    options: tuple[tuple[str, object], ...] = ()
    width: int | None = None
    height: int | None = None
    first: int = 0
    frames: int | None = None
    timeline: tuple[Fraction, ...] | None = None

    @property
    def is_script(self) -> bool:
        return Path(self.source).suffix.lower() in SCRIPT_SUFFIXES

    def option(self, name: str) -> object:
        """The value given for Interpolate's keyword ``name``, or None."""
        return dict(self.options).get(name)


def open_source(path: str) -> vs.VideoNode:
    """The whole video file, as ``core.bs.VideoSource`` reads it."""
    try:
        return vs.core.bs.VideoSource(path)
    except vs.Error as failure:
        raise GraphError(f"cannot read {path} as video: {failure}") from None


def trim_range(spec: GraphSpec, length: int) -> tuple[int, int]:
    """(first, end) source frames of a file spec whose source has ``length`` frames."""
    if spec.first >= length:
        raise GraphError(f"--first {spec.first} is past the end of {spec.source} ({length} frames)")
    end = length if spec.frames is None else min(length, spec.first + spec.frames)
    return spec.first, end


def load_source(spec: GraphSpec) -> vs.VideoNode:
    """The (trimmed, resized) source clip of a file spec, before interpolation."""
    clip = open_source(spec.source)
    first, end = trim_range(spec, clip.num_frames)
    clip = clip[first:end]
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


def filter_keywords(clip: vs.VideoNode, spec: GraphSpec) -> dict[str, object]:
    """The keywords the render passes to ``vsdain.Interpolate`` for ``clip``, the same in
    the driver and in every worker: the given options, the matrix of an unlabelled YUV
    source, and the timeline of a variable-frame-rate one."""
    keywords = dict(spec.options)
    if keywords.get("matrix") is None:
        keywords.pop("matrix", None)
        matrix = unlabelled_matrix(clip)
        if matrix is not None:
            keywords["matrix"] = matrix
    if spec.timeline is not None:
        keywords["timeline"] = spec.timeline
    return keywords


def interpolate(clip: vs.VideoNode, spec: GraphSpec) -> vs.VideoNode:
    """``vsdain.Interpolate`` on the source clip, with this process's shared network (see
    :func:`shared_network`); it takes YUV and RGB of any depth and returns the clip's own
    format, which the encoder writes."""
    import vsdain

    from .options import check_filter_options

    keywords = filter_keywords(clip, spec)
    settings = check_filter_options(clip, keywords)
    network = shared_network(settings.weights, settings.device, settings.dtype)
    for loaded_by_us in ("weights", "device", "precision"):
        keywords.pop(loaded_by_us, None)
    return vsdain.Interpolate(clip, **keywords, model=network)


def shared_network(weights: Path, device: torch.device, dtype: torch.dtype) -> DAIN:
    """The network for ``weights`` on ``device`` in ``dtype``, loaded once per process: the
    chunks a process renders one after another share it. Keyed by the file's size and
    modification time too, so a replaced file is loaded again. GraphError when it cannot
    be loaded."""
    stat = weights.stat()
    return _load_network(str(weights), (stat.st_size, stat.st_mtime_ns), str(device), dtype)


@functools.lru_cache(maxsize=1)  # one network per process: a second would double the memory
def _load_network(weights: str, stamp: tuple[int, int], device: str, dtype: torch.dtype) -> DAIN:
    from ..weights import WeightsError, load_model

    log.info("loading DAIN from %s on %s (%s)", weights, device, dtype)
    try:
        return load_model(weights, device=device, dtype=dtype)
    except (WeightsError, FileNotFoundError) as failure:
        raise GraphError(f"weights: {failure}") from None


def release_network() -> None:
    """Forget the shared network, so its memory is freed once the last node using it is."""
    _load_network.cache_clear()


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
