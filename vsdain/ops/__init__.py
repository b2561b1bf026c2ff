"""DAIN's custom operations: PWC-Net correlation, depth-aware flow projection, adaptive warping.

Each op has a pure-PyTorch reference (runs on any device, differentiable) and a CuPy CUDA
kernel; the public functions below dispatch between them (see :mod:`vsdain.ops.dispatch`).
"""

from .dispatch import (
    OPS_ENV,
    OpsBackendError,
    adaptive_warp,
    correlation,
    describe_backend,
    project_flow,
)

__all__ = [
    "OPS_ENV",
    "OpsBackendError",
    "adaptive_warp",
    "correlation",
    "describe_backend",
    "project_flow",
]
