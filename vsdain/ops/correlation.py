"""PWC-Net's correlation (cost volume) layer: argument checks, the pure-PyTorch reference, the
CUDA kernels' autograd Function (kernels in ``correlation.cu`` beside this file) and the public
function that chooses between them.

Mirrors DAIN's ``correlation_package_pytorch1_0`` CUDA op (``Correlation`` in the reference's
``PWCNet/correlation_package_pytorch1_0/correlation.py``) with the settings PWC-Net uses: pad =
max displacement, kernel size 1, both strides 1.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .backend import OpPath, SelfCheckCase, resolve_op_path
from .kernel_source import KernelLauncher, OpKernels, accum_empty, kernel_dtype

OP = "correlation"


def check_correlation_arguments(
    first: torch.Tensor, second: torch.Tensor, max_displacement: int
) -> None:
    """The checks both correlation paths make: ValueError/TypeError naming the argument."""
    if first.dim() != 4 or first.shape != second.shape:
        raise ValueError(
            "correlation: first and second must both be (B, C, H, W) with equal shapes, "
            f"got {tuple(first.shape)} and {tuple(second.shape)}"
        )
    if isinstance(max_displacement, bool) or not isinstance(max_displacement, int):
        raise TypeError(f"correlation: max_displacement must be an int, got {max_displacement!r}")
    if max_displacement < 0:
        raise ValueError(f"correlation: max_displacement must be >= 0, got {max_displacement}")


def correlation_reference(
    first: torch.Tensor, second: torch.Tensor, max_displacement: int = 4
) -> torch.Tensor:
    """Cost volume between two feature maps, one channel per displacement.

    Args:
        first: (B, C, H, W) features of the reference frame.
        second: (B, C, H, W) features of the other frame, same shape, dtype and device.
        max_displacement: d >= 0, the largest shift in pixels along each axis; PWC-Net uses 4.

    Returns:
        (B, (2d+1)**2, H, W) tensor in the dtype of ``first``, where
        ``out[b, (dy+d)*(2d+1) + (dx+d), y, x] = mean_c first[b,c,y,x] * second[b,c,y+dy,x+dx]``
        for dy, dx in [-d, d]; dy is the major (slow) index. ``second`` reads as zero outside
        the image. float16/bfloat16 inputs are computed in float32 and the result cast back,
        because the products would otherwise be summed in half precision.

    Works on any device and is differentiable by autograd in both inputs.
    """
    check_correlation_arguments(first, second, max_displacement)

    compute_dtype = torch.promote_types(first.dtype, torch.float32)
    d = max_displacement
    height, width = first.shape[-2:]
    reference = first.to(compute_dtype)
    # Padding once by d turns every displacement into a plain slice of the padded map.
    padded = F.pad(second.to(compute_dtype), (d, d, d, d))
    costs = [
        (reference * padded[:, :, d + dy : d + dy + height, d + dx : d + dx + width]).mean(dim=1)
        for dy in range(-d, d + 1)
        for dx in range(-d, d + 1)
    ]
    return torch.stack(costs, dim=1).to(first.dtype)


def correlation_kernel(
    first: torch.Tensor, second: torch.Tensor, max_displacement: int, *, launch: KernelLauncher
) -> torch.Tensor:
    """The cost volume through the kernels run by ``launch``; arguments and result as
    :func:`correlation_reference`."""
    check_correlation_arguments(first, second, max_displacement)
    dtype = kernel_dtype(first.dtype)
    cost = _Correlation.apply(
        first.to(dtype).contiguous(), second.to(dtype).contiguous(), max_displacement, launch
    )
    return cost.to(first.dtype)


# Two feature maps of 4 channels; a displacement of 2 reaches past every border of the 5x7
# input, so the zero padding is checked too.
SELF_CHECK = SelfCheckCase(
    OP,
    inputs=lambda tensor: (tensor(4), tensor(4)),
    kernel=partial(correlation_kernel, max_displacement=2),
    reference=partial(correlation_reference, max_displacement=2),
)


def correlation(
    first: torch.Tensor,
    second: torch.Tensor,
    max_displacement: int = 4,
    *,
    backend: OpPath | str = "auto",
) -> torch.Tensor:
    """PWC-Net cost volume; shapes and semantics as :func:`correlation_reference`.

    backend: an :class:`~vsdain.ops.backend.OpPath` (what a network resolved once), or
    "auto", "reference" or "cuda" for the tensors' device.
    """
    path = backend if isinstance(backend, OpPath) else resolve_op_path(first.device, backend)
    launch = path.kernel_launcher(SELF_CHECK, kernel_dtype(first.dtype))
    if launch is not None:
        return correlation_kernel(first, second, max_displacement, launch=launch)
    return correlation_reference(first, second, max_displacement)


class _Correlation(torch.autograd.Function):
    @staticmethod
    def forward(ctx, first, second, max_displacement, launch):
        batch, channels, height, width = first.shape
        side = 2 * max_displacement + 1
        cost = first.new_empty(batch, side * side, height, width)
        dims = (batch, channels, height, width, max_displacement)
        kernels = OpKernels(launch, OP, first.dtype)
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
            grad = accum_empty(first.shape, first)
            if grad.numel():
                ctx.kernels(kernel, grad.numel(), grad_cost, other, grad, *ctx.dims)
            grads.append(grad.to(first.dtype))
        return grads[0], grads[1], None, None
