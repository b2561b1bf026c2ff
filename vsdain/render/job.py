"""``vsdain.render.render``: a whole video through the graph, in chunks, resumable, on one or
many workers. The command ``vsdain render`` is a thin layer over it."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

import av
import vapoursynth as vs

from .concat import concatenate
from .encode import (
    DEFAULT_CODEC,
    DEFAULT_CODEC_OPTIONS,
    EncodeError,
    Encoding,
    check_codec,
    chunk_suffix,
    count_frames,
    open_output,
    pixel_format_of,
    probe,
)
from .graph import (
    GraphError,
    GraphSpec,
    filter_keywords,
    load_source,
    node_fps,
    open_source,
    run_script,
    trim_range,
)
from .options import check_filter_options, job_identity, keyword_names
from .plan import Chunk, boundary_costs, default_chunk_frames, plan_chunks
from .progress import RenderProgress, RenderSummary
from .state import WorkFolder, file_identity, job_folder, job_key
from .timestamps import (
    COMMON_RATES,
    ContainerTimes,
    duration_range,
    rate_text,
    read_times,
    snap_to_rate,
    trimmed,
)
from .workers import ChunkTask, RayResources, run_in_process, run_with_ray

if TYPE_CHECKING:
    from ..filter.arguments import Settings

DEFAULT_RETRIES = 3
# An --address that does not answer within this long is reported as unreachable.
CONNECT_SECONDS = 5.0
RAY_DEFAULT_PORT = 6379
RAY_CLIENT_PORT = 10001


class RenderError(ValueError):
    """A bad argument, found before any worker starts; the message names it and the fix."""


def render(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    width: int | None = None,
    height: int | None = None,
    first: int = 0,
    frames: int | None = None,
    codec: str = DEFAULT_CODEC,
    codec_options: Mapping[str, str] | None = None,
    chunk_frames: int | None = None,
    workers: int = 1,
    address: str | None = None,
    retries: int = DEFAULT_RETRIES,
    threads: int | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    keep_chunks: bool = False,
    progress: bool = True,
    stream: TextIO | None = None,
    **filter_options: object,
) -> RenderSummary:
    """Render ``source`` into ``output``, chunk by chunk, and return what was done.

    source: a video file (read with ``core.bs.VideoSource``, then :func:`vsdain.Interpolate`
    with ``filter_options``; first/frames trim it in source frames and width/height resize
    it first, for previews) or a ``.vpy`` script whose first video output is rendered as it
    is (then those options do not apply).
    filter_options: keywords of :func:`vsdain.Interpolate`, with its meanings and defaults:
    multi or fps_num/fps_den, weights, device, precision, matrix, sc, sc_threshold, dedup,
    dedup_threshold, dedup_max_run, tile, max_memory (see :mod:`vsdain.render.options`).
    They are checked here by the filter's own checks, before anything is rendered. An
    unlabelled YUV file (``_Matrix`` missing or 2) gets matrix 709 from 600 lines up, else
    170m, unless matrix is given.
    A file whose frame durations vary (variable frame rate, from its container's timestamps,
    see :mod:`vsdain.render.timestamps`) is interpolated on its true timeline, and then needs
    fps_num (and fps_den) instead of multi.
    output: the file to write; its extension picks the container (.mkv, .mp4, ...). The
    source's audio (files only) is copied into it untouched.
    codec, codec_options: the FFmpeg encoder and its options (default libx264, crf 16,
    preset medium); ``ffv1`` or ``libx264`` with ``qp=0`` are lossless.
    chunk_frames: output frames per chunk (default 4 s of output); boundaries move to scene
    cuts or source frames within a quarter chunk, see :mod:`vsdain.render.plan`.
    workers: chunks rendered at once; 1 without ``address`` runs here without Ray.
    address: a Ray cluster to join (``host:port`` of ``ray start --head``, or ``auto``).
    retries: further attempts for a chunk whose worker dies or raises while rendering (>= 0);
    a worker that cannot build the graph (a source it cannot read, an option its machine
    refuses) fails the render at once, as every attempt would fail the same way.
    threads: CPU threads per worker (default: this machine's cores split between workers).
    work_dir: where chunk files are kept (default ``.<output name>.vsdain`` beside output);
    must be shared by all nodes of a cluster, as must source and output.
    keep_chunks: keep the job folder after success (default: delete it).
    progress: show progress and the summary on ``stream`` (default stderr).

    Raises RenderError for bad arguments before anything is rendered (TypeError for a
    keyword that is not an option), and :class:`vsdain.render.workers.ChunkError` when a
    chunk fails all its attempts. Re-running the same call after an interruption renders
    only the unfinished chunks, and again those whose files no longer decode to their frames.
    """
    started = time.monotonic()
    unknown = sorted(set(filter_options) - keyword_names())
    if unknown:
        raise TypeError(f"render() got an unexpected keyword argument {unknown[0]!r}")
    source_path, output_path = _check_paths(source, output)
    for name, value, low in (
        ("workers", workers, 1),
        ("retries", retries, 0),
        ("first", first, 0),
        ("frames", frames, 1),
        ("chunk_frames", chunk_frames, 1),
        ("threads", threads, 1),
        ("width", width, 2),
        ("height", height, 2),
    ):
        _check_int(name, value, low)
    encoder_options = dict(
        DEFAULT_CODEC_OPTIONS.get(codec, {}) if codec_options is None else codec_options
    )
    try:
        check_codec(codec)
    except EncodeError as problem:
        raise RenderError(f"codec: {problem}") from None
    if address is not None:
        check_address(address)

    given = dict(filter_options)
    if isinstance(given.get("weights"), str | os.PathLike):
        given["weights"] = str(Path(given["weights"]).expanduser().resolve())
    spec = GraphSpec(
        source=str(source_path),
        options=tuple(sorted(given.items())),
        width=width,
        height=height,
        first=first,
        frames=frames,
    )
    if spec.is_script and (given or (width, height, frames) != (None,) * 3):
        raise RenderError(
            "width, height, frames and the filter's options (fps, weights, dedup, ...) apply "
            "to a video file; a script renders its output node as it is, so set them in the "
            "script"
        )
    plan, node = (
        _plan_script(spec) if spec.is_script else _plan_file(spec, cluster=address is not None)
    )
    spec, fps = plan.spec, plan.fps
    try:
        encoding = Encoding(codec, fps, node.width, node.height, node.format.id, encoder_options)
        pixel_format_of(node)
        probe(encoding, output_path.suffix)
    except EncodeError as problem:
        raise RenderError(str(problem)) from None
    suffix = chunk_suffix(encoding)

    if chunk_frames is None:
        chunk_frames = default_chunk_frames(float(fps))
    chunks = plan_chunks(node.num_frames, chunk_frames, cost=plan.cost)
    identity = {
        "source": file_identity(source_path, whole=spec.is_script),
        "weights": None if plan.weights is None else file_identity(plan.weights),
        "graph": dataclasses.replace(spec, options=(), timeline=None),
        "filter": plan.filter_identity,
        "encoding": dataclasses.replace(encoding, fps=str(fps)),
        "chunks": [(chunk.start, chunk.end) for chunk in chunks],
    }
    root = (
        Path(work_dir)
        if work_dir is not None
        else output_path.with_name(f".{output_path.name}.vsdain")
    )
    folder = job_folder(root, job_key(identity), suffix)
    folder.create(identity)
    todo = _not_done(chunks, folder, (stream or _stderr()) if progress else None)
    del node  # workers build their own graph; a script's may hold a network

    done_frames = node_frames = sum(chunk.frames for chunk in chunks)
    done_frames -= sum(chunk.frames for chunk in todo)
    bar = RenderProgress(node_frames, done_frames, stream=stream, enabled=progress)
    try:
        if todo:
            _run(todo, spec, encoding, folder, bar, workers, address, retries, threads)
        bar.close()
        _join(chunks, folder, output_path, fps, plan, node_frames)
    finally:
        bar.close()
    retried = sum(max(0, len(folder.attempts(chunk)) - 1) for chunk in todo)
    if not keep_chunks:
        folder.remove()
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()
    summary = RenderSummary(
        output=str(output_path),
        frames=node_frames,
        chunks=len(chunks),
        rendered=len(todo),
        retries=retried,
        seconds=time.monotonic() - started,
    )
    if progress:
        (stream or _stderr()).write(summary.line() + "\n")
    return summary


def _not_done(chunks: list[Chunk], folder: WorkFolder, stream: TextIO | None) -> list[Chunk]:
    """The chunks to render: those without a file, and those whose file no longer decodes to
    their frames (deleted, and reported on ``stream``). Their attempts are forgotten."""
    todo = []
    for chunk in chunks:
        if folder.is_done(chunk):
            damage = folder.damage(chunk)
            if damage is None:
                continue
            if stream is not None:
                stream.write(f"render: {chunk.name}: {damage}; rendering it again\n")
            folder.chunk_file(chunk).unlink(missing_ok=True)
        todo.append(chunk)
    for chunk in todo:
        folder.forget_attempts(chunk)
    return todo


def _stderr() -> TextIO:
    import sys

    return sys.stderr


def _check_paths(source: object, output: object) -> tuple[Path, Path]:
    source_path = Path(source).expanduser()
    if not source_path.is_file():
        raise RenderError(f"SOURCE {source_path} does not exist or is not a file")
    try:
        with source_path.open("rb") as handle:
            handle.read(1)
    except OSError as problem:
        raise RenderError(f"SOURCE {source_path} cannot be read: {problem.strerror}") from None
    output_path = Path(output).expanduser().resolve()
    if output_path.resolve() == source_path.resolve():
        raise RenderError("OUTPUT is the same file as SOURCE; choose another name")
    if not output_path.parent.is_dir():
        raise RenderError(f"OUTPUT's folder {output_path.parent} does not exist; create it first")
    handle, probe_name = tempfile.mkstemp(suffix=output_path.suffix, prefix="vsdain-probe-")
    os.close(handle)
    try:
        open_output(Path(probe_name)).close()
    except EncodeError:
        raise RenderError(
            f"OUTPUT {output_path}: no container format for the extension "
            f"{output_path.suffix or '(none)'!r}; use .mkv or .mp4"
        ) from None
    finally:
        Path(probe_name).unlink(missing_ok=True)
    return source_path.resolve(), output_path


def _check_int(name: str, value: object, low: int) -> None:
    if value is None and name not in ("workers", "retries", "first"):
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise RenderError(f"{name} must be an integer >= {low}, got {value!r}")


def check_address(address: str) -> None:
    """Fail fast, naming ``address``, when nothing listens there (``auto`` is left to Ray)."""
    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    default_port = RAY_CLIENT_PORT if address.startswith("ray://") else RAY_DEFAULT_PORT
    try:
        host, port = parts.hostname, parts.port or default_port
    except ValueError:
        host = None
    if not host:
        raise RenderError(f"address {address!r} is not host:port (e.g. 10.0.0.5:6379) or 'auto'")
    try:
        with socket.create_connection((host, port), timeout=CONNECT_SECONDS):
            pass
    except OSError as problem:
        reason = problem.strerror or type(problem).__name__
        raise RenderError(
            f"address {address}: no Ray cluster answers at {host}:{port} ({reason}); start "
            "one with `ray start --head` there, or check the address"
        ) from None


@dataclass(frozen=True)
class _Plan:
    """What the driver learns before rendering, beside a node with the output's length,
    rate, size and format. spec: as the workers get it (with a VFR file's timeline); fps:
    the output rate; cost: the chunk boundary costs, or None; weights: the file the workers
    load, for the job key; filter_identity: the filter's arguments as the job key holds
    them; audio_from, audio_window: the source's audio to copy, and the part of it (seconds
    from the first video frame) that a trim keeps."""

    spec: GraphSpec
    fps: Fraction
    cost: Callable[[Iterable[int]], dict[int, int]] | None = None
    weights: Path | None = None
    filter_identity: dict[str, object] | None = None
    audio_from: Path | None = None
    audio_window: tuple[Fraction, Fraction | None] | None = None


def _plan_script(spec: GraphSpec) -> tuple[_Plan, vs.VideoNode]:
    """A script's node is built here once, to learn its length, rate and format."""
    try:
        node = run_script(spec.source)
    except GraphError as problem:
        raise RenderError(str(problem)) from None
    return _Plan(spec, _node_fps(node)), node


def _plan_file(spec: GraphSpec, *, cluster: bool) -> tuple[_Plan, vs.VideoNode]:
    """A file's output length and rate from the filter's timing arithmetic, after the
    filter's checks of every option; the node is a blank clip of that length, rate, size and
    format: no weights are loaded, nothing is interpolated."""
    try:
        whole = open_source(spec.source)
        first, end = trim_range(spec, whole.num_frames)
    except GraphError as problem:
        raise RenderError(str(problem)) from None
    times = _container_times(spec.source)
    seconds = None
    if times is not None and times.is_variable:
        seconds = _variable_rate_times(spec, times, whole.num_frames)
        timeline = trimmed(seconds, first, end)
        fps = _given_rate(spec)
        if fps is not None:  # else the filter's check below names the bad value
            timeline = snap_to_rate(timeline, fps, times.time_base)
        spec = dataclasses.replace(spec, timeline=tuple(timeline))
    try:
        clip = load_source(spec)
        keywords = filter_keywords(clip, spec)
        settings = _driver_settings(clip, keywords, cluster=cluster)
        filter_identity = job_identity(clip, keywords)
    except (GraphError, vs.Error) as problem:
        raise RenderError(str(problem)) from None
    timing = settings.timing
    fps = timing.output_fps
    node = clip.std.BlankClip(
        length=timing.output_length, fpsnum=fps.numerator, fpsden=fps.denominator, keep=True
    )
    window = None
    if (first, end) != (0, whole.num_frames):
        rate = Fraction(whole.fps_num, whole.fps_den)
        window = audio_window(first, end, whole.num_frames, rate=rate, seconds=seconds)
    plan = _Plan(
        spec,
        fps,
        cost=_cost(clip, settings),
        weights=settings.weights,
        filter_identity=filter_identity,
        audio_from=Path(spec.source),
        audio_window=window,
    )
    return plan, node


def _node_fps(node: vs.VideoNode) -> Fraction:
    try:
        return node_fps(node)
    except GraphError as problem:
        raise RenderError(str(problem)) from None


def _given_rate(spec: GraphSpec) -> Fraction | None:
    """fps_num/fps_den as a rate, or None when they are not positive integers."""
    num, den = spec.option("fps_num"), spec.option("fps_den") or 1
    valid = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (num, den))
    return Fraction(num, den) if valid else None


def _container_times(source: str) -> ContainerTimes | None:
    try:
        return read_times(source)
    except (av.FFmpegError, IndexError) as failure:
        raise RenderError(f"SOURCE {source}: cannot read its video timestamps: {failure}") from None


def _variable_rate_times(spec: GraphSpec, times: ContainerTimes, frames: int) -> list[Fraction]:
    """A VFR file's frame times (seconds from its first frame), after checking that an
    output rate is given and that the container has a time for every decoded frame."""
    shortest, longest = duration_range(times)
    if spec.option("fps_num") is None:
        raise RenderError(
            f"SOURCE {spec.source} has a variable frame rate (frames last "
            f"{float(shortest) * 1000:.1f} to {float(longest) * 1000:.1f} ms) and needs an "
            f"output rate, fps_num/fps_den: e.g. {rate_text(times.average_rate)} (its "
            f"average rate), or {', '.join(COMMON_RATES)}"
        )
    if times.frames != frames:
        raise RenderError(
            f"SOURCE {spec.source} has a variable frame rate, but its container has "
            f"{times.frames} video timestamps and core.bs.VideoSource decodes {frames} "
            "frames, so the frames' times are unknown; remux it (e.g. mkvmerge -o fixed.mkv "
            "SOURCE) or convert it to constant rate first"
        )
    return times.seconds()


def audio_window(
    first: int,
    end: int,
    length: int,
    *,
    rate: Fraction,
    seconds: Sequence[Fraction] | None = None,
) -> tuple[Fraction, Fraction | None]:
    """The part of the source's audio that source frames ``first .. end - 1`` (of
    ``length``) cover, in seconds from the first frame (end None: to the end): from the
    frame times ``seconds`` of a VFR file, else at the constant ``rate``."""
    if seconds is None:
        return first / rate, None if end == length else end / rate
    return seconds[first], None if end == length else seconds[end]


def _driver_settings(clip: vs.VideoNode, keywords: dict[str, object], *, cluster: bool) -> Settings:
    """The filter's settings from its own checks. A cluster's driver may have no GPU where
    the workers have them: then the device and precision are checked as for the CPU here,
    and by each worker on its own device (a worker that refuses them fails the render)."""
    import torch

    device = keywords.get("device")
    wants_cuda = device is None or (
        isinstance(device, str) and re.fullmatch(r"cuda(:\d+)?", device) is not None
    )
    if cluster and wants_cuda and not torch.cuda.is_available():
        keywords = {**keywords, "device": "cpu"}
        keywords.pop("precision", None)
    return check_filter_options(clip, keywords)


def _cost(clip: vs.VideoNode, settings: Settings) -> Callable[[Iterable[int]], dict[int, int]]:
    """Boundary costs for an interpolated file: scene cuts as the filter's own detector
    (threshold, reach) finds them around each candidate, none with sc off."""
    detector = settings.detector
    scores = None if detector is None else detector.scores(clip)
    known: dict[int, bool] = {}

    def is_cut(pair: int) -> bool:
        if scores is None:
            return False
        if pair not in known:
            inside = 0 <= pair < clip.num_frames - 1
            known[pair] = inside and bool(scores.get_frame(pair).props["_SceneChangeNext"])
        return known[pair]

    return boundary_costs(settings.timing.position, is_cut)


def _run(
    todo: list[Chunk],
    spec: GraphSpec,
    encoding: Encoding,
    folder: WorkFolder,
    bar: RenderProgress,
    workers: int,
    address: str | None,
    retries: int,
    threads: int | None,
) -> None:
    unfinished = {chunk.index: chunk for chunk in todo}

    def poll() -> None:
        bar.show(sum(folder.frames_encoded(chunk) for chunk in list(unfinished.values())))

    def done(task: ChunkTask) -> None:
        unfinished.pop(task.chunk.index, None)
        in_flight = sum(folder.frames_encoded(chunk) for chunk in list(unfinished.values()))
        bar.chunk_done(task.chunk, len(folder.attempts(task.chunk)), in_flight)

    if workers == 1 and address is None:
        tasks = [ChunkTask(spec, encoding, chunk, folder, threads) for chunk in todo]
        run_in_process(tasks, retries=retries, poll=poll, done=done)
        return
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        if address is None:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        device = spec.option("device")
        resources, per_worker = _resources(ray, workers, threads, address is not None, device)
        tasks = [ChunkTask(spec, encoding, chunk, folder, per_worker) for chunk in todo]
        run_with_ray(
            tasks, workers=workers, resources=resources, retries=retries, poll=poll, done=done
        )
    finally:
        if started_here:
            ray.shutdown()


def _resources(ray, workers: int, threads: int | None, cluster: bool, device: object):
    """One GPU per task when the cluster has GPUs (and the device is not the CPU), else
    ``threads`` cores (default: the cores split between the workers)."""
    totals = ray.cluster_resources()
    node_cpus = [
        node["Resources"].get("CPU", 0) for node in ray.nodes() if node.get("Alive", False)
    ]
    largest = max(1, int(max(node_cpus, default=1)))
    available = int(totals.get("CPU", 1)) if cluster else os.cpu_count() or 1
    per_worker = threads if threads is not None else max(1, available // workers)
    per_worker = min(per_worker, largest)
    if totals.get("GPU", 0) >= 1 and device != "cpu":
        return RayResources(cpus=1, gpus=1), per_worker
    return RayResources(cpus=per_worker, gpus=0), per_worker


def _join(
    chunks: list[Chunk],
    folder: WorkFolder,
    output: Path,
    fps: Fraction,
    plan: _Plan,
    total: int,
) -> None:
    """Concatenate into a temporary name, verify the frame count, rename to ``output``."""
    partial = output.with_name(f".{output.stem}.partial{output.suffix}")
    try:
        concatenate(
            [(folder.chunk_file(chunk), chunk.start) for chunk in chunks],
            partial,
            fps,
            audio_from=plan.audio_from,
            audio_window=plan.audio_window,
        )
        decoded = count_frames(partial)
        if decoded != total:
            raise RuntimeError(f"{partial} decodes to {decoded} frames, expected {total}")
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
