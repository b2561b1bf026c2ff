"""One plan per output frame: the scene-change flags agree with the pixels in every mode, the
plain and the dedup filter make the same frames where nothing is duplicated, and however many
threads ask for distinct pairs at once, at most PAIR_CAPACITY pairs' features are alive.

The network's frames are replaced by a blend of the two source frames (cheap and exact), except
in the memory test, which runs the random network and counts its live pair features."""

from __future__ import annotations

import threading
import time
import weakref
from fractions import Fraction

import numpy as np
import pytest
import vapoursynth as vs
from filter_clips import clip_from_arrays, pattern, planes, random_network

import vsdain
from vsdain.filter import pair_cache
from vsdain.filter.pair_cache import PairCache
from vsdain.filter.scenecut import NEXT_PROP, PREV_PROP

core = vs.core


@pytest.fixture(scope="module")
def network():
    return random_network()


@pytest.fixture
def blended(monkeypatch):
    """PairCache.interpolated returns (1 - t) * first + t * second; records its pairs."""
    calls = []

    def blend(self, first, second, t, first_frame, second_frame):
        calls.append((first, second, t))
        return ((1 - float(t)) * planes(first_frame) + float(t) * planes(second_frame)).astype(
            np.float32
        )

    monkeypatch.setattr(PairCache, "interpolated", blend)
    return calls


def drawn_on_twos(drawings: int, base: float, step: float) -> list[np.ndarray]:
    """Each drawing held for two frames; consecutive drawings differ by ``step`` in
    brightness (a large drawing change), around ``base``."""
    arrays = []
    for d in range(drawings):
        level = base + step * (d % 2)
        arrays += [np.clip(level + 0.02 * pattern(3 * d), 0, 1).astype(np.float32)] * 2
    return arrays


def anime_with_a_cut() -> tuple[vs.VideoNode, int]:
    """A dark shot then a bright one, both drawn on twos with large drawing changes; returns
    the clip and the index of the first frame after the cut."""
    dark = drawn_on_twos(6, 0.05, 0.15)
    bright = drawn_on_twos(6, 0.8, 0.15)
    return clip_from_arrays(dark + bright), len(dark)


def source_pixels(clip: vs.VideoNode) -> list[np.ndarray]:
    return [planes(clip.get_frame(n)) for n in range(clip.num_frames)]


@pytest.mark.parametrize("dedup", [True, False])
def test_cut_flags_sit_only_at_the_cut_and_on_copies(network, blended, dedup):
    clip, cut = anime_with_a_cut()
    output = vsdain.Interpolate(clip, 2, model=network, dedup=dedup)
    frames = [output.get_frame(n) for n in range(output.num_frames)]
    flagged = [n for n, frame in enumerate(frames) if frame.props.get(NEXT_PROP) == 1]
    # The drawing changes are not cuts: only the one real cut is flagged, on the last output
    # frame before it, and the first one after it carries the matching _SceneChangePrev.
    assert flagged == [2 * cut - 1]
    assert [n for n, f in enumerate(frames) if f.props.get(PREV_PROP) == 1] == [2 * cut]
    # A flagged frame is never synthesised across the cut it announces: its pixels are those
    # of a source frame before the cut.
    sources = source_pixels(clip)
    for n in flagged:
        assert any(np.array_equal(planes(frames[n]), image) for image in sources[:cut])
        assert np.array_equal(planes(frames[n + 1]), sources[cut])
    # Nothing was synthesised from a pair that spans the cut.
    assert all(not first < cut <= second for first, second, _ in blended)


@pytest.mark.parametrize("dedup", [True, False])
def test_every_flag_on_the_output_matches_its_pixels(network, blended, dedup):
    """Wherever the filter says _SceneChangeNext, frames n and n + 1 are not an interpolation
    between the same two source frames (the cut lies between them)."""
    clip, _ = anime_with_a_cut()
    output = vsdain.Interpolate(clip, 2, model=network, dedup=dedup, sc_threshold=2.0)
    sources = source_pixels(clip)
    frames = [output.get_frame(n) for n in range(output.num_frames)]
    flagged = [n for n, frame in enumerate(frames) if frame.props.get(NEXT_PROP) == 1]
    assert flagged
    for n in flagged:
        assert any(np.array_equal(planes(frames[n]), image) for image in sources)


def distinct_frames_with_a_cut() -> vs.VideoNode:
    moving = [pattern(n) for n in range(6)]
    other = [np.clip(1.0 - 0.5 * pattern(2 * n + 40), 0, 1).astype(np.float32) for n in range(5)]
    return clip_from_arrays(moving + other)


@pytest.mark.parametrize("rate", [{"multi": 2}, {"multi": 3}, {"fps_num": 60000, "fps_den": 1001}])
def test_plain_and_dedup_make_the_same_frames_without_duplicates(network, blended, rate):
    clip = distinct_frames_with_a_cut()
    plain = vsdain.Interpolate(clip, model=network, **rate)
    plain_frames = [(planes(f), dict(f.props)) for f in plain.frames()]
    plain_calls = sorted(blended)
    blended.clear()
    dedup = vsdain.Interpolate(clip, model=network, dedup=True, **rate)
    dedup_frames = [(planes(f), dict(f.props)) for f in dedup.frames()]
    assert sorted(blended) == plain_calls
    assert len(dedup_frames) == len(plain_frames)
    for n, ((image, props), (other_image, other_props)) in enumerate(
        zip(plain_frames, dedup_frames, strict=True)
    ):
        assert np.array_equal(image, other_image), n
        assert props == other_props, n
    assert any(props.get(NEXT_PROP) == 1 for _, props in plain_frames)


class _Pair:
    """Stands for a pair's features (weakly referenceable, like PairFeatures)."""


def test_at_most_pair_capacity_pairs_are_alive_with_eight_threads(network, monkeypatch):
    """8 VapourSynth threads ask for 8 distinct pairs at once; the live pair features
    (counted through weak references, so nothing here keeps them alive) never exceed the
    cache's capacity. The network's three steps are stand-ins that take a little time, so the
    requests overlap as they would with the real one."""
    live: weakref.WeakSet = weakref.WeakSet()
    most = [0]
    lock = threading.Lock()

    def pair(self, first, second):
        time.sleep(0.02)
        made = _Pair()
        with lock:
            live.add(made)
            most[0] = max(most[0], len(live))
        return made

    def synthesize(self, pair, t):
        time.sleep(0.02)
        return np.zeros((3, 32, 32), np.float32)

    monkeypatch.setattr(PairCache, "_frame_features", lambda self, frame: object())
    monkeypatch.setattr(PairCache, "_pair", pair)
    monkeypatch.setattr(PairCache, "_synthesize", synthesize)
    clip = clip_from_arrays([pattern(n, 32, 32) for n in range(17)])
    threads = core.num_threads
    core.num_threads = 8
    try:
        output = vsdain.Interpolate(clip, 2, model=network, sc=False)
        requests = [output.get_frame_async(2 * k + 1) for k in range(16)]
        frames = [request.result() for request in requests]
    finally:
        core.num_threads = threads
    assert len(frames) == 16
    assert 1 <= most[0] <= pair_cache.PAIR_CAPACITY


def test_t_of_a_pair_spanning_a_duplicate_is_exact(network, blended):
    clip = clip_from_arrays([pattern(0), pattern(0), pattern(4)])
    list(vsdain.Interpolate(clip, 2, model=network, dedup=True).frames(close=True))
    assert (0, 2, Fraction(1, 4)) in blended
