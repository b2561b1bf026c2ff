"""Every input format family and depth class through Interpolate: the output keeps the format,
source frames come out bit-exact with their properties, synthesised frames are resize's
conversion of the network's RGBS frame with the source frame's matrix, range and chroma
location, and bad float samples never reach the network. Where only the conversions around
the network are checked, its frame is a blend of the two source frames (conftest's
``blended``); the bad-sample tests run the random network. Filters are built with tile=0:
tiling is not the subject, and the automatic choice would first measure a probe window."""

from __future__ import annotations

import numpy as np
import pytest
import vapoursynth as vs
from filter_clips import HEIGHT, WIDTH, clip_from_arrays, moving_clip, pattern, random_network

import vsdain

core = vs.core

FORMATS = [
    vs.RGBS,
    vs.RGBH,
    vs.RGB24,
    vs.RGB48,
    vs.YUV420P8,
    vs.YUV420P10,
    vs.YUV422P8,
    vs.YUV444P16,
    vs.YUV444PS,
    vs.YUV420PH,
]
DURATION_PROPS = ("_DurationNum", "_DurationDen")


@pytest.fixture(scope="module")
def network():
    return random_network()


def source_clip(format: int, length: int = 2) -> vs.VideoNode:
    rgb = moving_clip(length)
    if format == vs.RGBS:
        return rgb
    family = core.get_video_format(format).color_family
    matrix = {"matrix_s": "709"} if family == vs.YUV else {}
    return rgb.resize.Bicubic(format=format, **matrix)


def raw(frame: vs.VideoFrame) -> list[bytes]:
    """The planes' bytes: equality is bit-exactness, NaN included."""
    return [np.array(frame[plane]).tobytes() for plane in range(frame.format.num_planes)]


def props(frame: vs.VideoFrame, *drop: str) -> dict:
    return {k: v for k, v in frame.props.items() if k not in (*DURATION_PROPS, *drop)}


def name(format: int) -> str:
    return core.get_video_format(format).name


@pytest.mark.parametrize("format", FORMATS, ids=name)
def test_format_in_is_format_out_with_untouched_sources(network, blended, format):
    # The network's frame is a blend of the two sources here (conftest's ``blended``): the
    # conversions in and out are the subject; the network's own frame is in the tests below.
    clip = source_clip(format)
    output = vsdain.Interpolate(clip, 2, sc=False, model=network, tile=0)
    assert output.format.id == format
    assert (output.width, output.height) == (WIDTH, HEIGHT)
    sources = [clip.get_frame(k) for k in range(2)]
    frames = [output.get_frame(n) for n in range(4)]
    # Output 0 and 2 are source frames 0 and 1; output 3 repeats the last one.
    for n, k in ((0, 0), (2, 1), (3, 1)):
        assert frames[n].format.id == format
        assert raw(frames[n]) == raw(sources[k]), n
    assert props(frames[0]) == props(sources[0])
    assert props(frames[2]) == props(sources[1])
    assert props(frames[3]) == props(sources[1], "_AbsoluteTime")
    synthesised = frames[1]
    assert synthesised.format.id == format
    assert raw(synthesised) != raw(sources[0]) and raw(synthesised) != raw(sources[1])
    assert props(synthesised) == props(sources[0], "_AbsoluteTime")
    for plane in range(synthesised.format.num_planes):
        assert np.isfinite(np.asarray(synthesised[plane], dtype=np.float64)).all()


def with_props(clip: vs.VideoNode, **values) -> vs.VideoNode:
    return clip.std.SetFrameProps(**values)


@pytest.mark.parametrize(
    "stated",
    [{}, {"_Range": 1, "_ChromaLocation": 2}],
    ids=["limited-left", "full-top_left"],
)
def test_yuv420p8_synthesised_frame_is_resize_of_the_network_frame(network, blended, stated):
    # The network's frame is a blend here too: what is checked is the conversion around it.
    yuv = with_props(source_clip(vs.YUV420P8), **stated) if stated else source_clip(vs.YUV420P8)
    ours = vsdain.Interpolate(yuv, sc=False, model=network, tile=0).get_frame(1)
    # The same conversion by hand: resize reads the frames' props on the way in, and is told
    # the same matrix, range and chroma location on the way back.
    rgb = yuv.resize.Bicubic(format=vs.RGBS)
    network_frame = vsdain.Interpolate(rgb, sc=False, model=network, tile=0)[1]
    out_props = {
        "matrix": 1,
        "range_s": "full" if stated else "limited",
        "chromaloc": 2 if stated else 0,
    }
    by_hand = network_frame.resize.Bicubic(
        format=vs.YUV420P8, dither_type="ordered", **out_props
    ).get_frame(0)
    assert raw(ours) == raw(by_hand)
    # So its round trip back to RGB differs from the network's frame by resize's own round
    # trip error, and by no more.
    network_planes = _planes(network_frame.get_frame(0))
    errors = [
        np.abs(
            _planes(_as_clip(frame).resize.Bicubic(format=vs.RGBS).get_frame(0)) - network_planes
        )
        for frame in (ours, by_hand)
    ]
    assert errors[0].max() <= errors[1].max() and errors[0].mean() <= errors[1].mean()


def _as_clip(frame: vs.VideoFrame) -> vs.VideoNode:
    blank = core.std.BlankClip(width=frame.width, height=frame.height, format=frame.format.id)
    return blank.std.ModifyFrame(clips=blank, selector=lambda n, f: frame)


def _planes(frame: vs.VideoFrame) -> np.ndarray:
    return np.stack([np.array(frame[plane], dtype=np.float64) for plane in range(3)])


def test_matrix_argument_is_used_both_ways(network, blended):
    stated = with_props(source_clip(vs.YUV422P8), _Matrix=1)
    unstated = with_props(source_clip(vs.YUV422P8), _Matrix=2)
    by_prop = vsdain.Interpolate(stated, sc=False, model=network, tile=0).get_frame(1)
    by_argument = vsdain.Interpolate(unstated, sc=False, model=network, tile=0, matrix="709")
    frame = by_argument.get_frame(1)
    assert raw(frame) == raw(by_prop)
    assert frame.props["_Matrix"] == 2  # the source frame's own properties, unchanged
    assert raw(by_argument.get_frame(0)) == raw(unstated.get_frame(0))


def test_source_slots_never_run_the_network(network, monkeypatch):
    calls = []
    original = network.frame_features
    monkeypatch.setattr(network, "frame_features", lambda *a: calls.append(1) or original(*a))
    output = vsdain.Interpolate(source_clip(vs.YUV420P10), sc=False, model=network, tile=0)
    output.get_frame(0)
    output.get_frame(2)
    assert calls == []


# -- non-finite and out-of-range input samples ------------------------------------------------
BAD_VALUES = {
    "nan": (np.nan, 0.0),
    "+inf": (np.inf, 1.0),
    "-inf": (-np.inf, 0.0),
    "1e30": (1e30, 1.0),
}
BAD_PIXEL = (1, 20, 30)  # plane, row, column
SYNTHESISED = (1,)  # multi=2 on two frames: the one after the bad frame


def planted(value: float) -> vs.VideoNode:
    arrays = [pattern(n) for n in range(2)]
    arrays[0][BAD_PIXEL] = value
    return clip_from_arrays(arrays)


@pytest.fixture(scope="module")
def clamped_results(network):
    """The synthesised frames of the clip whose bad sample already holds its clamped value,
    made on first use for each clamped value."""
    results = {}

    def synthesised(clamped: float) -> list[list[bytes]]:
        if clamped not in results:
            output = vsdain.Interpolate(planted(clamped), sc=False, model=network, tile=0)
            results[clamped] = [raw(output.get_frame(n)) for n in SYNTHESISED]
        return results[clamped]

    return synthesised


@pytest.mark.parametrize("bad", list(BAD_VALUES))
def test_a_bad_sample_is_clamped_before_the_network(network, clamped_results, bad):
    value, clamped = BAD_VALUES[bad]
    clip = planted(value)
    output = vsdain.Interpolate(clip, sc=False, model=network, tile=0)
    synthesised = [output.get_frame(n) for n in SYNTHESISED]
    for frame in synthesised:
        assert all(np.isfinite(np.asarray(frame[p])).all() for p in range(3))
    assert [raw(frame) for frame in synthesised] == clamped_results(clamped)
    # The source frame is passed through untouched, bad sample included.
    assert raw(output.get_frame(0)) == raw(clip.get_frame(0))
