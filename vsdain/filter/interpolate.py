"""``vsdain.Interpolate``: the VapourSynth filter."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import vapoursynth as vs

from ..model import DAIN, Padding
from ..model.tiling import TilePlan
from ..precision import cpu_bfloat16_problem
from .arguments import Settings, Tiling, check_arguments, error
from .formats import Conversion
from .frames import copy_planes, planes_to_frame
from .pair_cache import PairCache
from .plan import SOURCE, SYNTHESISE, FramePlan, read_plan
from .plan_graph import by_plan, offset_clips, plan_clip, source_flags
from .scenecut import NEXT_PROP, PREV_PROP
from .timing import FrameTiming

log = logging.getLogger(__name__)

# Meaningless once a frame is not the source frame it was copied from.
STALE_ON_COPIES = ("_AbsoluteTime",)
# Set afresh on every output frame from the cuts the filter knows (see cuts.py).
SCENE_CHANGE_PROPS = (NEXT_PROP, PREV_PROP)


def Interpolate(
    clip: vs.VideoNode,
    multi: int = 2,
    *,
    fps_num: int | None = None,
    fps_den: int | None = None,
    sc: bool = True,
    sc_threshold: float | None = None,
    weights: str | os.PathLike[str] | None = None,
    device: str | None = None,
    precision: str | None = None,
    matrix: str | None = None,
    model: DAIN | None = None,
    fp16: None = None,
    dedup: bool = False,
    dedup_threshold: float | None = None,
    dedup_max_run: int | None = None,
    tile: int | None = None,
    max_memory: int | None = None,
    timeline: str | os.PathLike[str] | Sequence[float | Fraction] | None = None,
) -> vs.VideoNode:
    """Raise ``clip``'s frame rate with DAIN, synthesising the frames in between.

    clip: planar RGB or YUV (4:2:0, 4:2:2, 4:4:4, ...), integer 8-16 bits or float 16/32
    bits, constant size, format and frame rate, at least 2 frames. The output has the same
    format and size. The network sees each frame as RGBS converted by ``core.resize`` with the
    frame's own ``_Matrix``, ``_Range`` and ``_ChromaLocation``; synthesised frames are
    converted back with the same three values of the left source frame (Bicubic chroma,
    ordered dither for integer formats: no banding from rounding, and one fixed pattern, so
    no frame-to-frame shimmer). Samples are clamped to [0, 1] (NaN as 0) on the way into the
    network only; source frames pass through untouched.
    multi: integer >= 2; the output rate is ``clip.fps * multi``.
    fps_num, fps_den: an exact output rate instead of ``multi`` (any positive rational, above
    or below the source's; fps_den defaults to 1), e.g. 24000/1001 -> fps_num=60000,
    fps_den=1001. Leave ``multi`` at its default when giving these.
    sc: detect scene cuts and never interpolate across one (default True). Cuts come from the
    built-in :class:`SceneCutDetector` and from ``_SceneChangeNext`` (left frame) /
    ``_SceneChangePrev`` (right frame) set by another detector. False interpolates everywhere.
    The detector's neighbours reach ``dedup_max_run + 1`` pairs each way (4 by default, with or
    without dedup), so the drawing changes of held anime do not count as cuts.
    sc_threshold: the built-in detector's threshold, > 0 (default 3.0; higher finds fewer cuts):
    a pair is a cut when its luma change is at least this many times its neighbours'.
    weights: path of ``best.pth`` (or a folder holding it). Default: ``$VSDAIN_WEIGHTS_DIR``,
    ``models/`` in a source checkout, then ``~/.cache/vsdain``; get the file with
    ``python -m vsdain download``.
    device: ``"cpu"``, ``"cuda"`` or ``"cuda:<index>"``. Default: CUDA when PyTorch sees a
    GPU, else the CPU.
    precision: what the network computes in: ``"float32"``, ``"float16"`` (CUDA only) or
    ``"bfloat16"``. Default (None): float16 on CUDA for 16-bit float clips (RGBH, YUV...PH),
    else float32. bfloat16 halves the memory and, on a CPU with native bfloat16 (AVX512-BF16,
    AMX; see ``python -m vsdain info``), runs the convolutions faster; other CPUs refuse it
    (emulated, it is 8x to more than 60x slower than float32; a bfloat16 ``model=`` there
    runs, with a warning on stderr). The flow projection accumulates in float32 whatever the
    precision.
    matrix: the YUV matrix, in resize's names (``"709"``, ``"170m"``, ``"470bg"``,
    ``"2020ncl"``, ...), for a YUV clip whose frames leave ``_Matrix`` unspecified (missing or
    2); when given it replaces every frame's own. Only for YUV clips.
    model: for tests and advanced use, an already-loaded :class:`vsdain.DAIN` in eval mode,
    used on its own device and dtype instead of loading ``weights`` (then leave ``weights``,
    ``device`` and ``precision`` unset).
    fp16: removed; giving it raises an error that points to ``precision``.

    Timing: output frame i sits at source position i * clip.fps / output_fps, computed
    exactly; its pair is the source frames floor and floor + 1 of that position and t its
    fractional part. The output has ceil(num_frames * output_fps / clip.fps) frames, so it
    lasts as long as the source (num_frames * multi with ``multi``). Positions after the last
    source frame have no second frame: they repeat the last frame.

    Frames: where t = 0 the source frame is returned bit-exact with its properties (only
    ``_DurationNum``/``_DurationDen`` change). Synthesised frames carry the left frame's
    properties without ``_AbsoluteTime``. Across a scene cut nothing is synthesised: the slots
    repeat the left (earlier) frame's pixels bit-exact, again without ``_AbsoluteTime``; the
    last of them carries ``_SceneChangeNext`` = 1. Copies never keep the source's scene-change
    flags otherwise. Every output frame has the exact output duration in
    ``_DurationNum``/``_DurationDen``.

    Cost: each pair's flow, depth, context and kernels are computed once for all its output
    frames, and each source frame's features are shared by its two pairs; memory holds the
    features of two frames (about 0.8 GB each at 1280x720 in float32) and of at most two
    pairs, counting those being computed, whatever ``core.num_threads`` asks for at once.

    Every output frame has one plan (:class:`vsdain.filter.plan.FramePlan`): its pixels, its
    pair and t and its scene-change flags come from it, in every mode, so they agree.

    dedup: treat source frames that repeat the frame before them (anime on twos or threes,
    duplicated frames of a film transfer) as missing: kept frames stay at their true
    positions and an output frame between kept frames a <= p < b is synthesised from the
    pair (a, b) at t = (p - a) / (b - a), so a duplicate's slot gets moving content. Default
    False. See the README's "Anime and duplicated frames".
    dedup_threshold: with dedup, a frame is a duplicate when its change score (see
    :mod:`vsdain.filter.dedup`) is below this; > 0, default 0.012 (measured on x264 crf 18-23
    re-encodes; higher finds more duplicates).
    dedup_max_run: with dedup, the longest run of duplicates that is interpolated; a longer
    run is a still shot and stays still. Integer >= 1, default 3 (drawings held up to four
    frames move).
    tile: how the per-timestamp work (warps and synthesis, most of the memory) is split. None
    (default): automatic, the whole frame when it fits, else the largest square tile that
    fits, chosen once per clip from the memory one probe tile takes and logged once; 0: never
    tile; an integer >= 32: tiles of that many pixels per side. Tiling is exact: every tile is
    computed with a 10-pixel margin, the reach of the synthesis network, so the frames equal
    the untiled ones. If memory runs out anyway, the timestamp is retried with half the tile,
    down to 32 pixels (not with tile=0).
    max_memory: MiB the features and the per-timestamp work may use, integer >= 64 (default:
    what the device has free: CUDA's free memory, the CPU's available RAM), e.g. 4096.

    timeline: a variable-frame-rate source's true timeline, so that the output (constant rate,
    ``fps_num``/``fps_den`` required) shows every moment when it was taken: the path of a
    timecodes v2 file, a list of start times in seconds (one per frame, optionally then the
    end of the last), or ``"durations"`` to add up the frames' ``_DurationNum`` /
    ``_DurationDen`` (a pass over the clip when the filter is built). Output frame n at time
    timeline[0] + n / fps is made from the source frames a, b around it at t = (time -
    start_a) / (start_b - start_a), exactly; a source frame on an output time is that frame.
    See :mod:`vsdain.filter.timeline` and the README's "Variable frame rate".

    Raises ``vs.Error`` naming the argument for any invalid input, before anything is loaded.
    """
    settings = check_arguments(
        clip,
        multi,
        fps_num,
        fps_den,
        sc,
        sc_threshold,
        weights,
        device,
        precision,
        model,
        matrix=matrix,
        fp16=fp16,
        dedup=dedup,
        dedup_threshold=dedup_threshold,
        dedup_max_run=dedup_max_run,
        tile=tile,
        max_memory=max_memory,
        timeline=timeline,
    )
    problem = cpu_bfloat16_problem(settings.device, settings.dtype)
    if problem is not None:
        # Only a bfloat16 model= gets here: precision='bfloat16' is refused on such a CPU.
        log.warning("bfloat16 model on the CPU: %s", problem)
    network = settings.model if settings.model is not None else _load(settings)
    return _build(clip, settings, network)


def _load(settings: Settings) -> DAIN:
    from ..weights import WeightsError, load_model

    log.info("loading DAIN from %s on %s (%s)", settings.weights, settings.device, settings.dtype)
    try:
        return load_model(settings.weights, device=settings.device, dtype=settings.dtype)
    except (WeightsError, FileNotFoundError) as failure:
        raise error(str(failure)) from None


def _build(clip: vs.VideoNode, settings: Settings, network: DAIN) -> vs.VideoNode:
    """The output: one plan per output frame (see :mod:`.plan`), then its pixels and flags."""
    timing = settings.timing
    dedup = settings.dedup
    max_run = 0 if dedup is None else dedup.max_run
    duplicates = None if dedup is None else dedup.detector
    plans = plan_clip(source_flags(clip, settings.detector, duplicates), timing, max_run)
    firsts, seconds = range(-max_run, 1), range(1, max_run + 2)
    first = by_plan(offset_clips(clip, firsts, timing), plans, timing, "first")
    conversion = Conversion(clip.format, settings.matrix)
    rgb = conversion.to_network(clip)
    rgb_pair = [
        by_plan(offset_clips(rgb, offsets, timing), plans, timing, end)
        for offsets, end in ((firsts, "first"), (seconds, "second"))
    ]
    tiling = settings.tiling or Tiling()
    pairs = PairCache(
        network,
        Padding.for_size(clip.height, clip.width),
        device=settings.device,
        dtype=settings.dtype,
        sample_type=np.dtype(np.float32),
        tiles=TilePlan(tiling.tile, tiling.max_memory, log=log),
        timestamps_of=timing.timestamps_between,
    )
    network_frames = rgb_pair[0].std.ModifyFrame([*rgb_pair, plans], _Synthesiser(pairs))
    synthesised = conversion.from_network(network_frames, first)
    output_fps = timing.output_fps
    template = clip.std.BlankClip(
        length=timing.output_length,
        fpsnum=output_fps.numerator,
        fpsden=output_fps.denominator,
        keep=True,
    )
    render = _Renderer(timing)
    # Only synthesised frames ask for the network's (VapourSynth is lazy: for the others the
    # conversion and the network never run).
    copies = template.std.ModifyFrame(clips=[first, plans], selector=render)
    made = template.std.ModifyFrame(clips=[first, plans, synthesised], selector=render)

    def choose(n: int, f: vs.VideoFrame) -> vs.VideoNode:
        return made if read_plan(f.props).kind == SYNTHESISE else copies

    return template.std.FrameEval(choose, prop_src=plans, clip_src=[copies, made])


def _failed(n: int, plan: FramePlan, failure: Exception) -> vs.Error:
    pair = f"source pair {plan.first}-{plan.second}, t={plan.t}"
    where = pair if plan.kind == SYNTHESISE else f"source frame {plan.first}"
    return error(f"frame {n} ({where}): {type(failure).__name__}: {str(failure) or 'no message'}")


class _Synthesiser:
    """ModifyFrame's selector on the network's RGBS frames. Fixed layout: f[0] and f[1] are
    the plan's first and second source frames as RGBS, f[2] the plan (a SYNTHESISE one)."""

    def __init__(self, pairs: PairCache) -> None:
        self.pairs = pairs

    def __call__(self, n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        plan = read_plan(f[2].props)
        try:
            planes = self.pairs.interpolated(plan.first, plan.second, plan.t, f[0], f[1])
            return planes_to_frame(planes, f[0])
        except Exception as failure:
            raise _failed(n, plan, failure) from failure


class _Renderer:
    """ModifyFrame's selector for the output. Fixed layout: f[0] is the plan's first source
    frame, f[1] the plan, and for SYNTHESISE plans only f[2] the network's frame in the clip's
    format. The pixels, the properties and the scene-change flags all come from the plan."""

    def __init__(self, timing: FrameTiming) -> None:
        duration = timing.output_duration
        self.duration = {"_DurationNum": duration.numerator, "_DurationDen": duration.denominator}

    def __call__(self, n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        plan = read_plan(f[1].props)
        try:
            return self._render(plan, f)
        except Exception as failure:
            raise _failed(n, plan, failure) from failure

    def _render(self, plan: FramePlan, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        out = copy_planes(f[2], f[0]) if plan.kind == SYNTHESISE else f[0].copy()
        stale = SCENE_CHANGE_PROPS if plan.kind == SOURCE else STALE_ON_COPIES + SCENE_CHANGE_PROPS
        for key in stale:
            if key in out.props:
                del out.props[key]
        if plan.cut_next:
            out.props[NEXT_PROP] = 1
        if plan.cut_prev:
            out.props[PREV_PROP] = 1
        out.props.update(self.duration)
        return out
