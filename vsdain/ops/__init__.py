"""DAIN's custom operations: PWC-Net correlation, depth-aware flow projection, adaptive warping.

Each op has a pure-PyTorch reference (runs on any device, differentiable) and a CuPy CUDA
kernel; the public functions below dispatch between them (see :mod:`vsdain.ops.dispatch`).
"""

from .dispatch import adaptive_warp, correlation, project_flow

__all__ = ["adaptive_warp", "correlation", "project_flow"]
