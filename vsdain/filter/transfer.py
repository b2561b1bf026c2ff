"""Frames between the host and a GPU without stalling it: pinned buffers, non-blocking copies,
and one CUDA stream each for upload, compute and download.

On a CUDA device the filter's worker thread only queues work. A source frame's planes are
copied into a pinned (page-locked) host buffer and uploaded with a non-blocking copy on the
upload stream; the network runs on the compute stream, which waits for the upload; a result
is cast on the GPU and downloaded with a non-blocking copy into a pinned buffer on the
download stream, which waits for the compute. The thread that asked for the frame then waits
for that download alone (:class:`PendingPlanes`) while the worker already queues the next
request, so the GPU gets new work before the last result has reached the host.

PyTorch's caching host allocator keeps pinned buffers for reuse and hands one out again only
after the copies queued on it have finished, so the buffers need no bookkeeping here. A tensor
made on one stream and read on another is marked with ``record_stream``, so that its memory
is not reused before the other stream is done with it.

On the CPU each step is the plain one of :mod:`.frames`: there is nothing to overlap, and the
results are exactly those of :func:`.frames.frame_to_tensor` / :func:`.frames.tensor_to_planes`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
import vapoursynth as vs

from .frames import RGB_PLANES, frame_to_tensor, sanitized, single_image, tensor_to_planes


class PendingPlanes:
    """(3, H, W) planes on their way to the host; :meth:`wait` blocks until they are there.

    host: the pinned (3, H, W) CPU tensor the download writes into; done: the CUDA event
    recorded on the download stream after the copy."""

    def __init__(self, host: torch.Tensor, done: torch.cuda.Event) -> None:
        self._host = host
        self._done = done

    def wait(self) -> np.ndarray:
        """The planes as a contiguous (3, H, W) array (a view of the pinned buffer, which
        stays alive as long as the array does)."""
        self._done.synchronize()
        return self._host.numpy()


def resolved(planes: np.ndarray | PendingPlanes) -> np.ndarray:
    """``planes`` as an array, waiting for its download if it is still under way."""
    return planes.wait() if isinstance(planes, PendingPlanes) else planes


class Transfers:
    """The host <-> device steps of one filter on ``device`` (see the module docstring).

    Used from the filter's worker thread; :meth:`PendingPlanes.wait` may be called from any
    thread."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        if self.cuda:
            self.upload_stream = torch.cuda.Stream(device)
            self.compute_stream = torch.cuda.Stream(device)
            self.download_stream = torch.cuda.Stream(device)

    @contextlib.contextmanager
    def computing(self) -> Iterator[None]:
        """The block's CUDA work goes to the compute stream (CuPy's kernels too: they launch on
        PyTorch's current stream); on the CPU, nothing changes."""
        if not self.cuda:
            yield
            return
        with torch.cuda.stream(self.compute_stream):
            yield

    def upload(self, frame: vs.VideoFrame, dtype: torch.dtype) -> torch.Tensor:
        """(1, 3, H, W) tensor of ``frame``'s planes on the device, as
        :func:`.frames.frame_to_tensor` gives it, ready for the compute stream."""
        if not self.cuda:
            return frame_to_tensor(frame, device=self.device, dtype=dtype)
        planes = [np.asarray(frame[plane]) for plane in range(RGB_PLANES)]
        host = torch.empty(
            (1, RGB_PLANES, *planes[0].shape), dtype=_torch_type(planes[0].dtype), pin_memory=True
        )
        staging = host.numpy()
        for plane, values in enumerate(planes):
            np.copyto(staging[0, plane], values)  # the frame is read here, never later
        with torch.cuda.stream(self.upload_stream):
            on_device = host.to(self.device, non_blocking=True)
        self.compute_stream.wait_stream(self.upload_stream)
        on_device.record_stream(self.compute_stream)
        with torch.cuda.stream(self.compute_stream):
            return sanitized(on_device, dtype)

    def download(self, image: torch.Tensor, sample_type: np.dtype) -> np.ndarray | PendingPlanes:
        """``image`` ((1, 3, H, W) or (3, H, W), made on the compute stream) as (3, H, W)
        planes of ``sample_type``: the array itself on the CPU, a :class:`PendingPlanes` on
        CUDA."""
        if not self.cuda:
            return tensor_to_planes(image, sample_type)
        with torch.cuda.stream(self.compute_stream):
            planes = single_image(image).to(dtype=_torch_type(sample_type)).contiguous()
        self.download_stream.wait_stream(self.compute_stream)
        planes.record_stream(self.download_stream)
        with torch.cuda.stream(self.download_stream):
            host = torch.empty(planes.shape, dtype=planes.dtype, pin_memory=True)
            host.copy_(planes, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.download_stream)
        return PendingPlanes(host, done)


def _torch_type(sample_type: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.empty(0, dtype=sample_type)).dtype
