"""What every output frame is made of: one plan per output frame, for every mode.

Pure Python (no VapourSynth, no torch). The filter computes a :class:`FramePlan` for output
frame n from the flags of the source frames around its position, and everything else (which
source frames are read, whether the network runs, the scene-change flags on the frame) is
read off that plan. The pixels and the flags therefore come from one set of cuts and cannot
contradict each other.

The source flags. Source frame k is *kept* (it is a new picture) or a duplicate of frame
k - 1, and has *cut_before* when the pair (k - 1, k) is a scene cut. Frame 0 and a frame
after a cut are always kept. Without ``dedup`` every frame is kept.

The mapping (:func:`plan_slot`). Kept frames stay at their true positions on the source
timeline. An output frame at position p with kept frames a <= p < b is synthesised from the
pair (a, b) at t = (p - a) / (b - a); at p = a it is frame a itself. A run of more than
``max_run`` duplicates is a real hold (a still shot), and so is a run that reaches the end of
the clip: inside it each slot repeats the source frame at or before it, as a pair across a
scene cut does. Without ``dedup`` (max_run 0, every frame kept) this is the plain timing:
the pair (floor(p), floor(p) + 1) at t = p - floor(p). On a variable-frame-rate timeline p
comes from the output frame's time, and t is measured in time between the starts of a and b
(:meth:`FrameTiming.between`), so frames of unequal durations are weighed by how long they
lasted.

The flags. A cut between source frames k - 1 and k sits at position k. Output frame n gets
``_SceneChangeNext`` when a cut lies at a position in (p(n), p(n + 1)], and
``_SceneChangePrev`` when one lies in (p(n - 1), p(n)], whatever the output rate (below the
source's, several cuts may fall between two output frames: any counts). A plan never
synthesises across a cut: a cut frame is kept, so it ends every pair that reaches it.

Only the frames within :func:`reach` of floor(p) are looked at, so plans need neither the
whole clip nor any order of requests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from .timing import FrameTiming

SOURCE = "source"  # the output frame is source frame ``first``, bit-exact
SYNTHESISE = "synthesise"  # the pair (first, second) at t
REPEAT = "repeat"  # a copy of source frame ``first`` (a hold, a cut, past the last frame)
KINDS = (SOURCE, SYNTHESISE, REPEAT)


@dataclass(frozen=True)
class FramePlan:
    """One output frame. kind: SOURCE, SYNTHESISE or REPEAT; first: source index of the frame
    (or of the pair's first frame); second: the pair's second frame (only for SYNTHESISE,
    first < second); t: position between them, 0 < t < 1 for SYNTHESISE, else 0;
    cut_next / cut_prev: the frame's ``_SceneChangeNext`` / ``_SceneChangePrev``."""

    kind: str
    first: int
    second: int | None = None
    t: Fraction = Fraction(0)
    cut_next: bool = False
    cut_prev: bool = False


@dataclass(frozen=True)
class SourceFlags:
    """What planning knows of one source frame: kept (not a duplicate) and whether a scene
    cut lies between it and the frame before."""

    kept: bool
    cut_before: bool


Flags = Callable[[int], SourceFlags]


def reach(max_run: int, span: int) -> range:
    """Offsets from floor(position) of every source frame :func:`plan_frame` may look at, for
    ``max_run`` (0 without dedup) and at most ``span`` source frames between two output frames
    (:attr:`FrameTiming.span`)."""
    return range(-max(max_run, span), max(max_run + 1, span) + 1)


def plan_frame(n: int, timing: FrameTiming, flags: Flags, max_run: int) -> FramePlan:
    """The plan of output frame n. flags(k) gives source frame k's flags; it is called only
    for the frames within :func:`reach` of floor(position of n), inside the clip."""
    here, length = timing.position(n), timing.source_length
    pixels = plan_slot(here, flags, length, max_run)
    cut_prev = n > 0 and _cut_between(timing.position(n - 1), here, flags, length)
    cut_next = _cut_between(here, timing.position(n + 1), flags, length)
    t = pixels.t
    if pixels.second is not None:  # in time: the frames between may differ in duration
        t = timing.between(n, pixels.first, pixels.second)
    return FramePlan(pixels.kind, pixels.first, pixels.second, t, cut_next, cut_prev)


def _cut_between(start: Fraction, end: Fraction, flags: Flags, source_length: int) -> bool:
    """Whether a cut sits at a position in (start, end]."""
    last = min(math.floor(end), source_length - 1)
    return any(flags(k).cut_before for k in range(math.floor(start) + 1, last + 1))


def plan_slot(position: Fraction, flags: Flags, source_length: int, max_run: int) -> FramePlan:
    """The pixels of the output frame at source ``position`` (0 <= position < source_length
    + 1), without its cut flags (see the module docstring).

    flags(k) is called only for max(0, floor(position) - max_run) <= k <=
    min(floor(position) + max_run + 1, source_length - 1); frame 0 counts as kept whatever
    it says.
    """
    here = math.floor(position)
    if not 0 <= here < source_length:
        raise ValueError(f"position {position} is outside the clip of {source_length} frames")
    first = next(
        (k for k in range(here, max(-1, here - max_run - 1), -1) if k == 0 or flags(k).kept),
        None,
    )
    second = None
    if first is not None:
        end = min(first + max_run + 2, source_length)
        second = next((k for k in range(here + 1, end) if flags(k).kept), None)
    if first is None or second is None:
        return _still(position, here, flags, source_length)
    if position == first:
        return FramePlan(SOURCE, first)
    if flags(second).cut_before:
        return FramePlan(SOURCE, here) if position == here else FramePlan(REPEAT, here)
    return FramePlan(SYNTHESISE, first, second, (position - first) / (second - first))


def _still(position: Fraction, here: int, flags: Flags, source_length: int) -> FramePlan:
    """Inside a hold: every source frame stands for itself, and only a change to a kept next
    frame (the end of the hold) is interpolated, as without deduplication."""
    if position == here:
        return FramePlan(SOURCE, here)
    following = here + 1
    if following == source_length:
        return FramePlan(REPEAT, here)
    next_flags = flags(following)
    if next_flags.kept and not next_flags.cut_before:
        return FramePlan(SYNTHESISE, here, following, position - here)
    return FramePlan(REPEAT, here)


# -- plans as frame properties ---------------------------------------------------------------
KIND_PROP = "DainPlanKind"
FIRST_PROP = "DainPlanFirst"
SECOND_PROP = "DainPlanSecond"
T_NUM_PROP = "DainPlanTNum"
T_DEN_PROP = "DainPlanTDen"
CUT_NEXT_PROP = "DainPlanCutNext"
CUT_PREV_PROP = "DainPlanCutPrev"


def plan_props(plan: FramePlan) -> dict[str, int]:
    """The frame properties that carry ``plan`` (see :func:`read_plan`)."""
    return {
        KIND_PROP: KINDS.index(plan.kind),
        FIRST_PROP: plan.first,
        SECOND_PROP: -1 if plan.second is None else plan.second,
        T_NUM_PROP: plan.t.numerator,
        T_DEN_PROP: plan.t.denominator,
        CUT_NEXT_PROP: int(plan.cut_next),
        CUT_PREV_PROP: int(plan.cut_prev),
    }


def read_plan(props) -> FramePlan:
    """The :class:`FramePlan` that :func:`plan_props` wrote into ``props``."""
    second = props[SECOND_PROP]
    return FramePlan(
        KINDS[props[KIND_PROP]],
        props[FIRST_PROP],
        None if second < 0 else second,
        Fraction(props[T_NUM_PROP], props[T_DEN_PROP]),
        props[CUT_NEXT_PROP] == 1,
        props[CUT_PREV_PROP] == 1,
    )
