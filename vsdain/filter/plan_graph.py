"""The plans on the VapourSynth graph: per-source flags, one plan per output frame, and the
output-aligned source clips the plans pick from.

Flags and plans live on 1x1 clips, so reading them never copies a picture. Every node is
built here, when the filter is built; frame callbacks only read properties and pick among
nodes that already exist.
"""

from __future__ import annotations

import vapoursynth as vs

from .dedup import SCORE_PROP, DuplicateDetector
from .plan import SourceFlags, plan_frame, plan_props, reach, read_plan
from .scenecut import NEXT_PROP, SceneCutDetector, marked_cut
from .timing import FrameTiming

# On the source flags clip, frame k: 1 when frame k is a new picture / when the pair
# (k - 1, k) is a scene cut.
KEPT_PROP = "DainKept"
CUT_BEFORE_PROP = "DainCutBefore"


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


def shifted(clip: vs.VideoNode, offset: int) -> vs.VideoNode:
    """Frame k is ``clip``'s frame k + offset, clamped to the clip."""
    length = clip.num_frames
    if offset == 0:
        return clip
    if offset > 0:
        return clip[-1] * length if offset >= length else clip[offset:] + clip[-1] * offset
    if -offset >= length:
        return clip[0] * length
    return clip[0] * -offset + clip[:offset]


def offset_clips(
    clip: vs.VideoNode, offsets: range, timing: FrameTiming
) -> dict[int, vs.VideoNode]:
    """For each offset d, the output-length clip whose frame n is ``clip``'s frame
    floor(position of n) + d (clamped to the clip)."""
    return {offset: aligned(shifted(clip, offset), timing) for offset in offsets}


def source_flags(
    clip: vs.VideoNode, cuts: SceneCutDetector | None, duplicates: DuplicateDetector | None
) -> vs.VideoNode:
    """A 1x1 clip as long as ``clip``; frame k carries ``DainKept`` and ``DainCutBefore`` (see
    :class:`vsdain.filter.plan.SourceFlags`). A cut is found by ``cuts`` or marked on the
    frames by another detector (:func:`marked_cut`); None: no cuts at all. A frame is a
    duplicate when ``duplicates`` scores it below its threshold; None: every frame is kept."""
    length = clip.num_frames
    blank = vs.core.std.BlankClip(
        format=vs.GRAY8, width=1, height=1, length=length, fpsnum=clip.fps_num or 1,
        fpsden=clip.fps_den or 1,
    )  # fmt: skip
    clips = [blank, blank]  # ModifyFrame passes a lone frame, not a list, for one clip
    if cuts is not None:
        clips += [shifted(clip, -1), clip, shifted(cuts.scores(clip), -1)]
    if duplicates is not None:
        clips.append(duplicates.scores(clip))

    def mark(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        cut = cuts is not None and n > 0
        cut = cut and (marked_cut(f[2].props, f[3].props) or f[4].props[NEXT_PROP] == 1)
        duplicate = duplicates is not None and f[-1].props[SCORE_PROP] < duplicates.threshold
        out = f[0].copy()
        out.props[KEPT_PROP] = int(n == 0 or cut or not duplicate)
        out.props[CUT_BEFORE_PROP] = int(cut)
        return out

    return blank.std.ModifyFrame(clips=clips, selector=mark)


def plan_clip(flags: vs.VideoNode, timing: FrameTiming, max_run: int) -> vs.VideoNode:
    """A 1x1 clip as long as the output; frame n carries its :class:`FramePlan` (see
    :func:`vsdain.filter.plan.plan_props`), computed from the flags of the source frames
    within :func:`vsdain.filter.plan.reach` of its position only. ``max_run``: 0 without
    dedup."""
    offsets = reach(max_run, timing.span)
    clips = list(offset_clips(flags, offsets, timing).values())

    def plan(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        start = timing.slot(n).left + offsets.start

        def flags_of(k: int) -> SourceFlags:
            props = f[k - start].props
            return SourceFlags(props[KEPT_PROP] == 1, props[CUT_BEFORE_PROP] == 1)

        out = f[0].copy()
        out.props.update(plan_props(plan_frame(n, timing, flags_of, max_run)))
        return out

    return clips[0].std.ModifyFrame(clips=clips, selector=plan)


def by_plan(
    clips: dict[int, vs.VideoNode], plans: vs.VideoNode, timing: FrameTiming, end: str
) -> vs.VideoNode:
    """An output-length clip whose frame n is the plan's ``end`` ("first" or "second") source
    frame, picked from ``clips`` (:func:`offset_clips` over every offset that end takes; only
    SYNTHESISE plans have a second frame, and only they may ask for one)."""
    base = next(iter(clips.values()))
    if len(clips) == 1:
        return base

    def choose(n: int, f: vs.VideoFrame) -> vs.VideoNode:
        plan = read_plan(f.props)
        index = plan.first if end == "first" else plan.second
        if index is None:
            raise RuntimeError(f"internal error: output frame {n}'s plan has no second frame")
        return clips[index - timing.slot(n).left]

    return base.std.FrameEval(choose, prop_src=plans, clip_src=list(clips.values()))
