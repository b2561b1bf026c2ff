"""The clip's own format <-> the RGBS the network sees, both ways with ``core.resize``.

In: ``core.resize`` reads each frame's ``_Matrix``, ``_Range`` (R81's name for the older
``_ColorRange``) and ``_ChromaLocation``, exactly as it does for a user's own conversion; the
``matrix`` argument, when given, replaces ``_Matrix``. Out: a synthesised frame is converted
back with the matrix, range and chroma location of the source frame it replaces, read from
that frame, so a round trip of a frame is resize's own round trip.

Chroma is resampled with Bicubic (b = 0, c = 0.5), resize's usual kernel for this. Integer
outputs are dithered with resize's "ordered" (Bayer) dither: it breaks up the banding that
plain rounding leaves in the smooth gradients the network's blend produces, and, unlike error
diffusion or random dither, puts the same pattern on every frame, so synthesised frames
between undithered source frames do not shimmer.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

import vapoursynth as vs

NETWORK_FORMAT = vs.RGBS
# resize's names for the matrices a YUV clip can carry (H.273 matrix_coefficients); "rgb"
# and "unspec" are not matrices a YUV clip can be converted with.
MATRICES = (
    "709",
    "170m",
    "470bg",
    "2020ncl",
    "2020cl",
    "240m",
    "fcc",
    "ycgco",
    "chromancl",
    "chromacl",
    "ictcp",
)
MATRIX_PROP = "_Matrix"
RANGE_PROP = "_Range"
CHROMA_LOCATION_PROP = "_ChromaLocation"
UNSPECIFIED_MATRIX = 2
RGB_MATRIX = 0
# _Range values (VapourSynth's enum) and the names resize takes.
RANGE_NAMES = {0: "limited", 1: "full"}
DITHER = "ordered"
# The largest integer depth resize writes (and VapourSynth's integer formats go to 16).
MAX_INTEGER_BITS = 16
FLOAT_BITS = (16, 32)


def format_problem(format: vs.VideoFormat) -> str | None:
    """Why ``format`` cannot go through the filter, or None when it can: planar RGB or YUV,
    integer 8..16 bits or float 16/32 bits, any chroma subsampling resize handles."""
    if format.color_family not in (vs.RGB, vs.YUV):
        family = vs.ColorFamily(format.color_family).name
        return f"clip must be RGB or YUV, got {format.name} ({family})"
    if format.sample_type == vs.INTEGER and not 8 <= format.bits_per_sample <= MAX_INTEGER_BITS:
        return f"clip must have 8 to 16 bits per integer sample, got {format.name}"
    if format.sample_type == vs.FLOAT and format.bits_per_sample not in FLOAT_BITS:
        return f"clip must have 16- or 32-bit float samples, got {format.name}"
    return None


def needs_matrix(format: vs.VideoFormat, props: Mapping[str, object]) -> bool:
    """Whether a frame of ``format`` with ``props`` leaves its YUV matrix unspecified."""
    if format.color_family != vs.YUV:
        return False
    return int(props.get(MATRIX_PROP, UNSPECIFIED_MATRIX)) == UNSPECIFIED_MATRIX


def is_half(format: vs.VideoFormat) -> bool:
    return format.sample_type == vs.FLOAT and format.bits_per_sample == 16


Settings = tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class Conversion:
    """The two conversions of one clip. format: the clip's format; matrix: resize's name of
    the YUV matrix to use instead of each frame's ``_Matrix`` (None: the frame's own)."""

    format: vs.VideoFormat
    matrix: str | None = None

    @property
    def is_identity(self) -> bool:
        return self.format.id == NETWORK_FORMAT

    @property
    def is_yuv(self) -> bool:
        return self.format.color_family == vs.YUV

    def to_network(self, clip: vs.VideoNode) -> vs.VideoNode:
        """``clip`` as RGBS (full range, unclamped: YUV can map outside [0, 1])."""
        if self.is_identity:
            return clip
        matrix = {"matrix_in_s": self.matrix} if self.is_yuv and self.matrix else {}
        return clip.resize.Bicubic(format=NETWORK_FORMAT, **matrix)

    def from_network(self, rgb: vs.VideoNode, reference: vs.VideoNode) -> vs.VideoNode:
        """RGBS ``rgb`` in the clip's format, frame n converted with the matrix, range and
        chroma location that frame n of ``reference`` (same length, the clip's format)
        carries. Only the frames asked for are converted."""
        if self.is_identity:
            return rgb
        declared = rgb.std.BlankClip(format=self.format.id, keep=True)
        # Frames of one clip nearly always share these settings: one resize node for each,
        # built on first use (FrameEval calls in from several threads).
        variants: dict[Settings, vs.VideoNode] = {}
        lock = threading.Lock()
        dither = {"dither_type": DITHER} if self.format.sample_type == vs.INTEGER else {}

        def convert(n: int, f: vs.VideoFrame) -> vs.VideoNode:
            settings = self.settings_for(f.props)
            with lock:
                if settings not in variants:
                    variants[settings] = rgb.resize.Bicubic(
                        format=self.format.id, **dict(settings), **dither
                    )
                return variants[settings]

        return declared.std.FrameEval(convert, prop_src=[reference], clip_src=[rgb])

    def settings_for(self, props: Mapping[str, object]) -> Settings:
        """resize's output arguments that reproduce a frame with ``props``: its matrix (YUV),
        range and chroma location where the frame states them (resize's defaults otherwise,
        the same ones it assumed on the way in)."""
        settings: dict[str, object] = {}
        if self.is_yuv:
            if self.matrix:
                settings["matrix_s"] = self.matrix
            else:
                settings["matrix"] = int(props.get(MATRIX_PROP, UNSPECIFIED_MATRIX))
            if CHROMA_LOCATION_PROP in props:
                settings["chromaloc"] = int(props[CHROMA_LOCATION_PROP])
        value = props.get(RANGE_PROP)
        if isinstance(value, int) and value in RANGE_NAMES:
            settings["range_s"] = RANGE_NAMES[value]
        return tuple(sorted(settings.items()))
