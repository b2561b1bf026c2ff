"""vsdain.Interpolate(dedup=True) on cadences with known ground truth: which pair and t feed
every output frame, kept frames bit-exact, holds still, no pair across a cut, order and
thread independence, argument errors. Random weights: structure and exactness only; where
only the pair and t behind each frame matter, its frames are blends of the two source frames
instead (conftest's ``blended``). Filters are built with tile=0: tiling is not the subject, and
the automatic choice would first measure a probe window."""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
import pytest
import vapoursynth as vs
from filter_clips import SOURCE_PROP, clip_from_arrays, pattern, planes, random_network

import vsdain
from vsdain.filter.pair_cache import PairCache

core = vs.core


@pytest.fixture(scope="module")
def network():
    model = random_network()
    model.calls = Counter()
    original = model.pair_features

    def counted(*args, **kwargs):
        model.calls["pair_features"] += 1
        return original(*args, **kwargs)

    model.pair_features = counted
    return model


@pytest.fixture
def recorded(monkeypatch):
    """Every (first, second, t) PairCache is asked for."""
    calls = []
    original = PairCache.interpolated

    def record(self, first, second, t, first_frame, second_frame):
        calls.append((first, second, t))
        return original(self, first, second, t, first_frame, second_frame)

    monkeypatch.setattr(PairCache, "interpolated", record)
    return calls


def held(drawings: list[int], holds: list[int]) -> vs.VideoNode:
    """A clip of pattern(drawing) frames, each held for its count of frames."""
    arrays = [pattern(4 * d) for d, hold in zip(drawings, holds, strict=True) for _ in range(hold)]
    return clip_from_arrays(arrays)


def test_on_twos_duplicates_slots_are_synthesised_from_the_kept_pair(network, recorded):
    # Two drawings, each held for two frames: one kept pair (0, 2), run by the network.
    clip = held([0, 1], [2, 2])
    network.calls.clear()
    output = vsdain.Interpolate(clip, 2, model=network, tile=0, dedup=True)
    assert output.num_frames == 8 and output.fps == clip.fps * 2
    frames = [output.get_frame(n) for n in range(output.num_frames)]
    assert sorted(set(recorded)) == [(0, 2, Fraction(k, 4)) for k in (1, 2, 3)]
    # Kept frames bit-exact with their properties; the duplicate's slot is a new frame.
    for kept in (0, 2):
        source = clip.get_frame(kept)
        assert np.array_equal(planes(frames[2 * kept]), planes(source))
        assert frames[2 * kept].props[SOURCE_PROP] == kept
    image = planes(frames[2])
    assert not np.array_equal(image, planes(clip.get_frame(1)))
    assert frames[2].props[SOURCE_PROP] == 0
    assert "_AbsoluteTime" not in frames[2].props
    # The last drawing has nothing after it: held, as past the clip's end.
    for n in (5, 6, 7):
        assert np.array_equal(planes(frames[n]), planes(clip.get_frame(n // 2)))
    # The kept pair spans three source frames and three timestamps: computed once.
    assert network.calls["pair_features"] == 1
    durations = {(f.props["_DurationNum"], f.props["_DurationDen"]) for f in frames}
    assert durations == {(1001, 48000)}


def test_mixed_twos_and_threes_at_an_ntsc_rate(network, blended):
    clip = held([0, 1, 2], [2, 3, 1])
    output = vsdain.Interpolate(
        clip, fps_num=60000, fps_den=1001, model=network, tile=0, dedup=True
    )
    assert output.num_frames == 15
    for n in range(output.num_frames):
        output.get_frame(n)
    # Positions 2n/5; drawings at 0, 2, 5.
    expected = {(0, 2, Fraction(2, 5) * n / 2) for n in range(1, 5) if Fraction(2, 5) * n < 2} | {
        (2, 5, (Fraction(2, 5) * n - 2) / 3) for n in range(5, 13) if Fraction(2, 5) * n < 5
    }
    assert set(blended) == {call for call in expected if call[2] != 0}


def test_a_long_hold_stays_still_and_its_end_is_interpolated(network, blended):
    clip = held([0, 1, 2], [6, 2, 1])
    output = vsdain.Interpolate(clip, 2, model=network, tile=0, dedup=True, dedup_max_run=3)
    frames = [output.get_frame(n) for n in range(output.num_frames)]
    for n in range(10):
        assert np.array_equal(planes(frames[n]), planes(clip.get_frame(n // 2))), n
    assert set(blended) == {
        (5, 6, Fraction(1, 2)),
        (6, 8, Fraction(1, 4)),
        (6, 8, Fraction(1, 2)),
        (6, 8, Fraction(3, 4)),
    }


def test_no_pair_spans_a_cut(network, blended):
    shot_b = [1.0 - pattern(4 * n)[::-1] for n in range(3)]
    arrays = [pattern(0)] * 2 + [pattern(4)] * 2 + [a for a in shot_b for _ in range(2)]
    spliced = clip_from_arrays(arrays)
    # The cut marked as another detector would; the built-in one is kept out of the way (its
    # neighbour ratio sees these large synthetic steps between duplicates as spikes).
    clip = spliced[:3] + spliced[3].std.SetFrameProps(_SceneChangeNext=1) + spliced[4:]
    output = vsdain.Interpolate(clip, 2, model=network, tile=0, dedup=True, sc_threshold=1e6)
    frames = [output.get_frame(n) for n in range(output.num_frames)]
    assert all(not (first < 4 <= second) for first, second, _ in blended)
    assert (0, 2, Fraction(1, 2)) in blended and (4, 6, Fraction(1, 2)) in blended
    for n in (4, 5, 6, 7):
        assert np.array_equal(planes(frames[n]), planes(clip.get_frame(n // 2)))
    assert frames[7].props["_SceneChangeNext"] == 1


def test_request_order_and_threads_do_not_change_the_output(network, blended):
    clip = held([0, 1, 2, 3], [2, 3, 2, 1])
    sequential = vsdain.Interpolate(clip, 3, model=network, tile=0, dedup=True)
    expected = [planes(frame) for frame in sequential.frames()]
    threads = core.num_threads
    core.num_threads = 4
    try:
        output = vsdain.Interpolate(clip, 3, model=network, tile=0, dedup=True)
        order = list(range(output.num_frames))
        random.Random(5).shuffle(order)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda n: (n, planes(output.get_frame(n))), order))
    finally:
        core.num_threads = threads
    for n, image in results:
        assert np.array_equal(image, expected[n]), n


def test_dedup_false_is_the_plain_filter(network, blended):
    clip = held([0, 1], [2, 1])
    plain = vsdain.Interpolate(clip, 2, model=network, tile=0)
    off = vsdain.Interpolate(clip, 2, model=network, tile=0, dedup=False)
    for n in range(plain.num_frames):
        assert np.array_equal(planes(plain.get_frame(n)), planes(off.get_frame(n)))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"dedup": 1}, "dedup must be True or False"),
        ({"dedup_threshold": 0.01}, "dedup_threshold has no effect without dedup=True"),
        ({"dedup_max_run": 2}, "dedup_max_run has no effect without dedup=True"),
        ({"dedup": True, "dedup_threshold": 0}, "dedup_threshold must be a positive number"),
        ({"dedup": True, "dedup_threshold": "low"}, "dedup_threshold must be a positive number"),
        ({"dedup": True, "dedup_threshold": float("nan")}, "dedup_threshold must be a positive"),
        ({"dedup": True, "dedup_max_run": 0}, "dedup_max_run must be an integer >= 1"),
        ({"dedup": True, "dedup_max_run": 2.5}, "dedup_max_run must be an integer >= 1"),
        ({"dedup": True, "dedup_max_run": True}, "dedup_max_run must be an integer >= 1"),
    ],
)
def test_bad_dedup_arguments_are_named(network, arguments, message):
    with pytest.raises(vs.Error, match=f"Interpolate: {message}"):
        vsdain.Interpolate(held([0, 1], [1, 1]), model=network, tile=0, **arguments)
