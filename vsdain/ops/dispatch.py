"""Chooses between the CUDA kernels and the PyTorch references for each op call.

The rule: tensors on a CUDA device, with CuPy importable, use the kernels; everything else uses
the references. Either path can be forced, per call with ``backend=`` or for the process with
the environment variable ``VSDAIN_OPS``:

* ``auto`` (default): the rule above;
* ``reference``: always the PyTorch references (the escape hatch if kernels misbehave);
* ``cuda``: always the kernels; an op called where they cannot run raises
  :class:`OpsBackendError` instead of quietly falling back.

``backend=`` wins over ``VSDAIN_OPS``. Both paths compute the same function with the same
gradients (see the references' docstrings for the exact semantics).
"""

from __future__ import annotations

import os

import torch

from . import cupy_backend
from .correlation import correlation_reference
from .functions import adaptive_warp_kernel, correlation_kernel, project_flow_kernel
from .projection import project_flow_reference
from .warping import adaptive_warp_inference, adaptive_warp_reference

OPS_ENV = "VSDAIN_OPS"
BACKENDS = ("auto", "reference", "cuda")
CUDA_EXTRAS_HINT = "install CuPy for your CUDA: pip install 'vsdain[cuda12]' or 'vsdain[cuda13]'"


class OpsBackendError(RuntimeError):
    """The requested op path cannot run here, or the request itself is invalid."""


def correlation(
    first: torch.Tensor,
    second: torch.Tensor,
    max_displacement: int = 4,
    *,
    backend: str | None = None,
) -> torch.Tensor:
    """PWC-Net cost volume; see :func:`vsdain.ops.correlation.correlation_reference` for
    shapes and semantics. ``backend``: None (use ``VSDAIN_OPS``), "auto", "reference" or
    "cuda"."""
    if _uses_kernels(first.device, backend):
        return correlation_kernel(
            first, second, max_displacement, launch=cupy_backend.launch_on_current_stream
        )
    return correlation_reference(first, second, max_displacement)


def project_flow(
    flow: torch.Tensor,
    weight: torch.Tensor | None,
    *,
    fill_holes: bool,
    backend: str | None = None,
) -> torch.Tensor:
    """Depth-aware flow projection; see :func:`vsdain.ops.projection.project_flow_reference`
    for shapes and semantics. ``backend`` as for :func:`correlation`."""
    if _uses_kernels(flow.device, backend):
        return project_flow_kernel(
            flow, weight, fill_holes=fill_holes, launch=cupy_backend.launch_on_current_stream
        )
    return project_flow_reference(flow, weight, fill_holes=fill_holes)


def adaptive_warp(
    image: torch.Tensor,
    flow: torch.Tensor,
    kernel: torch.Tensor,
    *,
    backend: str | None = None,
) -> torch.Tensor:
    """Adaptive warping layer; see :func:`vsdain.ops.warping.adaptive_warp_reference` for
    shapes and semantics. ``backend`` as for :func:`correlation`."""
    if _uses_kernels(image.device, backend):
        return adaptive_warp_kernel(
            image, flow, kernel, launch=cupy_backend.launch_on_current_stream
        )
    if image.device.type == "cpu" and not _needs_gradient(image, flow, kernel):
        return adaptive_warp_inference(image, flow, kernel)
    return adaptive_warp_reference(image, flow, kernel)


def _needs_gradient(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(tensor.requires_grad for tensor in tensors)


def describe_backend(device: torch.device | str, backend: str | None = None) -> tuple[str, str]:
    """Which op path runs for tensors on ``device``, and why, for ``python -m vsdain info``.

    Args:
        device: a torch device (or its name, e.g. "cuda:0" or "cpu").
        backend: as for the ops; None reads ``VSDAIN_OPS``.

    Returns:
        ``(path, reason)``: path is one word, "cuda" (the CuPy kernels), "reference" (the
        PyTorch references) or "error" (forcing or configuration that makes every op call on
        this device raise); reason is one line of plain text. Never raises for a bad setting:
        the info command reports it instead. Checking CuPy imports it (about a second, once).
    """
    try:
        uses_kernels, reason = _choose(torch.device(device), backend)
    except OpsBackendError as error:
        return "error", str(error)
    if not uses_kernels:
        return "reference", reason
    return "cuda", f"{reason} ({cupy_backend.cupy_description()})"


def _uses_kernels(device: torch.device, backend: str | None) -> bool:
    return _choose(device, backend)[0]


def _choose(device: torch.device, backend: str | None) -> tuple[bool, str]:
    """(whether the kernels run, why); raises OpsBackendError where the choice is impossible."""
    if backend is None:
        requested = os.environ.get(OPS_ENV, "").strip().lower() or "auto"
        source = f"{OPS_ENV}={requested}"
        if requested not in BACKENDS:
            raise OpsBackendError(
                f"{OPS_ENV}={os.environ[OPS_ENV]!r} is not one of {', '.join(BACKENDS)}"
            )
    else:
        requested = backend
        source = f"backend={backend!r}"
        if requested not in BACKENDS:
            raise OpsBackendError(
                f"backend must be None or one of {', '.join(BACKENDS)}, got {backend!r}"
            )

    if requested == "reference":
        return False, f"forced by {source}"

    forced = requested == "cuda"
    if device.type != "cuda":
        if forced:
            raise OpsBackendError(
                f"{source} forces the CUDA kernels, but the tensors are on {device}; move them "
                "to a CUDA device or use the references"
            )
        return False, f"the kernels are CUDA-only and tensors are on {device}"

    unavailable = cupy_backend.cupy_unavailable_reason()
    if unavailable is not None:
        if forced:
            raise OpsBackendError(
                f"{source} forces the CUDA kernels, but CuPy does not import ({unavailable}); "
                f"{CUDA_EXTRAS_HINT}"
            )
        return False, (f"slower, as CuPy does not import ({unavailable}); {CUDA_EXTRAS_HINT}")
    why = f"forced by {source}" if forced else "CUDA device and CuPy importable"
    return True, f"{why}; kernels compiled at run time"
