"""Scene-cut detection from luma differences, with core VapourSynth filters only.

The measure: d_k is the mean absolute luma difference between source frames k and k + 1
(``std.PlaneStats``' PlaneStatsDiff, 0..1 of full range) on a small thumbnail, and the pair's
score is

    score_k = d_k / max(d_{k-1}, d_{k+1}, MOTION_FLOOR)

A cut is a single spike: the picture changes completely once, while the motion around it
changes it little. Ordinary motion, even fast, is sustained, so its neighbours are as large
as it is (score about 1), and so is a flash (two spikes side by side). The floor keeps a
near-still scene from turning a small absolute change into a large ratio; in such a scene a
cut needs d_k >= threshold * MOTION_FLOOR (0.09 at the defaults).

Measured at the defaults (128-pixel thumbnail): Big Buck Bunny's cuts at 282/283, 375/376
and 550/551 score 9.5, 8.4 and 11.1 and its highest other pair 1.9; chaplin.mp4 (no cut)
peaks at 1.0. The threshold of 3 sits nearer the non-cuts than the cuts on purpose: a missed
cut gives a ghosted blend of two shots, a false one only a repeated frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import vapoursynth as vs

# Longer side of the grey thumbnail the differences are measured on: small enough that grain
# and fine texture average out and the analysis costs nothing next to the network.
ANALYSIS_SIZE = 128
# Differences below 3 % of full range count as a still scene (busy motion in the test clips
# stays around 0.03 at this thumbnail size).
MOTION_FLOOR = 0.03
DEFAULT_THRESHOLD = 3.0

DIFFERENCE_PROP = "PlaneStatsDiff"
SCORE_PROP = "DainSceneScore"
NEXT_PROP = "_SceneChangeNext"
PREV_PROP = "_SceneChangePrev"


def cut_score(difference: float, neighbours: Sequence[float], floor: float = MOTION_FLOOR) -> float:
    """score = difference / max(neighbours..., floor); see the module docstring."""
    return difference / max([*neighbours, floor])


def is_flagged(props: Mapping[str, object], key: str) -> bool:
    """Whether a scene-change property is set the way VapourSynth defines it: the integer 1.
    Anything else (0, -1, the string "1", an array such as [1, 1], absent) is no cut."""
    value = props.get(key)
    return type(value) is int and value == 1


def marked_cut(left_props: Mapping[str, object], right_props: Mapping[str, object]) -> bool:
    """Whether another detector marked a cut between two consecutive frames:
    ``_SceneChangeNext`` = 1 on the left one or ``_SceneChangePrev`` = 1 on the right one."""
    return is_flagged(left_props, NEXT_PROP) or is_flagged(right_props, PREV_PROP)


class SceneCutDetector:
    """Finds hard cuts between consecutive frames of a clip (any constant format and size).

    threshold: a pair is a cut when its score (see the module docstring) is at least this;
    > 0, default 3.0. Higher finds fewer cuts.
    reach: how many pairs on each side count as neighbours, >= 1 (default 1). On material
    with held frames (anime on twos or threes) the pairs next to a drawing change are
    duplicates that hardly change, so every drawing change would look like a single spike;
    with a reach past the longest hold, the neighbours include the drawing changes around it.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, reach: int = 1) -> None:
        if not threshold > 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        if reach < 1:
            raise ValueError(f"reach must be at least 1, got {reach}")
        self.threshold = float(threshold)
        self.reach = int(reach)

    def differences(self, clip: vs.VideoNode) -> vs.VideoNode:
        """A GRAYS thumbnail clip as long as ``clip``; frame k carries ``PlaneStatsDiff`` =
        d_k, the difference to frame k + 1 (0 on the last frame)."""
        longer = max(clip.width, clip.height)
        width = max(1, round(clip.width * ANALYSIS_SIZE / longer))
        height = max(1, round(clip.height * ANALYSIS_SIZE / longer))
        # The matrix only sets the luma weights for RGB input; YUV and GRAY keep their luma.
        matrix = {"matrix_s": "709"} if clip.format.color_family == vs.RGB else {}
        thumbnail = clip.resize.Bilinear(width, height, format=vs.GRAYS, **matrix)
        following = thumbnail[1:] + thumbnail[-1] if clip.num_frames > 1 else thumbnail
        return thumbnail.std.PlaneStats(following)

    def scores(self, clip: vs.VideoNode) -> vs.VideoNode:
        """A thumbnail clip as long as ``clip``; frame k carries ``DainSceneScore`` (float) and
        ``_SceneChangeNext`` (0 or 1) for the pair (k, k + 1). The last frame scores 0."""
        differences = self.differences(clip)
        length = clip.num_frames
        if length < 2:
            return differences.std.SetFrameProps(**{SCORE_PROP: 0.0, NEXT_PROP: 0})
        reach = min(self.reach, length - 1)
        # Shifted copies: befores[j - 1] holds d_{k-j} at frame k, afters[j - 1] d_{k+j}.
        befores = [differences[0] * j + differences[:-j] for j in range(1, reach + 1)]
        afters = [differences[j:] + differences[-1] * j for j in range(1, reach + 1)]
        threshold = self.threshold

        def score_frame(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
            current = f[0].props[DIFFERENCE_PROP]
            before_frames, after_frames = f[1 : 1 + reach], f[1 + reach :]
            neighbours = [
                frame.props[DIFFERENCE_PROP]
                for j, frame in enumerate(before_frames, start=1)
                if n - j >= 0
            ]
            # The last frame's "difference" is 0 by construction: no pair, not a neighbour.
            neighbours += [
                frame.props[DIFFERENCE_PROP]
                for j, frame in enumerate(after_frames, start=1)
                if n + j < length - 1
            ]
            out = f[0].copy()
            score = cut_score(current, neighbours) if n < length - 1 else 0.0
            out.props[SCORE_PROP] = score
            out.props[NEXT_PROP] = int(score >= threshold)
            return out

        return differences.std.ModifyFrame(
            clips=[differences, *befores, *afters], selector=score_frame
        )

    def find_cuts(self, clip: vs.VideoNode) -> list[int]:
        """Indices k with a cut between source frames k and k + 1 (reads the whole clip)."""
        return [
            k
            for k, frame in enumerate(self.scores(clip).frames(close=True))
            if frame.props[NEXT_PROP]
        ]
