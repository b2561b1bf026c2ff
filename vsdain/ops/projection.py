"""DAIN's depth-aware flow projection: argument checks, the pure-PyTorch reference, the CUDA
kernels' autograd Function (kernels in ``projection.cu`` beside this file) and the public
function that chooses between them.

Mirrors the reference's ``DepthFlowProjection`` CUDA op (``my_package/DepthFlowProjection``):
the flow from frame 0 to frame 1, scaled by t, is splatted forward onto the intermediate frame
and reversed, giving the flow from time t back to frame 0 (paper eq. 1). Where several source
pixels land on one target, their flows are averaged with inverse depth as the weight, so nearer
objects win.
"""

from __future__ import annotations

from functools import partial

import torch
from torch.autograd.function import once_differentiable

from .backend import OpPath, SelfCheckCase, resolve_op_path
from .kernel_source import KernelLauncher, OpKernels, accum_empty, accum_zeros, kernel_dtype

OP = "projection"

# The CUDA kernel splats every source onto the 2x2 pixels around its landing point, in the
# order top-left, top-right, bottom-left, bottom-right.
_SPLAT_TARGETS = 4


def check_projection_arguments(flow: torch.Tensor, weight: torch.Tensor | None) -> None:
    """The checks both projection paths make: ValueError naming the argument."""
    if flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"project_flow: flow must be (B, 2, H, W), got {tuple(flow.shape)}")
    batch, _, height, width = flow.shape
    if weight is not None and weight.shape != (batch, 1, height, width):
        raise ValueError(
            f"project_flow: weight must be (B, 1, H, W) = {(batch, 1, height, width)} or None, "
            f"got {tuple(weight.shape)}"
        )


def project_flow_reference(
    flow: torch.Tensor, weight: torch.Tensor | None, *, fill_holes: bool
) -> torch.Tensor:
    """Project a forward flow to the intermediate frame and reverse it.

    Args:
        flow: (B, 2, H, W) flow from frame 0 towards frame 1 in pixels, already multiplied by
            the timestep t; channel 0 = x, channel 1 = y.
        weight: (B, 1, H, W) weight of each source pixel, DAIN's inverse depth (positive), or
            None to weigh every source 1 (the paper's "DA-None" plain-average ablation).
        fill_holes: whether pixels that no source reached take the average of the nearest
            reached pixel to their left, right, top and bottom (DAIN's ``fillhole = 1``).

    Returns:
        (B, 2, H, W) projected flow from time t back to frame 0, in pixels, in the dtype of
        ``flow``. float16/bfloat16 inputs are computed in float32 and the result cast back, so
        that landing points stay exact at video widths.

    Semantics, following the kernel exactly:

    * each source p lands at q = p + flow(p) and is kept only if 0 <= q_x <= W-1 and
      0 <= q_y <= H-1 (NaN and infinite flow are dropped);
    * a kept source adds ``-weight * flow`` and ``weight`` to each of the four pixels
      (floor(q_y) or its lower neighbour) x (floor(q_x) or its right neighbour), neighbours
      clamped to the image, with equal (not bilinear) weights. When q_x == W-1 exactly both
      columns are the same pixel and it receives the source twice; the kernel does this too;
    * the sum at each pixel whose total weight ("count") is > 0 is divided by that count;
    * with ``fill_holes``, see :func:`fill_flow_holes`.

    Differentiable by autograd in ``flow`` and ``weight``. The gradient is that of the function
    above; the original CUDA backward differs for ``weight`` (its weight gradient is not the
    derivative of the weighted average) and ignores the hole filling.
    """
    check_projection_arguments(flow, weight)
    batch, _, height, width = flow.shape
    compute_dtype = torch.promote_types(flow.dtype, torch.float32)
    if weight is not None:
        compute_dtype = torch.promote_types(compute_dtype, weight.dtype)
    source_flow = flow.to(compute_dtype)
    factory = {"dtype": compute_dtype, "device": flow.device}
    landing_x = torch.arange(width, **factory) + source_flow[:, 0]
    landing_y = torch.arange(height, **factory).unsqueeze(1) + source_flow[:, 1]
    # Comparisons with NaN are false, and infinite landing points fail the bounds, so both
    # kinds of broken flow are dropped here as in the kernel.
    kept = (
        (landing_x >= 0) & (landing_x <= width - 1) & (landing_y >= 0) & (landing_y <= height - 1)
    )

    left = torch.where(kept, landing_x.detach(), 0).floor().long()
    top = torch.where(kept, landing_y.detach(), 0).floor().long()
    right = (left + 1).clamp(max=width - 1)
    bottom = (top + 1).clamp(max=height - 1)
    targets = torch.stack(
        [top * width + left, top * width + right, bottom * width + left, bottom * width + right],
        dim=1,
    ).reshape(batch, 1, _SPLAT_TARGETS * height * width)

    if weight is None:
        source_weight = kept.to(compute_dtype)
    else:
        source_weight = torch.where(kept, weight[:, 0].to(compute_dtype), 0)
    # Dropped sources still scatter (onto pixel 0), but with zero weight and zero flow; zeroing
    # the flow first keeps NaN out of both the sum and the gradient.
    kept_flow = torch.where(kept.unsqueeze(1), source_flow, 0)
    contribution = -(source_weight.unsqueeze(1) * kept_flow)

    pixels = height * width
    count = torch.zeros(batch, 1, pixels, **factory).scatter_add(
        2, targets, _repeat_per_target(source_weight.reshape(batch, 1, pixels))
    )
    summed = torch.zeros(batch, 2, pixels, **factory).scatter_add(
        2, targets.expand(batch, 2, -1), _repeat_per_target(contribution.reshape(batch, 2, pixels))
    )
    reached = count > 0
    projected = torch.where(reached, summed / torch.where(reached, count, 1), summed)

    projected = projected.reshape(batch, 2, height, width)
    count = count.reshape(batch, 1, height, width)
    if fill_holes:
        projected = fill_flow_holes(projected, count)
    return projected.to(flow.dtype)


def fill_flow_holes(flow: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Fill the pixels no source reached from their nearest reached neighbours.

    Args:
        flow: (B, 2, H, W) projected flow after averaging.
        count: (B, 1, H, W) total splat weight per pixel, same dtype and device.

    Returns:
        (B, 2, H, W) flow where each hole (count <= 0) is replaced by the equal-weight average
        of the flows at the first pixel with count != 0 met when walking from the hole to the
        left, right, up and down (1 to 4 neighbours). A hole with no such pixel in any direction
        keeps its value (0 for a hole with count 0). Neighbours are read from the input, so the
        fill never cascades.

    With positive weights that is the whole rule. For completeness the kernel's handling of
    negative counts is kept too: a neighbour with count < 0 stops the walk but is left out of
    the average, and a hole is left untouched when the counts of the neighbours found sum to
    <= 0.
    """
    batch, _, height, width = flow.shape
    stops = count[:, 0] != 0
    neighbours = [
        _nearest_stop(stops, dim=-1, towards_start=True),
        _nearest_stop(stops, dim=-1, towards_start=False),
        _nearest_stop(stops, dim=-2, towards_start=True),
        _nearest_stop(stops, dim=-2, towards_start=False),
    ]
    neighbour_count_sum = torch.zeros_like(count[:, 0])
    used_sum = torch.zeros_like(count[:, 0])
    flow_sum = torch.zeros_like(flow)
    for (index, found), dim in zip(neighbours, (-1, -1, -2, -2), strict=True):
        safe_index = torch.where(found, index, 0).unsqueeze(1)
        neighbour_count = torch.where(found, count.gather(dim, safe_index)[:, 0], 0)
        neighbour_flow = flow.gather(dim, safe_index.expand(batch, 2, height, width))
        used = neighbour_count > 0
        neighbour_count_sum = neighbour_count_sum + neighbour_count
        used_sum = used_sum + used.to(used_sum.dtype)
        flow_sum = flow_sum + torch.where(used.unsqueeze(1), neighbour_flow, 0)
    filled = (count[:, 0] <= 0) & (neighbour_count_sum > 0)
    average = flow_sum / used_sum.clamp(min=1).unsqueeze(1)
    return torch.where(filled.unsqueeze(1), average, flow)


def _repeat_per_target(values: torch.Tensor) -> torch.Tensor:
    """(B, C, N) -> (B, C, 4 * N), laid out to match the splat target indices."""
    batch, channels, pixels = values.shape
    return (
        values.unsqueeze(2)
        .expand(batch, channels, _SPLAT_TARGETS, pixels)
        .reshape(batch, channels, _SPLAT_TARGETS * pixels)
    )


def _nearest_stop(
    stops: torch.Tensor, *, dim: int, towards_start: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """For every pixel, the index along ``dim`` of the nearest stop strictly before it
    (``towards_start``) or strictly after it, and whether one exists.

    ``stops`` is a (B, H, W) bool mask; both results have its shape.
    """
    length = stops.shape[dim]
    position = torch.arange(length, device=stops.device)
    if dim == -2:
        position = position.unsqueeze(1)
    if towards_start:
        # Running maximum of the stop positions seen so far, shifted by one so that a pixel
        # never finds itself.
        marked = torch.where(stops, position, -1)
        running = marked.cummax(dim=dim).values
        index = torch.cat(
            [torch.full_like(running.narrow(dim, 0, 1), -1), running.narrow(dim, 0, length - 1)],
            dim=dim,
        )
        return index, index >= 0
    marked = torch.where(stops, position, length)
    running = marked.flip(dim).cummin(dim=dim).values.flip(dim)
    index = torch.cat(
        [running.narrow(dim, 1, length - 1), torch.full_like(running.narrow(dim, 0, 1), length)],
        dim=dim,
    )
    return index, index < length


def project_flow_kernel(
    flow: torch.Tensor,
    weight: torch.Tensor | None,
    *,
    fill_holes: bool,
    launch: KernelLauncher,
) -> torch.Tensor:
    """The projection through the kernels run by ``launch``; arguments and result as
    :func:`project_flow_reference`."""
    check_projection_arguments(flow, weight)
    dtype = _kernel_dtype(flow, weight)
    if weight is not None:
        weight = weight.to(dtype).contiguous()
    projected = _ProjectFlow.apply(flow.to(dtype).contiguous(), weight, bool(fill_holes), launch)
    return projected.to(flow.dtype)


# Flow of up to 2 pixels each way (some sources land off the 5x7 image, some targets stay
# holes) and positive weights, with the hole filling on.
SELF_CHECK = SelfCheckCase(
    OP,
    inputs=lambda tensor: (tensor(2, low=-2.0, high=2.0), tensor(1, low=0.2)),
    kernel=partial(project_flow_kernel, fill_holes=True),
    reference=partial(project_flow_reference, fill_holes=True),
)


def project_flow(
    flow: torch.Tensor,
    weight: torch.Tensor | None,
    *,
    fill_holes: bool,
    backend: OpPath | str = "auto",
) -> torch.Tensor:
    """Depth-aware flow projection; shapes and semantics as :func:`project_flow_reference`.
    ``backend`` as for :func:`vsdain.ops.correlation.correlation`."""
    path = backend if isinstance(backend, OpPath) else resolve_op_path(flow.device, backend)
    launch = path.kernel_launcher(SELF_CHECK, _kernel_dtype(flow, weight))
    if launch is not None:
        return project_flow_kernel(flow, weight, fill_holes=fill_holes, launch=launch)
    return project_flow_reference(flow, weight, fill_holes=fill_holes)


def _kernel_dtype(flow: torch.Tensor, weight: torch.Tensor | None) -> torch.dtype:
    return kernel_dtype(flow.dtype) if weight is None else kernel_dtype(flow.dtype, weight.dtype)


class _ProjectFlow(torch.autograd.Function):
    @staticmethod
    def forward(ctx, flow, weight, fill_holes, launch):
        batch, _, height, width = flow.shape
        dims = (batch, height, width)
        # Sums, counts and the projected flow stay in accum_t (float32 for float16 flow).
        summed = accum_zeros(flow.shape, flow)
        count = accum_zeros((batch, 1, height, width), flow)
        pixels = batch * height * width
        kernels = OpKernels(launch, OP, flow.dtype)
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
            grad_projected = accum_zeros(flow.shape, flow)
            if pixels:
                grad_result = grad_result.to(flow.dtype).contiguous()
                ctx.kernels(
                    "project_flow_fill_holes_backward", pixels,
                    grad_result, count, grad_projected, *dims,
                )  # fmt: skip
        else:
            grad_projected = grad_result.to(projected.dtype).contiguous()
        grad_flow = accum_empty(flow.shape, flow) if want_flow else None
        grad_weight = accum_empty(weight.shape, flow) if want_weight else None
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
