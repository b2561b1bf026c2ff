"""``vsdain.Interpolate``: the VapourSynth filter."""

from __future__ import annotations

import logging
import os

import numpy as np
import vapoursynth as vs

from ..model import DAIN, Padding
from .arguments import Settings, check_arguments, error
from .frames import planes_to_frame
from .pair_cache import PairCache
from .scenecut import NEXT_PROP, PREV_PROP, marked_cut
from .timing import FrameTiming

log = logging.getLogger(__name__)

SAMPLE_TYPES = {vs.RGBS: np.float32, vs.RGBH: np.float16}
# Meaningless once a frame is not the source frame it was copied from.
STALE_ON_COPIES = ("_AbsoluteTime", NEXT_PROP, PREV_PROP)


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
    fp16: bool | None = None,
    model: DAIN | None = None,
) -> vs.VideoNode:
    """Raise ``clip``'s frame rate with DAIN, synthesising the frames in between.

    clip: RGBS or RGBH, constant size, format and frame rate, at least 2 frames. The output
    has the same format and size.
    multi: integer >= 2; the output rate is ``clip.fps * multi``.
    fps_num, fps_den: an exact output rate instead of ``multi`` (any positive rational, above
    or below the source's; fps_den defaults to 1), e.g. 24000/1001 -> fps_num=60000,
    fps_den=1001. Leave ``multi`` at its default when giving these.
    sc: detect scene cuts and never interpolate across one (default True). Cuts come from the
    built-in :class:`SceneCutDetector` and from ``_SceneChangeNext`` (left frame) /
    ``_SceneChangePrev`` (right frame) set by another detector. False interpolates everywhere.
    sc_threshold: the built-in detector's threshold, > 0 (default 3.0; higher finds fewer cuts):
    a pair is a cut when its luma change is at least this many times its neighbours'.
    weights: path of ``best.pth`` (or a folder holding it). Default: ``$VSDAIN_WEIGHTS_DIR``,
    ``models/`` in a source checkout, then ``~/.cache/vsdain``; get the file with
    ``python -m vsdain download``.
    device: ``"cpu"``, ``"cuda"`` or ``"cuda:<index>"``. Default: CUDA when PyTorch sees a
    GPU, else the CPU.
    fp16: compute in half precision (CUDA only). Default: on for RGBH clips on CUDA. On the
    CPU an RGBH clip is computed in float32 and written back as half.
    model: for tests and advanced use, an already-loaded :class:`vsdain.DAIN` in eval mode,
    used on its own device and dtype instead of loading ``weights`` (then leave ``weights``,
    ``device`` and ``fp16`` unset).

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
    features of two frames (about 0.8 GB each at 1280x720 in float32).

    Raises ``vs.Error`` naming the argument for any invalid input, before anything is loaded.
    """
    settings = check_arguments(
        clip, multi, fps_num, fps_den, sc, sc_threshold, weights, device, fp16, model
    )
    network = settings.model if settings.model is not None else _load(settings)
    return _build(clip, settings, network)


def _load(settings: Settings) -> DAIN:
    from ..weights import WeightsError, load_model

    log.info("loading DAIN from %s on %s (%s)", settings.weights, settings.device, settings.dtype)
    try:
        return load_model(settings.weights, device=settings.device, dtype=settings.dtype)
    except (WeightsError, FileNotFoundError) as failure:
        raise error(str(failure)) from None


def _aligned(source: vs.VideoNode, timing: FrameTiming) -> vs.VideoNode:
    """An output-length clip whose frame n is ``source``'s frame ``timing.slot(n).left``."""
    cycle, offsets = timing.select_every()
    aligned = source.std.SelectEvery(cycle=cycle, offsets=offsets, modify_duration=False)
    if aligned.num_frames != timing.output_length:
        raise RuntimeError(
            f"internal error: SelectEvery gave {aligned.num_frames} frames, expected "
            f"{timing.output_length}"
        )
    return aligned


def _build(clip: vs.VideoNode, settings: Settings, network: DAIN) -> vs.VideoNode:
    timing = settings.timing
    following = clip[1:] + clip[-1]
    clips = [_aligned(clip, timing), _aligned(following, timing)]
    if settings.detector is not None:
        clips.append(_aligned(settings.detector.scores(clip), timing))
    output_fps = timing.output_fps
    template = clip.std.BlankClip(
        length=timing.output_length,
        fpsnum=output_fps.numerator,
        fpsden=output_fps.denominator,
        keep=True,
    )
    pairs = PairCache(
        network,
        Padding.for_size(clip.height, clip.width),
        device=settings.device,
        dtype=settings.dtype,
        sample_type=np.dtype(SAMPLE_TYPES[clip.format.id]),
        pair_capacity=vs.core.num_threads,
    )
    render = _FrameRenderer(timing, pairs, detect_cuts=settings.detector is not None)
    return template.std.ModifyFrame(clips=clips, selector=render)


class _FrameRenderer:
    """ModifyFrame's selector: f holds the output-aligned left and right source frames (and the
    scene-cut scores when detection is on); everything else is fixed when the filter is built.
    """

    def __init__(self, timing: FrameTiming, pairs: PairCache, *, detect_cuts: bool) -> None:
        self.timing = timing
        self.pairs = pairs
        self.detect_cuts = detect_cuts
        self.last_source = timing.source_length - 1
        duration = timing.output_duration
        self.duration = {"_DurationNum": duration.numerator, "_DurationDen": duration.denominator}

    def __call__(self, n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        slot = self.timing.slot(n)
        left_frame, right_frame = f[0], f[1]
        if slot.is_source:
            out = left_frame.copy()
            out.props.update(self.duration)
            return out
        cut = (
            slot.left < self.last_source
            and self.detect_cuts
            and (marked_cut(left_frame.props, right_frame.props) or bool(f[2].props[NEXT_PROP]))
        )
        if slot.left == self.last_source or cut:
            out = left_frame.copy()
        else:
            timestamps = [t for _, t in self.timing.outputs_between(slot.left)]
            planes = self.pairs.interpolated(slot.left, slot.t, timestamps, left_frame, right_frame)
            out = planes_to_frame(planes, left_frame)
        for key in STALE_ON_COPIES:
            if key in out.props:
                del out.props[key]
        out.props.update(self.duration)
        if cut and self._last_in_pair(n, slot.left):
            out.props[NEXT_PROP] = 1
        return out

    def _last_in_pair(self, n: int, left: int) -> bool:
        return n + 1 == self.timing.output_length or self.timing.slot(n + 1).left != left
