"""Chooses between the CUDA kernels and the PyTorch references for each op call.

Placeholder: only the references exist so far; the kernel path is added with the CUDA kernels.
"""

from __future__ import annotations

import torch

from .correlation import correlation_reference
from .projection import project_flow_reference
from .warping import adaptive_warp_reference


def correlation(first: torch.Tensor, second: torch.Tensor, max_displacement: int = 4) -> torch.Tensor:
    """PWC-Net cost volume; see :func:`vsdain.ops.correlation.correlation_reference`."""
    return correlation_reference(first, second, max_displacement)


def project_flow(
    flow: torch.Tensor, weight: torch.Tensor | None, *, fill_holes: bool
) -> torch.Tensor:
    """Depth-aware flow projection; see :func:`vsdain.ops.projection.project_flow_reference`."""
    return project_flow_reference(flow, weight, fill_holes=fill_holes)


def adaptive_warp(image: torch.Tensor, flow: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Adaptive warping layer; see :func:`vsdain.ops.warping.adaptive_warp_reference`."""
    return adaptive_warp_reference(image, flow, kernel)
