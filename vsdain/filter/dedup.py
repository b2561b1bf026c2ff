"""Duplicated frames (anime drawn on twos or threes, film transfers): which source frames
repeat the one before them, and which kept frames feed each output frame.

The detector. Each source frame k gets a score, its change from frame k - 1, from two
measures on a grey thumbnail 48 pixels wide (luma, 0..1 of full range), whose pixels are the
means of blocks of 1/48 of the picture's width:

- ``local``: the largest absolute difference between the two thumbnails. It catches anything
  that moves, down to a small thing on a still background (a mouth, a hand); the blocks are
  large enough to average out most of an encoder's noise;
- ``brightness``: the absolute difference of the two frames' mean luma. It catches a fade,
  which moves every pixel by a code value or two (too little for ``local``) but all the same
  way, while coding noise has no direction and cancels in the mean.

score = max(local, BRIGHTNESS_WEIGHT * brightness). Frame k is a duplicate when its score is
below the threshold; frame 0 and the first frame after a scene cut are always kept. The
weight and the default threshold are measured by ``bench/dedup_threshold.py`` on real footage
in anime cadences re-encoded with x264 (the README gives the figures): at crf 18 to 23 true
duplicates score up to 0.0098 and the dark fade of Big Buck Bunny from 0.0188. Changes smaller
than an encoder's own noise (a near-still shot where a few hundred pixels change by a few code
values) cannot be told from duplicates by any threshold; treating one as a duplicate only
replaces it with an interpolation between its neighbours, which differ from it that little.

The mapping (:func:`plan_slot`, pure Python). Kept frames stay at their true positions on the
source timeline. An output frame at position p with kept frames a <= p < b is synthesised from
the pair (a, b) at t = (p - a) / (b - a); at p = a it is frame a itself. A run of more than
``max_run`` duplicates is a real hold (a still shot), and so is a run that reaches the end of
the clip: inside it each slot repeats the source frame at or before it, as a pair across a
scene cut does. Only frames within ``max_run + 1`` of p are ever looked at, so the mapping
needs neither the whole clip nor any particular order of requests.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from .timing import FrameTiming

if TYPE_CHECKING:
    import vapoursynth as vs

# Width of the thumbnail (blocks of 1/48 of the picture's width): of 32, 48 and 64, the one
# whose duplicates and changes overlapped least in the measurement.
THUMBNAIL_WIDTH = 48
# Puts the brightness measure's coding noise on the local one's scale: a fade of one code value
# per frame then scores about twice the noisiest duplicate (measured: 16 to 48 tried).
BRIGHTNESS_WEIGHT = 32.0
# Between the noisiest duplicate (0.0098 at crf 23) and the dark fade's smallest step (0.0188).
DEFAULT_THRESHOLD = 0.012
# Anime holds a drawing for up to four frames ("on fours"); a longer run is a still shot.
DEFAULT_MAX_RUN = 3

SCORE_PROP = "DainDuplicateScore"
BRIGHTNESS_PROP = "DainDuplicateBrightness"
LOCAL_PROP = "DainDuplicateLocal"
# On the score clip, frame k: 1 when the pair (k - 1, k) is a scene cut.
CUT_BEFORE_PROP = "DainCutBefore"


def duplicate_score(local: float, brightness: float) -> float:
    """max(local, BRIGHTNESS_WEIGHT * brightness); see the module docstring."""
    return max(local, BRIGHTNESS_WEIGHT * brightness)


# -- the mapping ----------------------------------------------------------------------------
SOURCE = "source"  # the output frame is source frame ``first``, bit-exact
SYNTHESISE = "synthesise"  # the pair (first, second) at t
REPEAT = "repeat"  # a copy of source frame ``first`` (a hold, a cut, past the last frame)


@dataclass(frozen=True)
class SlotPlan:
    """What one output frame is made of. kind: SOURCE, SYNTHESISE or REPEAT; first: source
    index of the frame (or of the pair's first frame); second: the pair's second frame (only
    for SYNTHESISE, first < second); t: position between them, 0 < t < 1 for SYNTHESISE, else 0.
    """

    kind: str
    first: int
    second: int | None = None
    t: Fraction = Fraction(0)


@dataclass(frozen=True)
class SourceFlags:
    """What the mapping knows of source frame ``index``: kept (not a duplicate) and whether a
    scene cut lies between it and the frame before."""

    kept: bool
    cut_before: bool


def plan_slot(
    position: Fraction,
    flags: Callable[[int], SourceFlags],
    source_length: int,
    max_run: int,
) -> SlotPlan:
    """The plan of the output frame at source ``position`` (0 <= position < source_length + 1).

    flags(k) gives frame k's flags; it is called only for max(0, floor(position) - max_run)
    <= k <= min(floor(position) + max_run + 1, source_length - 1), and frame 0 counts as kept
    whatever it says.
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
        return SlotPlan(SOURCE, first)
    if flags(second).cut_before:
        return SlotPlan(SOURCE, here) if position == here else SlotPlan(REPEAT, here)
    return SlotPlan(SYNTHESISE, first, second, (position - first) / (second - first))


def _still(
    position: Fraction, here: int, flags: Callable[[int], SourceFlags], source_length: int
) -> SlotPlan:
    """Inside a hold: every source frame stands for itself, and only a change to a kept next
    frame (the end of the hold) is interpolated, as without deduplication."""
    if position == here:
        return SlotPlan(SOURCE, here)
    following = here + 1
    if following == source_length:
        return SlotPlan(REPEAT, here)
    next_flags = flags(following)
    if next_flags.kept and not next_flags.cut_before:
        return SlotPlan(SYNTHESISE, here, following, position - here)
    return SlotPlan(REPEAT, here)


def window(max_run: int) -> range:
    """Offsets from floor(position) of every frame :func:`plan_slot` may look at."""
    return range(-max_run, max_run + 2)


def plan_from_scores(
    position: Fraction,
    scores: Sequence[float],
    cuts_before: Sequence[bool],
    start: int,
    source_length: int,
    threshold: float,
    max_run: int,
) -> SlotPlan:
    """:func:`plan_slot` from scores and cut flags of source frames start, start + 1, ...
    (frame k kept when k == 0, cut_before, or score >= threshold)."""

    def flags(k: int) -> SourceFlags:
        cut = bool(cuts_before[k - start])
        return SourceFlags(k == 0 or cut or scores[k - start] >= threshold, cut)

    return plan_slot(position, flags, source_length, max_run)


# -- the detector ---------------------------------------------------------------------------
def _grey_thumbnail(clip: vs.VideoNode) -> vs.VideoNode:
    import vapoursynth as vs

    width = min(THUMBNAIL_WIDTH, clip.width)
    height = max(1, round(clip.height * width / clip.width))
    # The matrix only sets the luma weights for RGB input; YUV and GRAY keep their luma.
    matrix = {"matrix_s": "709"} if clip.format.color_family == vs.RGB else {}
    return clip.resize.Bilinear(width, height, format=vs.GRAYS, **matrix)


def _previous(clip: vs.VideoNode) -> vs.VideoNode:
    """Frame k is ``clip``'s frame k - 1 (frame 0 is frame 0)."""
    return clip[0] + clip[:-1] if clip.num_frames > 1 else clip


class DuplicateDetector:
    """Finds source frames that repeat the frame before them (see the module docstring).

    threshold: a frame is a duplicate when its score is below this; > 0, default
    DEFAULT_THRESHOLD. Higher finds more duplicates.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not threshold > 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        self.threshold = float(threshold)

    def scores(self, clip: vs.VideoNode) -> vs.VideoNode:
        """A small GRAYS clip as long as ``clip``; frame k carries ``DainDuplicateLocal``,
        ``DainDuplicateBrightness`` and ``DainDuplicateScore`` (floats, 0..1 of full range) for
        the change from frame k - 1 to frame k (frame 0: 0)."""
        import vapoursynth as vs

        blocks = _grey_thumbnail(clip).std.PlaneStats()
        before = _previous(blocks)
        local = vs.core.std.Expr([blocks, before], "x y - abs").std.PlaneStats()

        def score_frame(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
            out = f[0].copy()
            brightness = abs(f[0].props["PlaneStatsAverage"] - f[1].props["PlaneStatsAverage"])
            largest = f[2].props["PlaneStatsMax"]
            out.props[LOCAL_PROP] = largest
            out.props[BRIGHTNESS_PROP] = brightness
            out.props[SCORE_PROP] = duplicate_score(largest, brightness)
            return out

        return blocks.std.ModifyFrame(clips=[blocks, before, local], selector=score_frame)

    def find_duplicates(self, clip: vs.VideoNode) -> list[int]:
        """Indices of the frames that repeat the one before them (reads the whole clip; scene
        cuts are not looked at)."""
        return [
            k
            for k, frame in enumerate(self.scores(clip).frames(close=True))
            if k > 0 and frame.props[SCORE_PROP] < self.threshold
        ]


# -- the filter graph -----------------------------------------------------------------------
# Plan properties on the output-length plan clip (see plan_clip).
KIND_PROP = "DainPlanKind"
FIRST_PROP = "DainPlanFirst"
SECOND_PROP = "DainPlanSecond"
T_NUM_PROP = "DainPlanTNum"
T_DEN_PROP = "DainPlanTDen"
KINDS = (SOURCE, SYNTHESISE, REPEAT)


def _flag_clip(clip: vs.VideoNode, length: int) -> vs.VideoNode:
    import vapoursynth as vs

    return vs.core.std.BlankClip(
        format=vs.GRAY8, width=1, height=1, length=length, fpsnum=clip.fps_num,
        fpsden=clip.fps_den,
    )  # fmt: skip


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


def source_flags(
    clip: vs.VideoNode, detector: DuplicateDetector, pair_cuts: vs.VideoNode | None
) -> vs.VideoNode:
    """A 1x1 clip as long as ``clip``; frame k carries ``DainDuplicateScore`` (its change from
    frame k - 1) and ``DainCutBefore`` (1 when the pair (k - 1, k) is a cut in ``pair_cuts``,
    the source-length clip of :func:`vsdain.filter.cuts.pair_cuts`; None: no cuts)."""
    from .cuts import PAIR_CUT_PROP

    flags = _flag_clip(clip, clip.num_frames)
    clips = [flags, detector.scores(clip)]
    if pair_cuts is not None:
        clips.append(_previous(pair_cuts))

    def mark(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        out = f[0].copy()
        out.props[SCORE_PROP] = f[1].props[SCORE_PROP]
        cut = n > 0 and pair_cuts is not None and f[2].props[PAIR_CUT_PROP] == 1
        out.props[CUT_BEFORE_PROP] = int(cut)
        return out

    return flags.std.ModifyFrame(clips=clips, selector=mark)


def plan_clip(
    flags: vs.VideoNode, timing: FrameTiming, threshold: float, max_run: int
) -> vs.VideoNode:
    """A 1x1 clip as long as the output; frame n carries its :class:`SlotPlan`: ``DainPlanKind``
    (index in KINDS), ``DainPlanFirst``, ``DainPlanSecond`` (-1 when there is none) and t as
    ``DainPlanTNum`` / ``DainPlanTDen``. ``flags`` is :func:`source_flags`' clip; each output
    frame reads the flags of the window of source frames around its position only."""
    from .cuts import aligned

    offsets = window(max_run)
    clips = [aligned(shifted(flags, offset), timing) for offset in offsets]
    length = timing.source_length
    step = timing.step

    def plan_frame(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        position = n * step
        start = math.floor(position) + offsets.start
        frames = f[max(0, -start) :]
        scores = [frame.props[SCORE_PROP] for frame in frames]
        cuts_before = [frame.props[CUT_BEFORE_PROP] == 1 for frame in frames]
        plan = plan_from_scores(
            position, scores, cuts_before, max(0, start), length, threshold, max_run
        )
        out = f[0].copy()
        out.props[KIND_PROP] = KINDS.index(plan.kind)
        out.props[FIRST_PROP] = plan.first
        out.props[SECOND_PROP] = -1 if plan.second is None else plan.second
        out.props[T_NUM_PROP] = plan.t.numerator
        out.props[T_DEN_PROP] = plan.t.denominator
        return out

    return clips[0].std.ModifyFrame(clips=clips, selector=plan_frame)


def read_plan(props: vs.FrameProps) -> SlotPlan:
    """The :class:`SlotPlan` a plan clip's frame carries."""
    second = props[SECOND_PROP]
    return SlotPlan(
        KINDS[props[KIND_PROP]],
        props[FIRST_PROP],
        None if second < 0 else second,
        Fraction(props[T_NUM_PROP], props[T_DEN_PROP]),
    )


def offset_aligned(clip: vs.VideoNode, offset: int, timing: FrameTiming) -> vs.VideoNode:
    """An output-length clip whose frame n is ``clip``'s frame floor(position of n) + offset
    (clamped to the clip)."""
    from .cuts import aligned

    return aligned(shifted(clip, offset), timing)


def switch_by_plan(
    template: vs.VideoNode,
    plans: vs.VideoNode,
    timing: FrameTiming,
    render: Callable[[int, int], vs.VideoNode],
) -> vs.VideoNode:
    """``template``-shaped output whose frame n is frame n of ``render(first, second)``: the
    node made for the offsets of the plan's first and second frame from floor(position)
    (second = first when the plan has none), to be read with :func:`offset_aligned`.

    The frames a plan needs depend on the scores, so the choice is made per frame by
    ``std.FrameEval``; the nodes depend only on the two offsets, so at most
    (max_run + 1) * (max_run + 2) of them exist, each built once, on first use."""

    nodes: dict[tuple[int, int], vs.VideoNode] = {}
    lock = threading.Lock()
    step = timing.step

    def choose(n: int, f: vs.VideoFrame) -> vs.VideoNode:
        here = math.floor(n * step)
        first = f.props[FIRST_PROP]
        second = f.props[SECOND_PROP]
        key = (first - here, (first if second < 0 else second) - here)
        with lock:
            if key not in nodes:
                nodes[key] = render(*key)
            return nodes[key]

    return template.std.FrameEval(eval=choose, prop_src=plans)
