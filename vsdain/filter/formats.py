"""The clip's own format <-> the RGBS the network sees, both ways with ``core.resize``.

In: ``core.resize`` reads each frame's ``_Matrix``, ``_Range`` and ``_ChromaLocation``, exactly
as it does for a user's own conversion; the ``matrix`` argument, when given, is written over
``_Matrix`` first (resize prefers a frame's property to its own ``matrix_in``). Out: a
synthesised frame is converted back with the matrix, range and chroma location of the source
frame it replaces, read from that frame, so a round trip of a frame is resize's own round trip.

Every frame's three properties are checked before resize sees them (see
:meth:`Conversion.colour`), so a frame that resize would refuse, or silently misread, fails
with the frame number, the value found and the fix.

Chroma is resampled with Bicubic (b = 0, c = 0.5), resize's usual kernel for this. Integer
outputs are dithered with resize's "ordered" (Bayer) dither: it breaks up the banding that
plain rounding leaves in the smooth gradients the network's blend produces, and, unlike error
diffusion or random dither, puts the same pattern on every frame, so synthesised frames
between undithered source frames do not shimmer.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import vapoursynth as vs

NETWORK_FORMAT = vs.RGBS
# resize's names for the matrices a YUV clip can carry, with their _Matrix values (H.273
# matrix_coefficients). 0 (RGB) and 2 (unspecified) cannot convert a YUV clip; 3 is reserved
# and resize does not know 11 (SMPTE ST 2085).
MATRIX_CODES = {
    "709": 1,
    "170m": 6,
    "470bg": 5,
    "2020ncl": 9,
    "2020cl": 10,
    "240m": 7,
    "fcc": 4,
    "ycgco": 8,
    "chromancl": 12,
    "chromacl": 13,
    "ictcp": 14,
}
MATRICES = tuple(MATRIX_CODES)
MATRIX_PROP = "_Matrix"
RANGE_PROP = "_Range"
CHROMA_LOCATION_PROP = "_ChromaLocation"
RGB_MATRIX = 0
UNSPECIFIED_MATRIX = 2
# The _Matrix values an RGB frame may carry; resize refuses any other.
RGB_MATRICES = (RGB_MATRIX, UNSPECIFIED_MATRIX)
# _Range values (VapourSynth's enum) and resize's names for them.
LIMITED_RANGE = 0
FULL_RANGE = 1
RANGE_NAMES = {LIMITED_RANGE: "limited", FULL_RANGE: "full"}
# _ChromaLocation values (VapourSynth's enum, H.273's chroma_sample_loc_type) and resize's
# names for them.
CHROMA_LOCATIONS = {0: "left", 1: "center", 2: "top_left", 3: "top", 4: "bottom_left", 5: "bottom"}
LEFT = 0
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
    """Whether a frame of ``format`` with ``props`` leaves its YUV matrix unspecified: YUV with
    ``_Matrix`` missing or 2. Never raises: any other odd ``_Matrix`` is reported, with its
    frame number, by :meth:`Conversion.colour` when the frame is converted."""
    if format.color_family != vs.YUV:
        return False
    value = props.get(MATRIX_PROP, UNSPECIFIED_MATRIX)
    return _is_int(value) and value == UNSPECIFIED_MATRIX


def is_half(format: vs.VideoFormat) -> bool:
    return format.sample_type == vs.FLOAT and format.bits_per_sample == 16


class Colour(NamedTuple):
    """What resize needs of one frame beside its format, in VapourSynth's numbers: the YUV
    matrix (``_Matrix``), the range (``_Range``) and the chroma location
    (``_ChromaLocation``). A field that cannot change a conversion of the clip's format is
    None: the matrix of RGB, the range of float samples (resize gives them none), the chroma
    location where chroma is not subsampled. Frames that convert alike have equal colours."""

    matrix: int | None
    range: int | None
    chroma_location: int | None

    def output_arguments(self) -> dict[str, int]:
        """resize's arguments that write a frame of this colour."""
        names = {"matrix": self.matrix, "range": self.range, "chromaloc": self.chroma_location}
        return {name: value for name, value in names.items() if value is not None}


@dataclass(frozen=True)
class Conversion:
    """The two conversions of one clip. format: the clip's format; matrix: resize's name of
    the YUV matrix to use instead of each frame's ``_Matrix`` (None: the frame's own).

    What each frame's properties must be (:meth:`colour` checks them; anything else, a float,
    a string or a list included, raises ``vs.Error``):

    - ``_Matrix``: on YUV without ``matrix``, one of resize's matrices (:data:`MATRIX_CODES`);
      missing or 2 (unspecified) is an error, as no matrix is right for every clip. On YUV with
      ``matrix``, ignored. On RGB, missing, 0 (RGB) or 2. 2020cl, chromancl, chromacl and
      ictcp also need the frame's ``_Transfer`` and ``_Primaries``, which resize reads itself.
    - ``_Range``: 0 (limited) or 1 (full). Missing: resize's default, limited for YUV and full
      for RGB.
    - ``_ChromaLocation``: 0..5 (left, center, top_left, top, bottom_left, bottom). Missing:
      left, resize's default and that of MPEG-2, H.264 and HEVC 4:2:0.
    """

    format: vs.VideoFormat
    matrix: str | None = None

    @property
    def is_identity(self) -> bool:
        return self.format.id == NETWORK_FORMAT

    @property
    def is_yuv(self) -> bool:
        return self.format.color_family == vs.YUV

    @property
    def is_subsampled(self) -> bool:
        return self.is_yuv and (self.format.subsampling_w, self.format.subsampling_h) != (0, 0)

    @property
    def is_integer(self) -> bool:
        return self.format.sample_type == vs.INTEGER

    def to_network(self, clip: vs.VideoNode) -> vs.VideoNode:
        """``clip`` as RGBS (full range, unclamped: YUV can map outside [0, 1]). Each frame's
        properties are checked (:meth:`colour`) before resize reads them."""
        if self.is_identity:
            return clip
        if self.is_yuv and self.matrix:
            clip = clip.std.SetFrameProps(**{MATRIX_PROP: MATRIX_CODES[self.matrix]})

        def check(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
            self.colour(f.props, f"frame {n}")
            return f

        checked = clip.std.ModifyFrame(clips=clip, selector=check)
        return resize(checked, NETWORK_FORMAT)

    def from_network(self, rgb: vs.VideoNode, reference: vs.VideoNode) -> vs.VideoNode:
        """RGBS ``rgb`` in the clip's format, frame n's samples converted with the matrix,
        range and chroma location that frame n of ``reference`` (same length, the clip's
        format) carries, checked as :meth:`colour` says; the frame's properties are resize's.
        Only the frames asked for are converted.

        One resize node per colour the clip's format can have (:meth:`colours`) is built
        here, with the filter; each frame only picks one (VapourSynth asks from several
        threads, and the dict is never written after this)."""
        if self.is_identity:
            return rgb
        declared = rgb.std.BlankClip(format=self.format.id, keep=True)
        dither = {"dither_type": DITHER} if self.is_integer else {}
        variants = {
            colour: resize(rgb, self.format.id, **colour.output_arguments(), **dither)
            for colour in self.colours()
        }

        def convert(n: int, f: vs.VideoFrame) -> vs.VideoNode:
            where = f"frame {n} (converted like the source frame it replaces)"
            return variants[self.colour(f.props, where)]

        return declared.std.FrameEval(
            convert, prop_src=[reference], clip_src=list(variants.values())
        )

    def colours(self) -> list[Colour]:
        """Every colour :meth:`colour` can return for this clip's format: for YUV, each of
        resize's matrices (only ``matrix`` when given) x 2 ranges (integer samples) x 6 chroma
        locations (subsampled chroma), e.g. 132 for YUV420P10 without ``matrix``; for RGB, the
        2 ranges of integer samples or 1 colour for float ones."""
        if not self.is_yuv:
            matrices: list[int | None] = [None]
        elif self.matrix:
            matrices = [MATRIX_CODES[self.matrix]]
        else:
            matrices = list(MATRIX_CODES.values())
        ranges: list[int | None] = list(RANGE_NAMES) if self.is_integer else [None]
        locations: list[int | None] = list(CHROMA_LOCATIONS) if self.is_subsampled else [None]
        return [Colour(*values) for values in itertools.product(matrices, ranges, locations)]

    def colour(self, props: Mapping[str, object], where: str) -> Colour:
        """The colour a frame with ``props`` converts with, its missing properties filled with
        the defaults the class describes. Raises ``vs.Error`` naming ``where`` (e.g. "frame
        12"), the property, the value found and the fix, for any value resize would refuse or
        misread (it takes a float as missing)."""
        range_ = _range(props, where, LIMITED_RANGE if self.is_yuv else FULL_RANGE)
        location = _chroma_location(props, where)
        if not self.is_yuv:
            _check_rgb_matrix(props, where)
            matrix = None
        elif self.matrix:
            matrix = MATRIX_CODES[self.matrix]
        else:
            matrix = _yuv_matrix(props, where)
        return Colour(
            matrix,
            range_ if self.is_integer else None,
            location if self.is_subsampled else None,
        )


def resize(clip: vs.VideoNode, format: int, **arguments: object) -> vs.VideoNode:
    """``clip`` in ``format`` by resize's Bicubic: every node this module makes goes through
    here."""
    return clip.resize.Bicubic(format=format, **arguments)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _found(name: str, value: object) -> str:
    """For error messages: '_Matrix is 99', '_Range is 1.0, a float, not an integer'."""
    if _is_int(value):
        return f"{name} is {value}"
    kind = "a list" if isinstance(value, list) else f"a {type(value).__name__}"
    return f"{name} is {value!r}, {kind}, not an integer"


def _problem(where: str, message: str) -> vs.Error:
    # arguments imports this module, so its error() is looked up when it is needed.
    from .arguments import error

    return error(f"{where}: {message}")


def _yuv_matrix(props: Mapping[str, object], where: str) -> int:
    value = props.get(MATRIX_PROP)
    fix = (
        f"set the clip's {MATRIX_PROP} with std.SetFrameProps, e.g. "
        f"clip.std.SetFrameProps({MATRIX_PROP}=1) for BT.709, or give matrix='709' (HD), "
        "'170m' (SD, NTSC), '470bg' (SD, PAL) or '2020ncl' (UHD), which replaces every frame's"
    )
    if value is None:
        raise _problem(where, f"{MATRIX_PROP} is missing, so the YUV matrix is unknown; {fix}")
    if _is_int(value) and value in MATRIX_CODES.values():
        return value
    if not _is_int(value):
        found = _found(MATRIX_PROP, value)
    elif value == UNSPECIFIED_MATRIX:
        found = f"{MATRIX_PROP} is 2 (unspecified), so the YUV matrix is unknown"
    elif value == RGB_MATRIX:
        found = f"{MATRIX_PROP} is 0 (RGB), which a YUV clip cannot have"
    else:
        known = ", ".join(f"{code} ({name})" for name, code in MATRIX_CODES.items())
        found = f"{MATRIX_PROP} is {value}, not a matrix resize knows ({known})"
    raise _problem(where, f"{found}; {fix}")


def _check_rgb_matrix(props: Mapping[str, object], where: str) -> None:
    value = props.get(MATRIX_PROP)
    if value is None or (_is_int(value) and value in RGB_MATRICES):
        return
    raise _problem(
        where,
        f"{_found(MATRIX_PROP, value)} on an RGB clip, which has no YUV matrix (resize accepts "
        f"only 0, RGB, or 2, unspecified); set it with clip.std.SetFrameProps({MATRIX_PROP}=0) "
        f"or remove it with clip.std.RemoveFrameProps('{MATRIX_PROP}'); matrix= is for YUV clips",
    )


def _range(props: Mapping[str, object], where: str, default: int) -> int:
    value = props.get(RANGE_PROP, default)
    if _is_int(value) and value in RANGE_NAMES:
        return value
    raise _problem(
        where,
        f"{_found(RANGE_PROP, value)}, not 0 (limited) or 1 (full); set the clip's {RANGE_PROP} "
        f"with std.SetFrameProps, e.g. clip.std.SetFrameProps({RANGE_PROP}=0) (limited, as "
        "most YUV video is) or 1 (full, as most RGB is)",
    )


def _chroma_location(props: Mapping[str, object], where: str) -> int:
    value = props.get(CHROMA_LOCATION_PROP, LEFT)
    if _is_int(value) and value in CHROMA_LOCATIONS:
        return value
    known = ", ".join(f"{code} ({name})" for code, name in CHROMA_LOCATIONS.items())
    raise _problem(
        where,
        f"{_found(CHROMA_LOCATION_PROP, value)}, not a chroma location resize knows ({known}); "
        f"set the clip's {CHROMA_LOCATION_PROP} with std.SetFrameProps, e.g. "
        f"clip.std.SetFrameProps({CHROMA_LOCATION_PROP}=0) (left, as MPEG-2, H.264 and HEVC "
        "video mostly is)",
    )
