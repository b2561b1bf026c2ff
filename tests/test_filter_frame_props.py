"""Each frame's _Matrix, _Range and _ChromaLocation on the way to the network and back: odd
values fail with the frame number, the value and the fix before resize sees them, missing ones
take the documented defaults, good ones convert exactly as resize does, and every resize node
is built with the filter, none while frames are made."""

from __future__ import annotations

import numpy as np
import pytest
import vapoursynth as vs

from vsdain.filter import formats
from vsdain.filter.formats import Conversion, needs_matrix

core = vs.core

WIDTH, HEIGHT, LENGTH = 64, 48, 4
BAD = 2  # the frame that carries the odd property


def content(format: int = vs.YUV420P8) -> vs.VideoNode:
    """LENGTH frames of ramps in every plane, different on each frame, so matrix, range and
    chroma location all change the conversion; BlankClip sets none of the three properties."""
    blank = core.std.BlankClip(format=format, width=WIDTH, height=HEIGHT, length=LENGTH)
    is_float = blank.format.sample_type == vs.FLOAT
    top = 1.0 if is_float else (1 << blank.format.bits_per_sample) - 1

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for plane in range(out.format.num_planes):
            samples = np.asarray(out[plane])
            y, x = np.mgrid[0 : samples.shape[0], 0 : samples.shape[1]]
            ramp = ((x * (plane + 2) + y * (3 - plane) + 5 * n) % 64) / 63
            samples[...] = ramp * top if is_float else np.round(ramp * top)
        return out

    return blank.std.ModifyFrame(clips=blank, selector=fill)


def tagged(clip: vs.VideoNode, **props: object) -> vs.VideoNode:
    return clip.std.SetFrameProps(**props)


def with_frame(clip: vs.VideoNode, frame: vs.VideoNode) -> vs.VideoNode:
    """``clip`` with frame BAD replaced by the one frame of ``frame``."""
    return clip[:BAD] + frame + clip[BAD + 1 :]


def odd_frame(clip: vs.VideoNode, **props: object) -> vs.VideoNode:
    return with_frame(clip, tagged(clip[BAD], **props))


def planes(frame: vs.VideoFrame) -> list[bytes]:
    return [np.asarray(frame[plane]).tobytes() for plane in range(frame.format.num_planes)]


YUV_709 = {"_Matrix": 1}

# (property, value, what the message says of it, the fix it names)
ODD_YUV = {
    "matrix-99": ({"_Matrix": 99}, "_Matrix is 99, not a matrix resize knows", "matrix="),
    "matrix-3-reserved": ({"_Matrix": 3}, "_Matrix is 3, not a matrix resize knows", "matrix="),
    "matrix-11-st2085": ({"_Matrix": 11}, "_Matrix is 11, not a matrix resize knows", "matrix="),
    "matrix-2-unspecified": ({"_Matrix": 2}, "_Matrix is 2 (unspecified)", "matrix="),
    "matrix-0-rgb": ({"_Matrix": 0}, "_Matrix is 0 (RGB)", "matrix="),
    "matrix-float": ({"_Matrix": 1.0}, "_Matrix is 1.0, a float, not an integer", "matrix="),
    "matrix-str": ({"_Matrix": "709"}, "_Matrix is '709', a str, not an integer", "matrix="),
    "matrix-bytes": ({"_Matrix": b"709"}, "_Matrix is b'709', a bytes, not an integer", "matrix="),
    "matrix-list": ({"_Matrix": [1, 1]}, "_Matrix is [1, 1], a list, not an integer", "matrix="),
    "range-5": ({"_Range": 5}, "_Range is 5, not 0 (limited) or 1 (full)", "SetFrameProps"),
    "range-float": ({"_Range": 1.0}, "_Range is 1.0, a float, not an integer", "SetFrameProps"),
    "chroma-location-9": (
        {"_ChromaLocation": 9},
        "_ChromaLocation is 9, not a chroma location resize knows",
        "SetFrameProps",
    ),
    "chroma-location-str": (
        {"_ChromaLocation": "left"},
        "_ChromaLocation is 'left', a str, not an integer",
        "SetFrameProps",
    ),
}


def assert_names(failure: pytest.ExceptionInfo, where: str, found: str, fix: str) -> None:
    message = str(failure.value)
    assert f"Interpolate: {where}: " in message
    assert found in message
    assert fix in message
    # Raised before resize, whose own message names neither the frame nor the fix.
    assert "Resize error" not in message


@pytest.mark.parametrize("case", list(ODD_YUV))
def test_an_odd_property_fails_on_its_frame_before_resize(case):
    props, found, fix = ODD_YUV[case]
    clip = odd_frame(tagged(content(), **YUV_709), **props)
    rgb = Conversion(clip.format).to_network(clip)
    with pytest.raises(vs.Error) as failure:
        rgb.get_frame(BAD)
    assert_names(failure, f"frame {BAD}", found, fix)
    for n in set(range(LENGTH)) - {BAD}:
        assert rgb.get_frame(n).format.id == vs.RGBS


def test_a_missing_matrix_on_yuv_fails_naming_matrix_argument():
    clip = tagged(content(), **YUV_709)
    clip = with_frame(clip, clip[BAD].std.RemoveFrameProps("_Matrix"))
    with pytest.raises(vs.Error) as failure:
        Conversion(clip.format).to_network(clip).get_frame(BAD)
    assert_names(failure, f"frame {BAD}", "_Matrix is missing", "matrix='709'")


@pytest.mark.parametrize("case", ["matrix-99", "matrix-float", "range-5", "chroma-location-9"])
def test_an_odd_property_of_the_source_frame_fails_the_way_back(case):
    props, found, fix = ODD_YUV[case]
    good = tagged(content(), **YUV_709)
    conversion = Conversion(good.format)
    rgb = conversion.to_network(good)
    back = conversion.from_network(rgb, odd_frame(good, **props))
    with pytest.raises(vs.Error) as failure:
        back.get_frame(BAD)
    assert_names(failure, f"frame {BAD} (converted like the source frame it replaces)", found, fix)
    assert back.get_frame(BAD - 1).format.id == vs.YUV420P8


@pytest.mark.parametrize("props", [{"_Matrix": 99}, {"_Matrix": 2}, {}], ids=str)
def test_matrix_argument_replaces_any_matrix_of_the_frames(props):
    plain = content()
    clip = odd_frame(plain, **props)
    conversion = Conversion(clip.format, "709")
    ours = conversion.to_network(clip).get_frame(BAD)
    assert planes(ours) == planes(plain.resize.Bicubic(format=vs.RGBS, matrix_in=1).get_frame(BAD))
    # Even a frame whose own valid matrix differs: resize would prefer the frame's.
    other = conversion.to_network(tagged(plain, _Matrix=5)).get_frame(BAD)
    assert planes(other) == planes(ours)
    back = conversion.from_network(conversion.to_network(clip), clip).get_frame(BAD)
    assert back.format.id == vs.YUV420P8


# -- RGB clips ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("props", "found", "fix"),
    [
        ({"_Matrix": 1}, "_Matrix is 1 on an RGB clip", "RemoveFrameProps"),
        ({"_Matrix": 99}, "_Matrix is 99 on an RGB clip", "RemoveFrameProps"),
        ({"_Matrix": "rgb"}, "_Matrix is 'rgb', a str, not an integer on an RGB clip", "0"),
        ({"_Range": 5}, "_Range is 5", "SetFrameProps"),
        ({"_ChromaLocation": 9}, "_ChromaLocation is 9", "SetFrameProps"),
    ],
    ids=str,
)
def test_an_odd_property_of_an_rgb_frame_fails(props, found, fix):
    clip = odd_frame(content(vs.RGB24), **props)
    with pytest.raises(vs.Error) as failure:
        Conversion(clip.format).to_network(clip).get_frame(BAD)
    assert_names(failure, f"frame {BAD}", found, fix)


@pytest.mark.parametrize("props", [{}, {"_Matrix": 0}, {"_Matrix": 2}], ids=str)
def test_rgb_needs_no_matrix(props):
    clip = content(vs.RGB24)
    ours = Conversion(clip.format).to_network(odd_frame(clip, **props)).get_frame(BAD)
    assert planes(ours) == planes(clip.resize.Bicubic(format=vs.RGBS).get_frame(BAD))


# -- good properties: exactly resize's conversion ------------------------------------------------
# (_Matrix, _Range, _ChromaLocation) with the missing ones' defaults spelt out.
COMBINATIONS = [
    ({"_Matrix": 1}, (1, 0, 0)),  # limited and left when missing
    ({"_Matrix": 1, "_Range": 1, "_ChromaLocation": 2}, (1, 1, 2)),
    ({"_Matrix": 5, "_Range": 0, "_ChromaLocation": 1}, (5, 0, 1)),
    ({"_Matrix": 9, "_Range": 1, "_ChromaLocation": 5}, (9, 1, 5)),
]


def by_hand_in(clip: vs.VideoNode, colour: tuple[int, int, int]) -> vs.VideoNode:
    matrix, range_, location = colour
    return clip.resize.Bicubic(
        format=vs.RGBS, matrix_in=matrix, range_in=range_, chromaloc_in=location
    )


def by_hand_out(rgb: vs.VideoNode, colour: tuple[int, int, int]) -> vs.VideoNode:
    matrix, range_, location = colour
    return rgb.resize.Bicubic(
        format=vs.YUV420P8, matrix=matrix, range=range_, chromaloc=location, dither_type="ordered"
    )


@pytest.mark.parametrize(("props", "colour"), COMBINATIONS, ids=str)
def test_to_network_is_resize_with_the_frames_properties(props, colour):
    plain = content()
    ours = Conversion(plain.format).to_network(tagged(plain, **props))
    for n in range(LENGTH):
        assert planes(ours.get_frame(n)) == planes(by_hand_in(plain, colour).get_frame(n)), n


def test_the_combinations_convert_differently():
    """So the equalities above and below could fail."""
    plain = content()
    rgb = plain.resize.Bicubic(format=vs.RGBS, matrix_in=1)
    ins = {planes(by_hand_in(plain, colour).get_frame(0))[1] for _, colour in COMBINATIONS}
    outs = {planes(by_hand_out(rgb, colour).get_frame(0))[1] for _, colour in COMBINATIONS}
    assert len(ins) == len(outs) == len(COMBINATIONS)


def test_from_network_picks_each_frames_own_variant():
    """Frame n of the reference carries COMBINATIONS[n]: each converted frame equals resize
    told that frame's matrix, range and chroma location."""
    plain = content()
    reference = core.std.Splice(
        [tagged(plain[n], **props) for n, (props, _) in enumerate(COMBINATIONS)]
    )
    rgb = plain.resize.Bicubic(format=vs.RGBS, matrix_in=1)
    back = Conversion(plain.format).from_network(rgb, reference)
    for n, (_, colour) in enumerate(COMBINATIONS):
        assert planes(back.get_frame(n)) == planes(by_hand_out(rgb, colour).get_frame(n)), n


# -- nodes are built with the filter ------------------------------------------------------------
@pytest.mark.parametrize(
    ("format", "matrix", "variants"),
    [
        (vs.YUV420P8, None, 11 * 2 * 6),  # matrices x ranges x chroma locations
        (vs.YUV420P8, "709", 2 * 6),
        (vs.YUV444P16, None, 11 * 2),  # no subsampling: the chroma location changes nothing
        (vs.YUV420PH, None, 11 * 6),  # float samples have no range
        (vs.RGB24, None, 2),
        (vs.RGBH, None, 1),
    ],
    ids=["yuv420p8", "yuv420p8-matrix", "yuv444p16", "yuv420ph", "rgb24", "rgbh"],
)
def test_every_variant_is_built_with_the_filter_and_none_per_frame(
    monkeypatch, format, matrix, variants
):
    built = []
    original = formats.resize

    def counting(*args, **kwargs):
        built.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(formats, "resize", counting)
    plain = content(format)
    conversion = Conversion(plain.format, matrix)
    assert len(conversion.colours()) == variants
    rgb = conversion.to_network(tagged(plain, **YUV_709) if conversion.is_yuv else plain)
    assert len(built) == 1
    if conversion.is_yuv:
        props = [
            {"_Matrix": m, "_Range": r, "_ChromaLocation": c}
            for m, r, c in ((1, 0, 0), (5, 1, 3), (8, 1, 5), (9, 0, 2))
        ]
    else:
        props = [{}, {"_Range": 0}, {"_Range": 1}, {"_Matrix": 0, "_Range": 1}]
    reference = core.std.Splice([tagged(plain[n], **props[n]) for n in range(LENGTH)])
    back = conversion.from_network(rgb, reference)
    assert len(built) == 1 + variants
    for n in range(LENGTH):
        assert back.get_frame(n).format.id == format
    assert len(built) == 1 + variants


def test_needs_matrix_reads_odd_values_without_raising():
    yuv = core.get_video_format(vs.YUV420P8)
    assert needs_matrix(yuv, {})
    assert needs_matrix(yuv, {"_Matrix": 2})
    for odd in (1, 99, 2.0, "2", b"2", [2]):
        assert not needs_matrix(yuv, {"_Matrix": odd}), odd
    assert not needs_matrix(core.get_video_format(vs.RGB24), {})
