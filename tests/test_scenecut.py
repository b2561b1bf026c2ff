"""The built-in scene-cut detector: synthetic cuts and motion, and the real clips."""

from __future__ import annotations

import numpy as np
import pytest
import vapoursynth as vs
from filter_clips import clip_from_arrays, moving_clip, pattern

from vsdain.filter.scenecut import (
    DEFAULT_THRESHOLD,
    MOTION_FLOOR,
    NEXT_PROP,
    SCORE_PROP,
    SceneCutDetector,
    cut_score,
    marked_cut,
)

core = vs.core
BBB_CUTS = [282, 375, 550]


def scores(clip: vs.VideoNode, detector: SceneCutDetector | None = None) -> list[float]:
    detector = detector or SceneCutDetector()
    return [frame.props[SCORE_PROP] for frame in detector.scores(clip).frames()]


def test_score_is_the_difference_over_its_largest_neighbour_or_the_floor():
    assert cut_score(0.3, [0.01, 0.1]) == pytest.approx(3.0)
    assert cut_score(0.3, [0.0, 0.0]) == pytest.approx(0.3 / MOTION_FLOOR)
    assert cut_score(0.3, []) == pytest.approx(0.3 / MOTION_FLOOR)


def test_a_splice_of_two_different_shots_is_found_and_nothing_else():
    shot_a = [pattern(n) for n in range(6)]
    shot_b = [1.0 - pattern(n)[::-1] for n in range(6)]
    clip = clip_from_arrays(shot_a + shot_b)
    assert SceneCutDetector().find_cuts(clip) == [5]


def test_steady_motion_and_a_still_picture_are_not_cuts():
    assert SceneCutDetector().find_cuts(moving_clip(8)) == []
    still = core.std.BlankClip(format=vs.RGBS, width=64, height=48, length=5, color=[0.5] * 3)
    assert SceneCutDetector().find_cuts(still) == []
    assert scores(still) == [0.0] * 5


def test_a_one_frame_flash_is_not_a_cut():
    frames = [pattern(0)] * 4 + [np.ones_like(pattern(0))] + [pattern(0)] * 4
    assert SceneCutDetector().find_cuts(clip_from_arrays(frames)) == []


def test_threshold_decides():
    shot_a = [pattern(n) for n in range(4)]
    shot_b = [np.full_like(pattern(0), 0.5) for _ in range(4)]
    clip = clip_from_arrays(shot_a + shot_b)
    score = scores(clip)[3]
    assert SceneCutDetector(score * 0.9).find_cuts(clip) == [3]
    assert SceneCutDetector(score * 1.1).find_cuts(clip) == []
    with pytest.raises(ValueError):
        SceneCutDetector(0)


def test_drawing_changes_on_twos_are_cuts_only_to_a_detector_with_too_short_a_reach():
    """On twos every drawing change sits between two duplicate pairs that hardly change, so
    with one neighbour per side a large drawing change looks like a single spike; reaching two
    pairs out finds the drawing changes around it, and a real splice still stands out."""
    drawings = [pattern(9 * n) for n in range(6)]  # big moves: 36 px of the ramp per drawing
    on_twos = [drawing for drawing in drawings for _ in range(2)]
    other_shot = [1.0 - pattern(9 * n)[::-1] for n in range(6)]
    clip = clip_from_arrays(on_twos + [shot for shot in other_shot for _ in range(2)])
    splice = len(on_twos) - 1
    short = SceneCutDetector().find_cuts(clip)
    assert len(short) > 1 and splice in short  # the drawing changes are taken for cuts
    assert SceneCutDetector(reach=2).find_cuts(clip) == [splice]
    assert SceneCutDetector(reach=2).find_cuts(clip_from_arrays(on_twos)) == []
    with pytest.raises(ValueError, match="reach"):
        SceneCutDetector(reach=0)


def test_scores_clip_matches_the_source_length_and_last_frame_scores_zero():
    clip = moving_clip(5)
    marked = SceneCutDetector().scores(clip)
    assert marked.num_frames == 5
    last = marked.get_frame(4).props
    assert last[SCORE_PROP] == 0.0 and last[NEXT_PROP] == 0


def test_marks_from_other_detectors():
    assert marked_cut({NEXT_PROP: 1}, {})
    assert marked_cut({}, {"_SceneChangePrev": 1})
    assert not marked_cut({NEXT_PROP: 0, "_SceneChangePrev": 1}, {NEXT_PROP: 1})


# -- real clips -------------------------------------------------------------------------------
def read(path) -> vs.VideoNode:
    return core.bs.VideoSource(str(path)).resize.Bicubic(format=vs.RGBS, matrix_in_s="709")


@pytest.fixture(scope="module")
def bbb(shared_data) -> vs.VideoNode:
    return read(shared_data / "clips" / "big_buck_bunny_0_30.webm")


@pytest.fixture(scope="module")
def chaplin(shared_data) -> vs.VideoNode:
    return read(shared_data / "clips" / "chaplin.mp4")


def test_big_buck_bunny_has_exactly_its_three_cuts(bbb):
    found = scores(bbb)
    assert [k for k, score in enumerate(found) if score >= DEFAULT_THRESHOLD] == BBB_CUTS
    # With a margin on both sides (measured: cuts 8.4 .. 11.1, everything else <= 1.9).
    assert min(found[k] for k in BBB_CUTS) > 2 * DEFAULT_THRESHOLD
    assert (
        max(score for k, score in enumerate(found) if k not in BBB_CUTS) < DEFAULT_THRESHOLD / 1.4
    )


def test_big_buck_bunny_native_luma_gives_the_same_cuts(shared_data):
    native = core.bs.VideoSource(str(shared_data / "clips" / "big_buck_bunny_0_30.webm"))
    assert SceneCutDetector().find_cuts(native) == BBB_CUTS


def test_chaplin_has_no_cut_and_a_splice_onto_it_is_one(chaplin, bbb):
    assert SceneCutDetector().find_cuts(chaplin) == []
    other = bbb[600:640].resize.Bicubic(chaplin.width, chaplin.height).std.AssumeFPS(chaplin)
    spliced = chaplin[:50] + other
    assert SceneCutDetector().find_cuts(spliced) == [49]
