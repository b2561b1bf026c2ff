"""Where the scene cuts are: per source pair, and mapped onto the output frames.

A cut between source frames k and k + 1 sits at source position k + 1. On the output it is
flagged once, VapourSynth's way: ``_SceneChangeNext = 1`` on the last output frame before that
position and ``_SceneChangePrev = 1`` on the first one at or after it, whatever the output rate
(below the source's, several source pairs fall between two output frames and any of their cuts
counts). The flags live on 1x1 clips, so reading them never copies a picture.
"""

from __future__ import annotations

import math

import vapoursynth as vs

from .scenecut import NEXT_PROP, SceneCutDetector, marked_cut
from .timing import FrameTiming

# On the source-length cut clip, frame k: 1 when source frames k and k + 1 are a cut.
PAIR_CUT_PROP = "DainPairCut"


def _flags_clip(length: int, fps: tuple[int, int]) -> vs.VideoNode:
    return vs.core.std.BlankClip(
        format=vs.GRAY8, width=1, height=1, length=length, fpsnum=fps[0], fpsden=fps[1]
    )


def aligned(source: vs.VideoNode, timing: FrameTiming) -> vs.VideoNode:
    """An output-length clip whose frame n is ``source``'s frame ``timing.slot(n).left``."""
    cycle, offsets = timing.select_every()
    result = source.std.SelectEvery(cycle=cycle, offsets=offsets, modify_duration=False)
    if result.num_frames != timing.output_length:
        raise RuntimeError(
            f"internal error: SelectEvery gave {result.num_frames} frames, expected "
            f"{timing.output_length}"
        )
    return result


def pair_cuts(clip: vs.VideoNode, detector: SceneCutDetector) -> vs.VideoNode:
    """A 1x1 clip as long as ``clip``; frame k carries ``DainPairCut`` = 1 when the pair
    (k, k + 1) is a cut, found by ``detector`` or marked on the frames by another detector
    (see :func:`marked_cut`), else 0. The last frame has no pair: 0."""
    length = clip.num_frames
    following = clip[1:] + clip[-1]
    flags = _flags_clip(length, (clip.fps_num, clip.fps_den))
    last = length - 1

    def mark(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        out = f[0].copy()
        left, right, scores = f[1].props, f[2].props, f[3].props
        cut = n < last and (marked_cut(left, right) or scores[NEXT_PROP] == 1)
        out.props[PAIR_CUT_PROP] = int(cut)
        return out

    return flags.std.ModifyFrame(
        clips=[flags, clip, following, detector.scores(clip)], selector=mark
    )


def output_cuts(cuts: vs.VideoNode, timing: FrameTiming) -> vs.VideoNode:
    """A 1x1 clip as long as the output; frame n carries ``DainPairCut`` for its own pair
    (``timing.slot(n).left``) and ``_SceneChangeNext`` = 1 when a cut lies after it and before
    output frame n + 1 (0 otherwise). ``cuts`` is :func:`pair_cuts`' clip."""
    last_source = timing.source_length - 1
    # The most source pairs between two consecutive output frames.
    span = max(1, math.ceil(timing.step))
    shifted = [cuts[j:] + cuts[-1] * j if j else cuts for j in range(span)]
    clips = [aligned(clip, timing) for clip in shifted]

    def mark(n: int, f: vs.VideoFrame | list[vs.VideoFrame]) -> vs.VideoFrame:
        # ModifyFrame passes a lone frame, not a list, when it has one clip.
        f = f if isinstance(f, list) else [f]
        left = timing.slot(n).left
        # Cuts at positions in (position of n, position of n + 1]: pairs left .. end - 1.
        end = min(math.floor((n + 1) * timing.step), last_source)
        out = f[0].copy()
        after = any(f[j].props[PAIR_CUT_PROP] == 1 for j in range(end - left))
        out.props[NEXT_PROP] = int(after)
        return out

    return clips[0].std.ModifyFrame(clips=clips, selector=mark)


def previous(flags: vs.VideoNode) -> vs.VideoNode:
    """``flags`` delayed by one frame: frame n is frame n - 1 (frame 0 is frame 0 itself,
    which the caller must ignore)."""
    return flags[:1] + flags[:-1] if flags.num_frames > 1 else flags
