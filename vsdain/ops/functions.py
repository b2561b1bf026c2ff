"""Autograd Functions around the CUDA kernels of the three ops.

Each public function here takes ``launch``, the thing that runs a kernel: the CuPy launcher
(:func:`vsdain.ops.cupy_backend.launch_on_current_stream`) for CUDA tensors, or the tests'
CPU harness, which executes the same kernel source on CPU tensors. The Functions own the
tensor bookkeeping (dtypes, contiguity, buffers, what backward needs); the kernels own the
arithmetic. Semantics are exactly those of the references in ``correlation.py``,
``projection.py`` and ``warping.py``, gradients included.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch.autograd.function import once_differentiable

from .correlation import check_correlation_arguments
from .kernel_source import KERNEL_TYPES, kernel_dtype
from .projection import check_projection_arguments
from .warping import check_warp_arguments

KernelArgument = torch.Tensor | int | None


class KernelLauncher(Protocol):
    """Runs one kernel of ``cuda/<op>.cu`` compiled for ``dtype`` (the scalar_t of the build).

    ``work_items`` is the trip count of the kernel's grid-stride loop (>= 1). ``args`` follow
    the kernel's C signature: a tensor passes its data pointer (it must be contiguous and on
    the launch's device), None passes a null pointer, and an int passes a C ``int``.
    """

    def __call__(
        self, op: str, kernel: str, dtype: torch.dtype, work_items: int, *args: KernelArgument
    ) -> None: ...


# --- correlation ---------------------------------------------------------------------------


def correlation_kernel(
    first: torch.Tensor, second: torch.Tensor, max_displacement: int, *, launch: KernelLauncher
) -> torch.Tensor:
    """PWC-Net cost volume through the kernels; arguments and result as
    :func:`vsdain.ops.correlation.correlation_reference`."""
    check_correlation_arguments(first, second, max_displacement)
    dtype = kernel_dtype(first.dtype)
    cost = _Correlation.apply(
        first.to(dtype).contiguous(), second.to(dtype).contiguous(), max_displacement, launch
    )
    return cost.to(first.dtype)


class _Correlation(torch.autograd.Function):
    @staticmethod
    def forward(ctx, first, second, max_displacement, launch):
        batch, channels, height, width = first.shape
        side = 2 * max_displacement + 1
        cost = first.new_empty(batch, side * side, height, width)
        dims = (batch, channels, height, width, max_displacement)
        kernels = _OpKernels(launch, "correlation", first.dtype)
        if cost.numel():
            kernels("correlation_forward", cost.numel(), first, second, cost, *dims)
        ctx.save_for_backward(first, second)
        ctx.dims = dims
        ctx.kernels = kernels
        return cost

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_cost):
        first, second = ctx.saved_tensors
        grad_cost = grad_cost.to(first.dtype).contiguous()
        grads = []
        for needed, kernel, other in (
            (ctx.needs_input_grad[0], "correlation_backward_first", second),
            (ctx.needs_input_grad[1], "correlation_backward_second", first),
        ):
            if not needed:
                grads.append(None)
                continue
            grad = _accum_empty(first.shape, first)
            if grad.numel():
                ctx.kernels(kernel, grad.numel(), grad_cost, other, grad, *ctx.dims)
            grads.append(grad.to(first.dtype))
        return grads[0], grads[1], None, None


# --- depth-aware flow projection -----------------------------------------------------------


def project_flow_kernel(
    flow: torch.Tensor,
    weight: torch.Tensor | None,
    *,
    fill_holes: bool,
    launch: KernelLauncher,
) -> torch.Tensor:
    """Depth-aware flow projection through the kernels; arguments and result as
    :func:`vsdain.ops.projection.project_flow_reference`."""
    check_projection_arguments(flow, weight)
    dtype = kernel_dtype(flow.dtype) if weight is None else kernel_dtype(flow.dtype, weight.dtype)
    if weight is not None:
        weight = weight.to(dtype).contiguous()
    projected = _ProjectFlow.apply(flow.to(dtype).contiguous(), weight, bool(fill_holes), launch)
    return projected.to(flow.dtype)


class _ProjectFlow(torch.autograd.Function):
    @staticmethod
    def forward(ctx, flow, weight, fill_holes, launch):
        batch, _, height, width = flow.shape
        dims = (batch, height, width)
        # Sums, counts and the projected flow stay in accum_t (float32 for float16 flow).
        summed = _accum_zeros(flow.shape, flow)
        count = _accum_zeros((batch, 1, height, width), flow)
        pixels = batch * height * width
        kernels = _OpKernels(launch, "projection", flow.dtype)
        if pixels:
            kernels("project_flow_splat", pixels, flow, weight, summed, count, *dims)
            kernels("project_flow_average", pixels, summed, count, *dims)
        projected = summed
        result = projected
        if fill_holes and pixels:
            result = torch.empty_like(projected)
            kernels("project_flow_fill_holes", pixels, projected, count, result, *dims)
        ctx.save_for_backward(flow, weight, count, projected)
        ctx.fill_holes = fill_holes
        ctx.kernels = kernels
        return result.to(flow.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_result):
        flow, weight, count, projected = ctx.saved_tensors
        batch, _, height, width = flow.shape
        dims = (batch, height, width)
        pixels = batch * height * width
        want_flow = ctx.needs_input_grad[0]
        want_weight = weight is not None and ctx.needs_input_grad[1]
        if not (want_flow or want_weight):
            return None, None, None, None
        if ctx.fill_holes:
            grad_projected = _accum_zeros(flow.shape, flow)
            if pixels:
                grad_result = grad_result.to(flow.dtype).contiguous()
                ctx.kernels(
                    "project_flow_fill_holes_backward", pixels,
                    grad_result, count, grad_projected, *dims,
                )  # fmt: skip
        else:
            grad_projected = grad_result.to(projected.dtype).contiguous()
        grad_flow = _accum_empty(flow.shape, flow) if want_flow else None
        grad_weight = _accum_empty(weight.shape, flow) if want_weight else None
        if pixels:
            ctx.kernels(
                "project_flow_backward", pixels,
                flow, weight, count, projected, grad_projected, grad_flow, grad_weight, *dims,
            )  # fmt: skip
        return (
            None if grad_flow is None else grad_flow.to(flow.dtype),
            None if grad_weight is None else grad_weight.to(weight.dtype),
            None,
            None,
        )


# --- adaptive warping ----------------------------------------------------------------------


def adaptive_warp_kernel(
    image: torch.Tensor, flow: torch.Tensor, kernel: torch.Tensor, *, launch: KernelLauncher
) -> torch.Tensor:
    """Adaptive warping through the kernels; arguments and result as
    :func:`vsdain.ops.warping.adaptive_warp_reference`."""
    check_warp_arguments(image, flow, kernel)
    dtype = kernel_dtype(image.dtype, kernel.dtype)
    # Sample coordinates are computed in accum_t (float32 for float16 images), like the
    # reference's float32 geometry.
    geometry_dtype = KERNEL_TYPES[dtype].accum_dtype
    warped = _AdaptiveWarp.apply(
        image.to(dtype).contiguous(),
        flow.to(geometry_dtype).contiguous(),
        kernel.to(dtype).contiguous(),
        launch,
    )
    return warped.to(image.dtype)


class _AdaptiveWarp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, image, flow, kernel, launch):
        batch, channels, height, width = image.shape
        dims = (batch, channels, height, width)
        warped = torch.empty_like(image)
        pixels = batch * height * width
        kernels = _OpKernels(launch, "warping", image.dtype)
        if pixels and channels:
            kernels("adaptive_warp_forward", pixels, image, flow, kernel, warped, *dims)
        ctx.save_for_backward(image, flow, kernel)
        ctx.dims = dims
        ctx.kernels = kernels
        return warped

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_warped):
        image, flow, kernel = ctx.saved_tensors
        batch, _, height, width = image.shape
        want_image, want_flow, want_kernel = ctx.needs_input_grad[:3]
        if not (want_image or want_flow or want_kernel):
            return None, None, None, None
        # The image gradient is scattered with atomics, so it starts from zero; the others are
        # written in full.
        grad_image = _accum_zeros(image.shape, image) if want_image else None
        grad_flow = torch.empty_like(flow) if want_flow else None
        grad_kernel = _accum_empty(kernel.shape, image) if want_kernel else None
        pixels = batch * height * width
        if pixels:
            grad_warped = grad_warped.to(image.dtype).contiguous()
            ctx.kernels(
                "adaptive_warp_backward", pixels,
                image, flow, kernel, grad_warped, grad_image, grad_flow, grad_kernel, *ctx.dims,
            )  # fmt: skip
        return (
            None if grad_image is None else grad_image.to(image.dtype),
            grad_flow,
            None if grad_kernel is None else grad_kernel.to(kernel.dtype),
            None,
        )


# --- helpers -------------------------------------------------------------------------------


class _OpKernels:
    """The kernels of one op built for one dtype: ``kernels(name, work_items, *args)``."""

    def __init__(self, launch: KernelLauncher, op: str, dtype: torch.dtype) -> None:
        self.launch = launch
        self.op = op
        self.dtype = dtype

    def __call__(self, kernel: str, work_items: int, *args: KernelArgument) -> None:
        self.launch(self.op, kernel, self.dtype, work_items, *args)


def _accum_empty(shape, like: torch.Tensor) -> torch.Tensor:
    """Uninitialised accum_t buffer on ``like``'s device, for kernels that write every element."""
    return torch.empty(shape, dtype=KERNEL_TYPES[like.dtype].accum_dtype, device=like.device)


def _accum_zeros(shape, like: torch.Tensor) -> torch.Tensor:
    """Zeroed accum_t buffer on ``like``'s device, for kernels that accumulate."""
    return torch.zeros(shape, dtype=KERNEL_TYPES[like.dtype].accum_dtype, device=like.device)
