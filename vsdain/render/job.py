"""``vsdain.render.render``: a whole video through the graph, in chunks, resumable, on one or
many workers. The command ``vsdain render`` is a thin layer over it."""

from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
import time
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

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
from .graph import GraphError, GraphSpec, build_node, load_source, node_fps
from .plan import Chunk, boundary_costs, default_chunk_frames, plan_chunks
from .progress import RenderProgress, RenderSummary
from .state import WorkFolder, file_identity, job_folder, job_key
from .workers import ChunkTask, RayResources, run_in_process, run_with_ray

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
    multi: int = 2,
    fps_num: int | None = None,
    fps_den: int | None = None,
    weights: str | os.PathLike[str] | None = None,
    device: str | None = None,
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
) -> RenderSummary:
    """Render ``source`` into ``output``, chunk by chunk, and return what was done.

    source: a video file (read with ``core.bs.VideoSource``, then :func:`vsdain.Interpolate`
    with multi or fps_num/fps_den, weights and device; first/frames trim it in source frames
    and width/height resize it first, for previews) or a ``.vpy`` script whose first video
    output is rendered as it is (then those options do not apply).
    output: the file to write; its extension picks the container (.mkv, .mp4, ...). The
    source's audio (files only) is copied into it untouched.
    codec, codec_options: the FFmpeg encoder and its options (default libx264, crf 16,
    preset medium); ``ffv1`` or ``libx264`` with ``qp=0`` are lossless.
    chunk_frames: output frames per chunk (default 4 s of output); boundaries move to scene
    cuts or source frames within a quarter chunk, see :mod:`vsdain.render.plan`.
    workers: chunks rendered at once; 1 without ``address`` runs here without Ray.
    address: a Ray cluster to join (``host:port`` of ``ray start --head``, or ``auto``).
    retries: further attempts for a chunk whose worker dies or raises (>= 0).
    threads: CPU threads per worker (default: this machine's cores split between workers).
    work_dir: where chunk files are kept (default ``.<output name>.vsdain`` beside output);
    must be shared by all nodes of a cluster, as must source and output.
    keep_chunks: keep the job folder after success (default: delete it).
    progress: show progress and the summary on ``stream`` (default stderr).

    Raises RenderError for bad arguments before anything is rendered, and
    :class:`vsdain.render.workers.ChunkError` when a chunk fails all its attempts.
    Re-running the same call after an interruption renders only the unfinished chunks.
    """
    started = time.monotonic()
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
    options = dict(DEFAULT_CODEC_OPTIONS.get(codec, {}) if codec_options is None else codec_options)
    try:
        check_codec(codec)
    except EncodeError as problem:
        raise RenderError(f"codec: {problem}") from None
    if address is not None:
        check_address(address)

    spec = GraphSpec(
        source=str(source_path),
        multi=multi,
        fps_num=fps_num,
        fps_den=fps_den,
        weights=None if weights is None else str(Path(weights).resolve()),
        device=device,
        width=width,
        height=height,
        first=first,
        frames=frames,
    )
    if spec.is_script and (width, height, frames, fps_num, weights) != (None,) * 5:
        raise RenderError(
            "width, height, frames, fps and weights apply to a video file; a script "
            "renders its output node as it is, so set them in the script"
        )
    node, weights_file = _driver_node(spec)
    fps = _node_fps(node)
    try:
        encoding = Encoding(codec, fps, node.width, node.height, node.format.id, options)
        pixel_format_of(node)
        probe(encoding, output_path.suffix)
    except EncodeError as problem:
        raise RenderError(str(problem)) from None
    suffix = chunk_suffix(encoding)

    if chunk_frames is None:
        chunk_frames = default_chunk_frames(float(fps))
    chunks = plan_chunks(node.num_frames, chunk_frames, cost=_cost(spec, node))
    identity = {
        "source": file_identity(source_path, whole=spec.is_script),
        "weights": None if weights_file is None else file_identity(weights_file),
        "graph": spec,
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
    todo = [chunk for chunk in chunks if not folder.is_done(chunk)]
    for chunk in todo:
        folder.forget_attempts(chunk)
    del node  # workers build their own graph; the driver's holds a network

    done_frames = node_frames = sum(chunk.frames for chunk in chunks)
    done_frames -= sum(chunk.frames for chunk in todo)
    bar = RenderProgress(node_frames, done_frames, stream=stream, enabled=progress)
    try:
        if todo:
            _run(todo, spec, encoding, folder, bar, workers, address, retries, threads)
        bar.close()
        _join(chunks, folder, output_path, fps, spec, node_frames)
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


def _driver_node(spec: GraphSpec) -> tuple[vs.VideoNode, Path | None]:
    """The graph built here once, to learn its length, rate and format (and check every
    setting); on the CPU so a GPU driver node leaves its memory to the workers."""
    weights_file = None
    if not spec.is_script:
        from ..weights import WeightsNotFoundError, find_weights

        try:
            weights_file = find_weights(spec.weights)
        except WeightsNotFoundError as missing:
            raise RenderError(f"weights: {missing}") from None
    try:
        here = (
            spec if spec.is_script else dataclasses.replace(spec, device=_check_device(spec.device))
        )
        return build_node(here), weights_file
    except GraphError as problem:
        raise RenderError(str(problem)) from None
    except vs.Error as problem:
        raise RenderError(str(problem)) from None


def _check_device(device: str | None) -> str:
    import torch

    if device is not None and not (
        device == "cpu" or device == "cuda" or device.startswith("cuda:")
    ):
        raise RenderError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got {device!r}")
    return "cpu" if device is None or not torch.cuda.is_available() else device


def _node_fps(node: vs.VideoNode) -> Fraction:
    try:
        return node_fps(node)
    except GraphError as problem:
        raise RenderError(str(problem)) from None


def _cost(spec: GraphSpec, node: vs.VideoNode):
    """Boundary costs for an interpolated file (scene cuts found around each candidate with
    vsdain's detector); None for a script, whose frames vsdain knows nothing about."""
    if spec.is_script:
        return None
    from ..filter import SceneCutDetector

    source = load_source(spec)
    step = Fraction(source.fps_num, source.fps_den) / Fraction(node.fps_num, node.fps_den)
    scores = SceneCutDetector().scores(source)
    known: dict[int, bool] = {}

    def is_cut(pair: int) -> bool:
        if pair not in known:
            inside = 0 <= pair < source.num_frames - 1
            known[pair] = inside and bool(scores.get_frame(pair).props["_SceneChangeNext"])
        return known[pair]

    return boundary_costs(step.numerator, step.denominator, is_cut)


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
        resources, per_worker = _resources(ray, workers, threads, address is not None, spec.device)
        tasks = [ChunkTask(spec, encoding, chunk, folder, per_worker) for chunk in todo]
        run_with_ray(
            tasks, workers=workers, resources=resources, retries=retries, poll=poll, done=done
        )
    finally:
        if started_here:
            ray.shutdown()


def _resources(ray, workers: int, threads: int | None, cluster: bool, device: str | None):
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
    spec: GraphSpec,
    total: int,
) -> None:
    """Concatenate into a temporary name, verify the frame count, rename to ``output``."""
    partial = output.with_name(f".{output.stem}.partial{output.suffix}")
    audio_from, window = None, None
    if not spec.is_script:
        audio_from = Path(spec.source)
        if spec.first or spec.frames is not None:
            window = _trim_window(spec)
    try:
        concatenate(
            [(folder.chunk_file(chunk), chunk.start) for chunk in chunks],
            partial,
            fps,
            audio_from=audio_from,
            audio_window=window,
        )
        decoded = count_frames(partial)
        if decoded != total:
            raise RuntimeError(f"{partial} decodes to {decoded} frames, expected {total}")
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)


def _trim_window(spec: GraphSpec) -> tuple[Fraction, Fraction | None]:
    clip = vs.core.bs.VideoSource(spec.source)
    rate = Fraction(clip.fps_num, clip.fps_den)
    end = None if spec.frames is None else (spec.first + spec.frames) / rate
    return spec.first / rate, end
