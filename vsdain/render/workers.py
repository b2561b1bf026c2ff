"""Running chunks: one chunk in a worker (:func:`render_chunk`), and the two ways of running
many, in this process (no Ray) or as Ray tasks on this machine or a cluster.

Retries: Ray retries a task whose worker process dies (``max_retries``) or whose attempt
fails while rendering or writing (:class:`AttemptError`, the one exception type
``retry_exceptions`` lists); in this process such a chunk is retried the same number of
times. A worker that cannot build the graph (:class:`GraphBuildError`: a source it cannot
read, an option its machine refuses, a script that fails) would fail the same way on every
attempt, so that ends the render at once. Each attempt appends its process id to the chunk's
attempts file, which is how the driver counts retries and how a test finds the process to
kill.

The chunks a process renders one after another share one loaded network
(:func:`vsdain.render.graph.shared_network`): a Ray worker process keeps it between its
tasks, and an in-process run frees it at the end.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import vapoursynth as vs

from .encode import Encoding, count_frames, encode_frames
from .graph import GraphError, GraphSpec, build_node, release_network
from .plan import Chunk
from .state import WorkFolder, attempt_token

# How often a worker rewrites its progress file, and the driver reads them.
REPORT_SECONDS = 0.5


class ChunkError(RuntimeError):
    """A chunk could not be rendered and verified, after all its attempts."""


class GraphBuildError(RuntimeError):
    """A worker could not build the graph to render; never retried (see the module)."""


class AttemptError(RuntimeError):
    """An attempt failed while rendering, encoding or verifying its chunk; retried. The
    message names the chunk, the host and the original exception."""


@dataclass(frozen=True)
class ChunkTask:
    """One chunk's work, as plain data. threads: CPU threads for torch and VapourSynth in
    the worker (None leaves the process's defaults)."""

    spec: GraphSpec
    encoding: Encoding
    chunk: Chunk
    folder: WorkFolder
    threads: int | None = None


def render_chunk(task: ChunkTask) -> int:
    """Evaluate the graph's frames ``chunk.start..chunk.end - 1``, encode them into a
    temporary file, verify the decoded frame count and rename it into place; returns the
    frame count. Raises GraphBuildError when the graph cannot be built, AttemptError for any
    other failure (a file that does not decode to the chunk's frames among them)."""
    chunk, folder = task.chunk, task.folder
    with folder.attempts_file(chunk).open("a") as attempts:
        attempts.write(f"{os.getpid()}\n")
    where = f"{chunk.name} on {socket.gethostname()}"
    try:
        if task.threads is not None:
            _use_threads(task.threads)
        node = build_node(task.spec)
    except (GraphError, vs.Error) as failure:
        raise GraphBuildError(f"{where}: cannot build the graph: {failure}") from None
    except Exception as failure:
        raise AttemptError(f"{where}: {type(failure).__name__}: {failure}") from failure
    if node.num_frames < chunk.end:
        raise GraphBuildError(
            f"{where}: the graph has {node.num_frames} frames here, the plan needs "
            f"{chunk.end}; the source or script changed while rendering"
        )
    try:
        return _encode_chunk(task, node)
    except Exception as failure:
        raise AttemptError(f"{where}: {type(failure).__name__}: {failure}") from failure


def _encode_chunk(task: ChunkTask, node: vs.VideoNode) -> int:
    chunk, folder = task.chunk, task.folder
    partial = folder.partial_file(chunk)
    reporter = _Reporter(folder, chunk)
    try:
        encode_frames(
            node[chunk.start : chunk.end].frames(close=True),
            partial,
            task.encoding,
            on_frame=reporter,
        )
        decoded = count_frames(partial)
        if decoded != chunk.frames:
            raise ChunkError(f"{partial.name} decodes to {decoded} frames, not {chunk.frames}")
        partial.replace(folder.chunk_file(chunk))
    finally:
        partial.unlink(missing_ok=True)
    reporter(chunk.frames, force=True)
    return decoded


class _Reporter:
    def __init__(self, folder: WorkFolder, chunk: Chunk) -> None:
        self.path = folder.progress_file(chunk)
        self.token = attempt_token()
        self.last = -float("inf")

    def __call__(self, count: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= REPORT_SECONDS:
            self.last = now
            temporary = self.path.with_name(f".{self.path.name}.{self.token}")
            temporary.write_text(str(count))
            temporary.replace(self.path)


def _use_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    vs.core.num_threads = threads


Poll = Callable[[], None]
Done = Callable[[ChunkTask], None]


def run_in_process(tasks: Sequence[ChunkTask], *, retries: int, poll: Poll, done: Done) -> None:
    """Render the chunks one after another here. Progress is polled from a background
    thread, because the frames are computed in this one."""
    import threading

    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(REPORT_SECONDS):
            poll()

    watcher = threading.Thread(target=watch, name="vsdain-render-progress", daemon=True)
    watcher.start()
    try:
        for task in tasks:
            for attempt in range(retries + 1):
                try:
                    render_chunk(task)
                    break
                except GraphBuildError as failure:
                    raise ChunkError(f"{failure} (not retried)") from failure
                except AttemptError as failure:
                    if attempt == retries:
                        raise ChunkError(
                            f"{task.chunk.name} failed {retries + 1} times; last: {failure}"
                        ) from failure
            done(task)
    finally:
        stop.set()
        watcher.join()
        release_network()


@dataclass(frozen=True)
class RayResources:
    """What each Ray task asks for: one GPU when there are GPUs, else ``cpus`` cores."""

    cpus: float
    gpus: float


def run_with_ray(
    tasks: Sequence[ChunkTask],
    *,
    workers: int,
    resources: RayResources,
    retries: int,
    poll: Poll,
    done: Done,
) -> None:
    """Run the chunks as Ray tasks, at most ``workers`` at a time, on the Ray runtime this
    process is connected to. A chunk that fails after its retries cancels the rest."""
    import ray

    remote = ray.remote(render_chunk).options(
        num_cpus=resources.cpus,
        num_gpus=resources.gpus,
        max_retries=retries,
        retry_exceptions=[AttemptError],
    )
    queue = list(tasks)
    pending: dict[ray.ObjectRef, ChunkTask] = {}
    try:
        while queue or pending:
            while queue and len(pending) < workers:
                task = queue.pop(0)
                pending[remote.remote(task)] = task
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=REPORT_SECONDS)
            for ref in ready:
                task = pending.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.RayError as failure:
                    cause = getattr(failure, "cause", None)
                    if isinstance(cause, GraphBuildError):
                        raise ChunkError(f"{cause} (not retried)") from None
                    last = cause if isinstance(cause, AttemptError) else failure
                    raise ChunkError(
                        f"{task.chunk.name} failed {retries + 1} times; last: {last}"
                    ) from None
                done(task)
            poll()
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
